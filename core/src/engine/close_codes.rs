//! Gateway close codes and what each means for the session (Discord's table, "Gateway Close
//! Event Codes", plus the codes libraries use on their own side of the socket), so counters and
//! detectors classify a close the same way.

use serde::Serialize;

/// What a close code means for the bot's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseClass {
    /// A deliberate close (1000/1001): the session is over, nothing is wrong.
    Clean,
    /// The library may RESUME the same session (no new identify).
    Resumable,
    /// The session is gone: reconnecting needs a new IDENTIFY (one of the day's starts).
    Reidentify,
    /// Discord will refuse every retry until the configuration is fixed.
    Fatal,
    /// Not in the table.
    Unknown,
}

impl CloseClass {
    /// The name in metrics (`class` label) and explanations.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseClass::Clean => "clean",
            CloseClass::Resumable => "resumable",
            CloseClass::Reidentify => "reidentify",
            CloseClass::Fatal => "fatal",
            CloseClass::Unknown => "unknown",
        }
    }
}

/// Classifies a close code. Discord documents whether to reconnect; which reconnects must
/// identify anew follows from the code's meaning (4007 invalid sequence and 4009 session timed
/// out say "start a new session"; 4003 means there was no session yet).
pub fn classify(code: u16) -> CloseClass {
    match code {
        // RFC 6455 normal closure / going away: the client ended the session on purpose.
        1000 | 1001 => CloseClass::Clean,
        // Unknown error, unknown opcode, decode error, already authenticated, rate limited:
        // Discord says reconnect, and the session can be resumed.
        4000 | 4001 | 4002 | 4005 | 4008 => CloseClass::Resumable,
        // Not authenticated (no session yet), invalid seq, session timed out.
        4003 | 4007 | 4009 => CloseClass::Reidentify,
        // Authentication failed, invalid shard, sharding required, invalid API version,
        // invalid intents, disallowed intents: do not reconnect.
        4004 | 4010..=4014 => CloseClass::Fatal,
        // discord.js (@discordjs/ws `CloseCodes.Resuming`) and JDA (`CloseCode.RECONNECT`)
        // close their own socket with these to resume (a zombie connection, a reconnect
        // request): private codes, never sent by Discord.
        4200 | 4900 => CloseClass::Resumable,
        // Abnormal closure / server error from the network or Cloudflare: libraries resume.
        1006 | 1011 | 1012 | 1014 => CloseClass::Resumable,
        _ => CloseClass::Unknown,
    }
}

/// Close codes are counted per pod for these codes only, and at most this many distinct codes
/// per pod (a hostile log cannot grow the series without bound); the rest count as code 0.
pub const MAX_CODES_PER_POD: usize = 24;

/// Whether a code is worth its own series (a WebSocket close code or one of Discord's).
pub fn countable(code: u16) -> bool {
    (1000..=1015).contains(&code) || (3000..=4999).contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discords_table_and_library_codes() {
        for c in [4004, 4010, 4011, 4012, 4013, 4014] {
            assert_eq!(classify(c), CloseClass::Fatal, "{c}");
        }
        for c in [4000, 4001, 4002, 4005, 4008, 4200, 4900] {
            assert_eq!(classify(c), CloseClass::Resumable, "{c}");
        }
        for c in [4003, 4007, 4009] {
            assert_eq!(classify(c), CloseClass::Reidentify, "{c}");
        }
        assert_eq!(classify(1000), CloseClass::Clean);
        assert_eq!(classify(4006), CloseClass::Unknown);
        // The engine's fatal list is exactly the fatal class.
        for c in 0..=u16::MAX {
            assert_eq!(
                super::super::FATAL_CLOSE_CODES.contains(&c),
                classify(c) == CloseClass::Fatal,
                "{c}"
            );
        }
    }
}
