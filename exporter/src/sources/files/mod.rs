//! Following log files: globs that pick up new files, rotation by rename, truncation
//! (copytruncate), deleted and recreated files, symlinks (kubelet), bounded lines.
//!
//! Polling `stat` is deliberate: it works the same on every filesystem (including the overlay
//! and network mounts where inotify misses writes) and costs one syscall per file per poll.
//!
//! Positions (opt-in: `positions_file`, node mode): [`FileFollower::positions`] says, per file, its identity and
//! the offset after the last line handled whole (never inside a CRI `P` sequence);
//! [`FileFollower::with_positions`] starts from them, so a restart neither re-reads nor skips
//! lines. A file rotated while nobody read it is found again by its identity in the same
//! directory (the kubelet renames `0.log` to `0.log.<time>`) and finished first.
//!
//! - [`config`]: its section (`[[file]]` tables, `positions_file`).
//! - `follower`: one path or glob followed ([`FileFollower`]); node mode reuses it.
//! - `source`: the `[[file]]` source of `run` ([`FilesSource`]): the poll loop, counts,
//!   health and the positions file.

pub mod config;
mod follower;
mod source;

pub use config::{FileSource, FilesSection};
pub use follower::{FileFollower, PollStats, Position};
pub use source::FilesSource;
