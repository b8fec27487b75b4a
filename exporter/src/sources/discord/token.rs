//! Bot tokens: read from a file (a mounted Kubernetes Secret) or an environment variable, never
//! a flag. A [`Token`] cannot be printed: its `Debug` and `Display` say `<redacted>`, and error
//! messages about loading one name the file or variable, never the content.

use std::fmt;
use std::path::PathBuf;

/// What a token is shown as, everywhere.
pub const REDACTED: &str = "<redacted>";

/// A file holding a token is small; anything bigger is not a token file.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// A Discord bot token. Only [`Token::expose`] gives the string, for the HTTP client.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Checks the shape (printable ASCII, no spaces except after a `Bot ` prefix).
    pub fn new(raw: &str) -> Result<Self, &'static str> {
        let t = raw.trim();
        if t.is_empty() {
            return Err("is empty");
        }
        let bare = t.strip_prefix("Bot ").unwrap_or(t);
        if bare.is_empty() {
            return Err("is empty");
        }
        if !bare.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("contains characters a bot token cannot have");
        }
        Ok(Self(bare.to_string()))
    }

    /// The token itself: for the `Authorization` header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `s` with every occurrence of the token replaced (for text that came from outside, such
    /// as an error body, before it is logged or shown).
    pub fn scrub(&self, s: &str) -> String {
        if self.0.len() < 8 {
            // Too short to be a real token: replacing it would mangle ordinary words.
            return s.to_string();
        }
        s.replace(&self.0, REDACTED)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({REDACTED})")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Where a bot's token is read from. Re-read before every try, so a rotated Secret is picked
/// up without a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    File(PathBuf),
    Env(String),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "token file {}", p.display()),
            Self::Env(v) => write!(f, "environment variable {v}"),
        }
    }
}

impl TokenSource {
    /// Reads the token; the error names the source and the reason, never the content.
    pub fn load(&self) -> Result<Token, String> {
        let raw = match self {
            Self::File(p) => {
                let meta =
                    std::fs::metadata(p).map_err(|e| format!("{self}: {}", io_reason(&e)))?;
                if meta.len() > MAX_TOKEN_FILE_BYTES {
                    return Err(format!(
                        "{self}: is {} bytes, too big to be a bot token",
                        meta.len()
                    ));
                }
                let bytes = std::fs::read(p).map_err(|e| format!("{self}: {}", io_reason(&e)))?;
                String::from_utf8(bytes).map_err(|_| format!("{self}: is not UTF-8 text"))?
            }
            Self::Env(v) => match std::env::var(v) {
                Ok(s) => s,
                Err(std::env::VarError::NotPresent) => return Err(format!("{self}: is not set")),
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(format!("{self}: is not UTF-8 text"));
                }
            },
        };
        Token::new(&raw).map_err(|why| format!("{self}: {why}"))
    }
}

impl TokenSource {
    /// No token there at all: the file does not exist or the variable is not set (as opposed
    /// to one that exists but cannot be read or used).
    pub fn is_absent(&self) -> bool {
        match self {
            Self::File(p) => std::fs::symlink_metadata(p)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound),
            Self::Env(v) => matches!(std::env::var(v), Err(std::env::VarError::NotPresent)),
        }
    }
}

/// The I/O error's kind in words (its Display can carry OS text, never file content).
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file (is the Secret mounted?)".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "MTA1NjY3ODk2MjU4NzY1ODE4OA.GhI3kL.abcdefghijklmnopqrstuvwxyz0123456789AB";

    #[test]
    fn tokens_never_print() {
        let t = Token::new(&format!("  Bot {T}\n")).unwrap();
        assert_eq!(t.expose(), T);
        assert!(!format!("{t:?} {t} {:?}", Some(&t)).contains(T));
        assert_eq!(t.scrub(&format!("echo {T} back")), "echo <redacted> back");
    }

    #[test]
    fn bad_tokens_are_refused_without_echoing_them() {
        assert!(Token::new("  \n").is_err());
        assert!(Token::new("abc def").is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, format!("{T} {T}")).unwrap();
        let e = TokenSource::File(p.clone()).load().unwrap_err();
        assert!(!e.contains(T) && e.contains("cannot have"), "{e}");
        let e = TokenSource::File(dir.path().join("missing"))
            .load()
            .unwrap_err();
        assert!(e.contains("no such file"), "{e}");
        std::fs::write(&p, format!("{T}\n")).unwrap();
        assert_eq!(TokenSource::File(p).load().unwrap().expose(), T);
        let e = TokenSource::Env("DGE_TEST_SURELY_UNSET_TOKEN_VAR".into())
            .load()
            .unwrap_err();
        assert!(e.contains("is not set"), "{e}");
    }
}
