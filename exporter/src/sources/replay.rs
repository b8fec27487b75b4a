//! Replay inputs: files and folders of captures, each recognised by its content.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::kube_json::{PodAttribution, read_json_capture};
use super::logs::{CompiledProfile, Framing, LogStream, Outcome, read_log_bytes};
use crate::error::{Error, Result};
use crate::observation::{InstanceId, Observation};

/// What one input file was and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    /// `log` or `json`.
    pub kind: &'static str,
    pub observations: usize,
    pub matched: u64,
    pub ignored: u64,
    pub malformed: u64,
    /// Problems worth telling the user (bad JSON objects, malformed lines), bounded.
    pub problems: Vec<String>,
}

/// Everything read from the inputs, sorted by time.
#[derive(Debug, Default)]
pub struct ReplayInput {
    pub observations: Vec<Observation>,
    pub files: Vec<FileReport>,
}

/// Options of the readers.
pub struct ReadOptions<'a> {
    pub profile: Arc<CompiledProfile>,
    pub attribution: &'a PodAttribution,
    pub default_bot: Option<String>,
    pub max_line_bytes: usize,
}

const MAX_PROBLEMS_PER_FILE: usize = 20;

/// Reads files and folders (recursively, in name order; hidden files and `*.md` skipped).
pub fn read_paths(paths: &[PathBuf], opts: &ReadOptions<'_>) -> Result<ReplayInput> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files)?;
    }
    let mut input = ReplayInput::default();
    for f in files {
        let bytes = std::fs::read(&f).map_err(|e| Error::io(&f, e))?;
        let report = read_file(&f, &bytes, opts, &mut input.observations);
        input.files.push(report);
    }
    input.observations.sort_by_key(|o| o.at);
    Ok(input)
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
    if meta.is_file() {
        out.push(p.to_path_buf());
        return Ok(());
    }
    if !meta.is_dir() {
        return Err(Error::Unreadable {
            path: p.to_path_buf(),
            reason: "neither a file nor a folder".into(),
        });
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
        .map_err(|e| Error::io(p, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|e| {
            let name = e.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.') && !name.ends_with(".md")
        })
        .collect();
    entries.sort();
    for e in entries {
        collect(&e, out)?;
    }
    Ok(())
}

/// Whether the bytes are JSON (a pod list, a watch stream, JSON lines) rather than a log.
pub fn looks_like_json(bytes: &[u8]) -> bool {
    let mut it = bytes.iter().skip_while(|b| b.is_ascii_whitespace());
    match it.next() {
        Some(b'{') => true,
        // discord.py lines start with `[2026-...`; a JSON array starts with `[{`, `[]` or `[\n`.
        Some(b'[') => matches!(
            it.find(|b| !b.is_ascii_whitespace()),
            Some(b'{') | Some(b']')
        ),
        _ => false,
    }
}

/// Where a log file's lines come from: the kubelet path names namespace, pod, uid and
/// container; otherwise the file name is the pod (`kubectl logs --timestamps POD > POD.log`).
pub fn instance_from_path(path: &Path) -> InstanceId {
    let comps: Vec<&str> = path
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    if comps.len() >= 3 {
        let dir = comps[comps.len() - 3];
        let parts: Vec<&str> = dir.splitn(3, '_').collect();
        let file = comps[comps.len() - 1];
        if parts.len() == 3
            && file.ends_with(".log")
            && file[..file.len() - 4].parse::<u32>().is_ok()
        {
            return InstanceId {
                namespace: parts[0].into(),
                pod: parts[1].into(),
                uid: Some(parts[2].into()),
                container: Some(comps[comps.len() - 2].into()),
            };
        }
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("unknown");
    let mut pod = name;
    for ext in [".gz", ".log", ".txt", ".previous"] {
        pod = pod.strip_suffix(ext).unwrap_or(pod);
    }
    InstanceId::pod("", pod)
}

fn read_file(
    path: &Path,
    bytes: &[u8],
    opts: &ReadOptions<'_>,
    out: &mut Vec<Observation>,
) -> FileReport {
    let source = format!("file:{}", path.display());
    let before = out.len();
    if looks_like_json(bytes) {
        let cap = read_json_capture(bytes, &source, opts.attribution);
        let problems = cap
            .problems
            .iter()
            .take(MAX_PROBLEMS_PER_FILE)
            .map(|p| format!("line {}: {}", p.line, p.reason))
            .collect();
        let n = cap.observations.len();
        out.extend(cap.observations);
        return FileReport {
            path: path.to_path_buf(),
            kind: "json",
            observations: n,
            matched: cap.objects.saturating_sub(cap.problems.len() + cap.ignored) as u64,
            ignored: cap.ignored as u64,
            malformed: cap.problems.len() as u64,
            problems,
        };
    }
    let mut stream = LogStream::new(
        opts.profile.clone(),
        Framing::Auto,
        instance_from_path(path),
        source,
    )
    .with_bot(opts.default_bot.clone())
    .with_max_line_bytes(opts.max_line_bytes);
    read_log_bytes(bytes, &mut stream, out);
    stream.finish(out);
    let c = stream.counts();
    let mut problems = Vec::new();
    if c.get(Outcome::Malformed) > 0 {
        problems.push(format!(
            "{} malformed line(s) skipped (last reason: {})",
            c.get(Outcome::Malformed),
            stream.last_malformed_reason().unwrap_or("unknown")
        ));
    }
    FileReport {
        path: path.to_path_buf(),
        kind: "log",
        observations: out.len() - before,
        matched: c.get(Outcome::Matched),
        ignored: c.get(Outcome::Ignored),
        malformed: c.get(Outcome::Malformed),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_paths_name_the_pod() {
        let i = instance_from_path(Path::new(
            "/var/log/pods/bots_agentbroker-5f7b9c6d8-p4m2z_1234-abcd/agentbroker/0.log",
        ));
        assert_eq!(i.namespace, "bots");
        assert_eq!(i.pod, "agentbroker-5f7b9c6d8-p4m2z");
        assert_eq!(i.uid.as_deref(), Some("1234-abcd"));
        assert_eq!(i.container.as_deref(), Some("agentbroker"));
        let i = instance_from_path(Path::new("capture/agentbroker-5f7b9c6d8-p4m2z.log"));
        assert_eq!(
            (i.namespace.as_str(), i.pod.as_str()),
            ("", "agentbroker-5f7b9c6d8-p4m2z")
        );
    }

    #[test]
    fn json_is_recognised_by_content() {
        assert!(looks_like_json(b"  {\"kind\":\"List\"}"));
        assert!(looks_like_json(b"[\n {}]"));
        assert!(!looks_like_json(
            b"[2026-04-19 04:12:26] [INFO    ] discord.client: x"
        ));
        assert!(!looks_like_json(
            b"2026-04-19T04:12:03.481227Z  INFO openab: x"
        ));
    }
}
