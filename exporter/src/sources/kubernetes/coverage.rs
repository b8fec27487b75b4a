//! Whether the exporter actually reads the pods it watches: the running pods from which no log
//! line was read for [`SILENT_LOGS_SECS`] (`discord_gateway_exporter_kubernetes_pods_without_lines`).
//! One number per exporter, whatever the number of pods: a per-pod timestamp would add a
//! series per pod the engine already exports.

use chrono::TimeDelta;

use super::pods::PodInfo;
use dge_core::observation::Timestamp;

/// A running pod with no line read for this long counts (30 min: a healthy bot logs at least
/// its gateway lines, heartbeats or events, far more often).
pub const SILENT_LOGS_SECS: i64 = 30 * 60;

/// The pods of `pods` that exist, have a bot container running since before the window, and
/// from which no line was read within [`SILENT_LOGS_SECS`] before `now` (`last_line`: when a
/// line of the pod was last read, by pod key).
pub fn pods_without_lines<'a>(
    pods: impl Iterator<Item = &'a PodInfo>,
    last_line: impl Fn(&str) -> Option<Timestamp>,
    now: Timestamp,
) -> usize {
    let window = TimeDelta::seconds(SILENT_LOGS_SECS);
    pods.filter(|p| !p.gone && p.container.is_some())
        .filter_map(|p| {
            let run = p.current.as_ref().filter(|r| r.running)?;
            // A run of unknown start is judged from the last line alone.
            let since = match (run.started, last_line(&p.key)) {
                (Some(s), Some(l)) => s.max(l),
                (s, l) => s.or(l)?,
            };
            (now - since >= window).then_some(())
        })
        .count()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::sources::kubernetes::pods::RunInfo;

    fn at(min: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 4, 19, 4, 0, 0).unwrap() + TimeDelta::minutes(min)
    }

    fn pod(key: &str, started: Option<i64>, running: bool) -> PodInfo {
        PodInfo {
            key: key.into(),
            namespace: "bots".into(),
            name: key.into(),
            uid: Some(key.into()),
            bot: None,
            container: Some("bot".into()),
            current: started.map(|m| RunInfo {
                id: format!("containerd://{key}"),
                restarts: 0,
                running,
                started: Some(at(m)),
            }),
            previous: false,
            gone: false,
        }
    }

    #[test]
    fn counts_running_pods_silent_for_the_window_only() {
        let mut gone = pod("gone", Some(0), true);
        gone.gone = true;
        let mut other_container = pod("sidecar-only", Some(0), true);
        other_container.container = None;
        let pods = [
            pod("read-recently", Some(0), true),
            pod("read-long-ago", Some(0), true),
            pod("never-read", Some(0), true),
            pod("just-started", Some(50), true),
            pod("exited", Some(0), false),
            pod("not-started", None, false),
            gone,
            other_container,
        ];
        let last = |k: &str| match k {
            "read-recently" => Some(at(55)),
            "read-long-ago" => Some(at(20)),
            _ => None,
        };
        // At 60 min: read-long-ago (40 min) and never-read (running 60 min); just-started has
        // run 10 minutes only; the others are not running bot containers.
        assert_eq!(pods_without_lines(pods.iter(), last, at(60)), 2);
        // A line read from never-read at 59: one left.
        let last2 = |k: &str| {
            if k == "never-read" {
                Some(at(59))
            } else {
                last(k)
            }
        };
        assert_eq!(pods_without_lines(pods.iter(), last2, at(60)), 1);
        // Exactly at the window's end it counts; a second before it does not.
        assert_eq!(pods_without_lines(pods[1..2].iter(), last, at(20 + 30)), 1);
        assert_eq!(
            pods_without_lines(pods[1..2].iter(), last, at(20 + 30) - TimeDelta::seconds(1)),
            0
        );
    }
}
