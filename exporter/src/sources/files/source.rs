//! The `[[file]]` source of `run`: polls every followed file, counts line outcomes, reports
//! each file source's health, and keeps the positions file (saved only once the lines read are
//! handed on, so a position never runs ahead of them).

use std::path::PathBuf;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{FileFollower, FileSource};
use crate::error::Result;
use crate::sources::positions::{self, PositionsFile};
use crate::sources::{Health, LogSettings, Source, SourceContext};

/// How often files are polled for new lines.
const POLL: Duration = Duration::from_millis(250);

/// Every `[[file]]` of the config, followed by one task.
pub struct FilesSource {
    followers: Vec<FileFollower>,
    positions: Option<PositionsFile>,
}

impl FilesSource {
    /// `None` without any `[[file]]`. Loads the positions file (when configured) and hands each
    /// saved file to the first source whose pattern matches it.
    pub fn new(
        files: &[FileSource],
        positions_file: Option<PathBuf>,
        log: &LogSettings,
    ) -> Result<Option<Self>> {
        if files.is_empty() {
            return Ok(None);
        }
        let (positions, mut saved) = PositionsFile::open(positions_file);
        let mut followers = Vec::new();
        for spec in files {
            // The file's own profile, else its bot's (`[bot_profiles]`), else `profile`.
            let profile = log.profile_for(spec.profile.as_deref(), spec.bot.as_deref())?;
            let f = FileFollower::new(
                spec.clone(),
                profile,
                log.max_line_bytes,
                log.default_bot.clone(),
            )
            .with_zone(log.zone);
            let (mine, rest) = std::mem::take(&mut saved)
                .into_iter()
                .partition(|(p, _)| f.claims(p));
            saved = rest;
            followers.push(f.with_positions(mine));
        }
        Ok(Some(Self {
            followers,
            positions,
        }))
    }
}

impl Source for FilesSource {
    fn name(&self) -> &str {
        "files"
    }

    fn spawn(self: Box<Self>, ctx: SourceContext) -> JoinHandle<()> {
        tokio::spawn(follow(*self, ctx))
    }
}

/// Follows the file sources: poll, count, send, report health, save positions. Ready after the
/// first poll (the history read back).
async fn follow(s: FilesSource, mut ctx: SourceContext) {
    let FilesSource {
        followers,
        mut positions,
    } = s;
    let mut sources: Vec<(FileFollower, Health)> = followers
        .into_iter()
        .map(|f| {
            let h = ctx.health(f.source_name());
            (f, h)
        })
        .collect();
    let mut out = Vec::new();
    let all_positions =
        |sources: &[(FileFollower, Health)]| positions::of(sources.iter().map(|(f, _)| f));
    loop {
        let mut read = false;
        for (follower, health) in &mut sources {
            let stats = tokio::task::block_in_place(|| follower.poll(&mut out));
            read |= stats.matched + stats.ignored + stats.malformed > 0;
            ctx.metrics.count_outcomes(
                health.source(),
                stats.matched,
                stats.ignored,
                stats.malformed,
            );
            let files = follower.files();
            let (up, detail) = if !stats.errors.is_empty() {
                (false, stats.errors.join("; "))
            } else if files == 0 {
                (false, "no file matches".to_string())
            } else {
                (true, format!("{files} file(s) followed"))
            };
            health.report(up, detail).await;
            for o in out.drain(..) {
                if ctx.tx.send(o).await.is_err() {
                    return;
                }
            }
        }
        // Saved only once the lines are handed on: a position never runs ahead of them.
        if let Some(p) = &mut positions {
            p.save_if_due(read, || all_positions(&sources));
        }
        ctx.ready.fire();
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = ctx.shutdown.changed() => break,
        }
    }
    if let Some(p) = &mut positions {
        p.save(all_positions(&sources));
    }
}
