//! Rule profiles as data: which log lines mean which
//! [`SessionEvent`](dge_core::observation::SessionEvent).
//!
//! A profile is a list of rules (TOML, see `parse/profiles/*.toml`):
//!
//! ```toml
//! name = "mylib"
//! [vars]                      # regex fragments, used as ${name} in regexes (and other vars)
//! prefix = '^\S+ (?:INFO|WARN) mylib: '
//! [[rule]]
//! name = "mylib.ready"        # unique; shown by `parse`
//! literal = "connected as"    # or a list: any of them makes the rule a candidate
//! regex = '${prefix}connected as (?P<bot>\S+) on shard (?P<shard>\d+)'   # optional
//! event = "ready"             # a SessionEvent name, or "ignore" (swallow the line)
//! fields = { session_id = "x" }                                           # optional
//! ```
//!
//! Named captures fill the event: `bot`, `shard` (a number; `None` = no shard),
//! `session_id` (ready), `code` (closed, fatal), `kind` (dispatch), `reason` (fatal),
//! `resumable` (invalid_session: true/false). `fields` gives the same values fixed; a capture
//! that took part in the match wins over the fixed value. `fatal` needs a `reason` and
//! `invalid_session` a `resumable`, fixed or captured.
//!
//! Matching: one multi-literal search over all literals (Teddy, or the Aho-Corasick automaton
//! when Teddy cannot be built). A line without any literal is
//! ignored without running a regex; otherwise the candidate rules' regexes run in rule order
//! and the first match wins. Regexes run on bytes with Unicode classes off (`\w`, `\d`, `\s`
//! and `.` are ASCII/byte-wise; `(?u)` turns them back on), so invalid UTF-8 never stops a
//! match.
//!
//! Modules by concern: [`schema`] (the TOML), [`builtin`] (the profiles of
//! `parse/profiles/*.toml`, found by the build script: a new one is a file, no Rust), `rule`
//! (one rule compiled: event and captures), `compiled` (the prefilter and matching), `set`
//! (profiles per bot).

pub mod builtin;
mod compiled;
mod error;
mod rule;
pub mod schema;
mod search;
mod set;
mod vars;

#[cfg(test)]
mod tests;

pub use builtin::{
    BuiltinKind, BuiltinMeta, Builtins, builtin_names, builtin_profile, builtin_toml, builtins,
    compile_profile, compile_profile_with, library_names,
};
pub use compiled::{CompiledProfile, MAX_FAMILIES, MatchScratch, RuleMatch};
pub use error::ProfileError;
pub use rule::CAPTURE_NAMES;
pub use schema::{Continuation, Fields, Literals, Placement, Profile, Rule};
pub use set::ProfileSet;
