//! The two Discord calls the poller makes, behind a trait (so the poll loop runs on simulated
//! time against a scripted stand-in), and their real implementation on twilight-http.
//!
//! twilight-http retries a 429 by itself, at once. The real client therefore (1) runs every call
//! under one timeout that covers the permit, the request and reading the body, and (2) cancels
//! the request the moment twilight is about to send it a second time: that can only follow a
//! 429, which is then reported as such, with the wait Discord asked for when twilight's rate
//! limiter learned it from the `Retry-After`/`X-RateLimit-Reset-After` headers.

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use twilight_http::Client;
use twilight_http::api_error::ApiError;
use twilight_http::error::ErrorType;
use twilight_http::response::ResponseFuture;
use twilight_http_ratelimiting::{Endpoint, Method, RateLimiter};

use super::token::Token;

/// Who the token belongs to (`GET /users/@me`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: u64,
    pub name: String,
}

/// `GET /gateway/bot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayBot {
    pub total: u32,
    pub remaining: u32,
    pub reset_after_ms: u64,
    pub max_concurrency: u32,
    pub shards: u32,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 401/403: the token is not (or no longer) valid. `message` is Discord's own, scrubbed.
    Rejected {
        status: u16,
        message: Option<String>,
    },
    /// 429.
    RateLimited { retry_after: Option<Duration> },
    /// Any other non-success status.
    Status { status: u16 },
    /// A non-success status whose body was not Discord's JSON (a proxy's HTML page, ...).
    BadErrorBody,
    /// No complete answer within the request timeout.
    Timeout,
    /// Refused, reset, DNS, TLS: no HTTP answer at all.
    Connection,
    /// A success status with a body that is not the expected JSON (malformed or truncated).
    Malformed,
}

impl Failure {
    /// The `status` label of `discord_gateway_exporter_discord_requests_total`.
    pub fn label(&self) -> String {
        match self {
            Self::Rejected { status, .. } | Self::Status { status } => status.to_string(),
            Self::RateLimited { .. } => "429".into(),
            Self::BadErrorBody => "error_unparsed".into(),
            Self::Timeout => "timeout".into(),
            Self::Connection => "connection_error".into(),
            Self::Malformed => "malformed".into(),
        }
    }

    /// One phrase for logs and `/healthz`.
    pub fn describe(&self) -> String {
        match self {
            Self::Rejected { status, message } => {
                let what = if *status == 403 {
                    "403 Forbidden"
                } else {
                    "401 Unauthorized"
                };
                match message {
                    Some(m) => format!("token rejected by Discord ({what}: {m:?})"),
                    None => format!("token rejected by Discord ({what})"),
                }
            }
            Self::RateLimited {
                retry_after: Some(r),
            } => format!(
                "rate limited by Discord (429, retry after {:.1} s)",
                r.as_secs_f64()
            ),
            Self::RateLimited { retry_after: None } => "rate limited by Discord (429)".into(),
            Self::Status { status } => format!("Discord answered HTTP {status}"),
            Self::BadErrorBody => "Discord answered an error status with a non-JSON body".into(),
            Self::Timeout => "no complete answer within the request timeout".into(),
            Self::Connection => "could not reach Discord (connection failed)".into(),
            Self::Malformed => {
                "Discord's answer was not the expected JSON (malformed or truncated)".into()
            }
        }
    }
}

/// The calls the poller makes.
pub trait Api: Send + Sync + 'static {
    fn current_user(&self) -> impl Future<Output = Result<Identity, Failure>> + Send;
    fn gateway_bot(&self) -> impl Future<Output = Result<GatewayBot, Failure>> + Send;
}

/// Where the real client sends its requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpointing {
    /// `host:port` of a Discord stand-in or twilight's http-proxy; `None`: discord.com.
    pub proxy: Option<String>,
    /// Plain HTTP to the proxy (a local stand-in); HTTPS otherwise.
    pub use_http: bool,
}

/// twilight-http, one client (and one rate limiter) per token. Build it inside the runtime:
/// the rate limiter spawns its task on construction.
pub struct TwilightApi {
    client: Client,
    limiter: RateLimiter,
    timeout: Duration,
    token: Token,
}

impl TwilightApi {
    pub fn new(token: &Token, to: &Endpointing, timeout: Duration) -> Self {
        install_crypto_provider();
        let limiter = RateLimiter::default();
        let mut b = Client::builder()
            .token(token.expose().to_string())
            .timeout(timeout)
            .ratelimiter(Some(limiter.clone()));
        if let Some(p) = &to.proxy {
            b = b.proxy(p.clone(), to.use_http);
        }
        Self {
            client: b.build(),
            limiter,
            timeout,
            token: token.clone(),
        }
    }

    async fn call<T>(&self, mut fut: ResponseFuture<T>, path: &str) -> Result<T, Failure>
    where
        T: serde::de::DeserializeOwned + Unpin + Send + 'static,
    {
        // Counts permits granted: the second one is twilight retrying a 429. Cancel it.
        let sends = Arc::new(AtomicU32::new(0));
        let s = sends.clone();
        fut.set_pre_flight(move || s.fetch_add(1, Ordering::SeqCst) == 0);
        let work = async move {
            let resp = fut.await.map_err(|e| self.classify(e))?;
            resp.model().await.map_err(|_| Failure::Malformed)
        };
        let endpoint = Endpoint {
            method: Method::Get,
            path: path.to_string(),
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Err(Failure::RateLimited { .. })) => Err(Failure::RateLimited {
                retry_after: self.reset_in(endpoint).await,
            }),
            Ok(r) => r,
            // Timed out waiting for a permit after a 429 (twilight honours the reset headers
            // by holding the retry back), or for an answer that never came.
            Err(_) => match self.reset_in(endpoint).await {
                Some(r) => Err(Failure::RateLimited {
                    retry_after: Some(r),
                }),
                None => Err(Failure::Timeout),
            },
        }
    }

    /// How long twilight's rate limiter holds this endpoint back, when it knows.
    async fn reset_in(&self, endpoint: Endpoint) -> Option<Duration> {
        let bucket = tokio::time::timeout(Duration::from_secs(1), self.limiter.bucket(endpoint))
            .await
            .ok()
            .flatten()?;
        let left = bucket
            .reset_at
            .saturating_duration_since(std::time::Instant::now());
        (bucket.remaining == 0 && !left.is_zero()).then_some(left)
    }

    fn classify(&self, e: twilight_http::Error) -> Failure {
        match e.kind() {
            ErrorType::Response { status, error, .. } => {
                let status = status.get();
                match status {
                    401 | 403 => Failure::Rejected {
                        status,
                        message: match error {
                            ApiError::General(g) => {
                                let mut m: String = g.message.chars().take(200).collect();
                                m = self.token.scrub(&m);
                                Some(m)
                            }
                            _ => None,
                        },
                    },
                    429 => Failure::RateLimited { retry_after: None },
                    _ => Failure::Status { status },
                }
            }
            ErrorType::Unauthorized => Failure::Rejected {
                status: 401,
                message: None,
            },
            // Only our pre-flight cancels: twilight was about to retry a 429.
            ErrorType::RequestCanceled => Failure::RateLimited { retry_after: None },
            ErrorType::RequestTimedOut => Failure::Timeout,
            ErrorType::Parsing { .. } => Failure::BadErrorBody,
            // The token was checked on load, so a header it cannot make is not expected; report
            // it as a rejection rather than hammer.
            ErrorType::CreatingHeader { .. } => Failure::Rejected {
                status: 401,
                message: Some("the token cannot be sent as an HTTP header".into()),
            },
            _ => Failure::Connection,
        }
    }
}

/// twilight-http's rustls has no crypto provider of its own: use ring, once per process.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only when one is installed already, which is what we want.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Api for TwilightApi {
    async fn current_user(&self) -> Result<Identity, Failure> {
        let u = self
            .call(self.client.current_user().into_future(), "users/@me")
            .await?;
        Ok(Identity {
            id: u.id.get(),
            name: u.name,
        })
    }

    async fn gateway_bot(&self) -> Result<GatewayBot, Failure> {
        let g = self
            .call(self.client.gateway().authed().into_future(), "gateway/bot")
            .await?;
        let sl = g.session_start_limit;
        Ok(GatewayBot {
            total: sl.total,
            remaining: sl.remaining,
            reset_after_ms: sl.reset_after,
            max_concurrency: u32::from(sl.max_concurrency),
            shards: g.shards,
        })
    }
}
