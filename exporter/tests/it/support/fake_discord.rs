//! A local stand-in for Discord's HTTP API (`GET /api/v10/users/@me`, `GET /api/v10/gateway/bot`)
//! on 127.0.0.1, for the exporter's `[discord] proxy = "127.0.0.1:PORT", use_http = true`.
//!
//! Each token is a bot; `/gateway/bot` answers from a script of [`Reply`]s, then repeats normal
//! samples. Every request is recorded (token, route, time), so tests prove back-off by counting.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;

/// One scripted answer of `/gateway/bot` (or `/users/@me`).
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with `session_start_limit.remaining` set to this (it stays there afterwards).
    Sample { remaining: u32, reset_after_ms: u64 },
    /// Any status with a JSON body.
    Json(u16, String),
    /// 429 as Discord sends it for a shared/user bucket: `Retry-After`, `X-RateLimit-*`.
    RateLimited { retry_after_secs: u16 },
    /// 429 without a scope (as for the global limit): only `Retry-After` and the JSON body.
    RateLimitedGlobal { retry_after_secs: u16 },
    /// Never answers.
    Hang,
    /// 200 headers and half a body, then nothing: a response that never finishes.
    HangMidBody,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with a JSON body cut off in the middle (Content-Length matches what is sent).
    Truncated,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub token: String,
    pub route: &'static str,
    pub at: Instant,
    pub status: u16,
}

#[derive(Default)]
struct Bot {
    id: u64,
    name: String,
    rejected: bool,
    remaining: u32,
    reset_after_ms: u64,
    shards: u32,
    gateway: VecDeque<Reply>,
    me: VecDeque<Reply>,
}

#[derive(Default)]
struct Inner {
    bots: HashMap<String, Bot>,
    requests: Vec<Request>,
}

/// The running stand-in.
#[derive(Clone)]
pub struct FakeDiscord {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl FakeDiscord {
    /// Binds 127.0.0.1 on a free port and serves on the current runtime.
    pub async fn start() -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap()).await
    }

    /// Binds `addr` (a port reserved earlier, for a Discord that starts after the exporter).
    pub async fn start_at(addr: SocketAddr) -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/api/v10/users/@me", get(me))
            .route("/api/v10/gateway/bot", get(gateway))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
    }

    /// A bot Discord knows: `token` authenticates as `name`.
    pub fn bot(&self, token: &str, name: &str, id: u64) {
        self.inner.lock().unwrap().bots.insert(
            token.to_string(),
            Bot {
                id,
                name: name.into(),
                remaining: 1000,
                reset_after_ms: 86_000_000,
                shards: 2,
                ..Default::default()
            },
        );
    }

    /// A token Discord rejects on every route (401, with the token echoed in the message, as a
    /// hostile or buggy server might: the exporter must not repeat it).
    pub fn rejected(&self, token: &str) {
        self.inner.lock().unwrap().bots.insert(
            token.to_string(),
            Bot {
                rejected: true,
                ..Default::default()
            },
        );
    }

    /// Queues answers of `/gateway/bot` for `token`.
    pub fn script(&self, token: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut g = self.inner.lock().unwrap();
        g.bots.get_mut(token).unwrap().gateway.extend(replies);
    }

    /// Queues answers of `/users/@me` for `token`.
    pub fn script_me(&self, token: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut g = self.inner.lock().unwrap();
        g.bots.get_mut(token).unwrap().me.extend(replies);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Requests of `token` on `route` (`gateway/bot` or `users/@me`).
    pub fn count(&self, token: &str, route: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.token == token && r.route == route)
            .count()
    }

    /// When each request of `token` on `route` arrived, as seconds after `t0`.
    pub fn times(&self, token: &str, route: &str, t0: Instant) -> Vec<f64> {
        self.requests()
            .iter()
            .filter(|r| r.token == token && r.route == route)
            .map(|r| (r.at - t0).as_secs_f64())
            .collect()
    }

    /// Requests of `token` on `route` with their status, in order.
    pub fn statuses(&self, token: &str, route: &str) -> Vec<u16> {
        self.requests()
            .iter()
            .filter(|r| r.token == token && r.route == route)
            .map(|r| r.status)
            .collect()
    }

    /// Every Authorization header value seen (proves the token was sent).
    pub fn tokens_seen(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.token).collect()
    }
}

fn token_of(h: &HeaderMap) -> String {
    h.get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bot ").unwrap_or(v).to_string())
        .unwrap_or_default()
}

fn json(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap()
}

fn unauthorized(token: &str) -> Response {
    json(
        401,
        format!(r#"{{"message": "401: Unauthorized (token {token} is invalid)", "code": 0}}"#),
    )
}

async fn render(reply: Reply, ok_body: String) -> Response {
    match reply {
        Reply::Sample { .. } => json(200, ok_body),
        Reply::Json(status, body) => json(status, body),
        Reply::RateLimited { retry_after_secs } => Response::builder()
            .status(429)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::RETRY_AFTER, retry_after_secs.to_string())
            .header("x-ratelimit-scope", "shared")
            .header("x-ratelimit-bucket", "gateway-bot-bucket")
            .header("x-ratelimit-limit", "1")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset-after", format!("{retry_after_secs}.000"))
            .body(Body::from(format!(
                r#"{{"message": "You are being rate limited.", "retry_after": {retry_after_secs}.0, "global": false}}"#
            )))
            .unwrap(),
        Reply::RateLimitedGlobal { retry_after_secs } => Response::builder()
            .status(429)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::RETRY_AFTER, retry_after_secs.to_string())
            .body(Body::from(format!(
                r#"{{"message": "You are being rate limited.", "retry_after": {retry_after_secs}.0, "global": true}}"#
            )))
            .unwrap(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            json(200, ok_body)
        }
        Reply::HangMidBody => {
            let half = ok_body[..ok_body.len() / 2].to_string();
            let stream = async_stream(half);
            Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, ok_body.len().to_string())
                .body(Body::from_stream(stream))
                .unwrap()
        }
        Reply::Garbage => json(200, "<html>502 Bad Gateway</html>".into()),
        Reply::Truncated => json(200, ok_body[..ok_body.len() / 2].to_string()),
    }
}

/// A body stream: one chunk, then never another.
fn async_stream(first: String) -> OnceThenPending {
    OnceThenPending(Some(axum::body::Bytes::from(first)))
}

struct OnceThenPending(Option<axum::body::Bytes>);

impl futures_core::Stream for OnceThenPending {
    type Item = Result<axum::body::Bytes, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match self.0.take() {
            Some(b) => std::task::Poll::Ready(Some(Ok(b))),
            None => std::task::Poll::Pending,
        }
    }
}

async fn me(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    let token = token_of(&headers);
    let (reply, body) = {
        let mut g = inner.lock().unwrap();
        let Some(bot) = g.bots.get_mut(&token) else {
            drop(g);
            record(&inner, &token, "users/@me", 401);
            return unauthorized(&token);
        };
        if bot.rejected {
            drop(g);
            record(&inner, &token, "users/@me", 401);
            return unauthorized(&token);
        }
        let body = format!(
            r#"{{"id": "{}", "username": "{}", "discriminator": "0", "global_name": null, "avatar": null, "accent_color": null, "banner": null, "bot": true, "mfa_enabled": true, "flags": 0}}"#,
            bot.id, bot.name
        );
        (bot.me.pop_front(), body)
    };
    let reply = reply.unwrap_or(Reply::Sample {
        remaining: 0,
        reset_after_ms: 0,
    });
    record(&inner, &token, "users/@me", status_of(&reply));
    render(reply, body).await
}

async fn gateway(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    let token = token_of(&headers);
    let (reply, body) = {
        let mut g = inner.lock().unwrap();
        let Some(bot) = g.bots.get_mut(&token) else {
            drop(g);
            record(&inner, &token, "gateway/bot", 401);
            return unauthorized(&token);
        };
        if bot.rejected {
            drop(g);
            record(&inner, &token, "gateway/bot", 401);
            return unauthorized(&token);
        }
        let reply = bot.gateway.pop_front().unwrap_or(Reply::Sample {
            remaining: bot.remaining,
            reset_after_ms: bot.reset_after_ms,
        });
        if let Reply::Sample {
            remaining,
            reset_after_ms,
        } = reply
        {
            bot.remaining = remaining;
            bot.reset_after_ms = reset_after_ms;
        }
        let body = format!(
            r#"{{"url": "wss://gateway.discord.gg", "shards": {}, "session_start_limit": {{"total": 1000, "remaining": {}, "reset_after": {}, "max_concurrency": 1}}}}"#,
            bot.shards, bot.remaining, bot.reset_after_ms
        );
        (reply, body)
    };
    record(&inner, &token, "gateway/bot", status_of(&reply));
    render(reply, body).await
}

fn status_of(r: &Reply) -> u16 {
    match r {
        Reply::Json(s, _) => *s,
        Reply::RateLimited { .. } | Reply::RateLimitedGlobal { .. } => 429,
        _ => 200,
    }
}

fn record(inner: &Mutex<Inner>, token: &str, route: &'static str, status: u16) {
    inner.lock().unwrap().requests.push(Request {
        token: token.to_string(),
        route,
        at: Instant::now(),
        status,
    });
}
