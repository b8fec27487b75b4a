//! The status page in a real browser: Debian's headless Chromium opens the demo's `/` and
//! every `replay --format html` report of `examples/`; the DOM it dumps is checked against the
//! JSON the same exporter serves (`/api/v1/findings`, `replay --format json`).
//!
//! `UPDATE_SCREENSHOTS=1` writes the demo's screenshots into `docs/images/` (the README shows
//! them); otherwise they go to a temporary folder and are only checked.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use scraper::{ElementRef, Html, Selector};
use serde_json::Value;

use crate::support::exporter::{self, Exporter};
use crate::support::prom::repo_root;

/// The demo's runbook links go to the default base (`[status] runbook_base_url`).
const RUNBOOK_BASE: &str =
    "https://github.com/discord-gateway-exporter/discord-gateway-exporter/blob/main/";

fn chromium() -> PathBuf {
    let p = PathBuf::from("/usr/bin/chromium");
    assert!(
        p.is_file(),
        "Debian's chromium is not installed (/usr/bin/chromium): the status page is tested in a \
         real browser. Run `bash .ci/test`, which installs it (`apt-get install chromium`)."
    );
    p
}

/// Runs headless Chromium with `args` on `url` (its own profile folder, no network besides
/// the page), killed after two minutes.
fn browse(args: &[String], url: &str) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait for chromium").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 2 min on {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("chromium output");
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The DOM after the page loaded, as Chromium serializes it.
fn dump_dom(url: &str) -> Html {
    let out = browse(&["--dump-dom".into()], url);
    let dom = String::from_utf8(out.stdout).expect("UTF-8 DOM");
    assert!(dom.contains("</html>"), "no document from {url}: {dom}");
    Html::parse_document(&dom)
}

/// A screenshot of `url` at `width` x `height` into `file`; checks it is a PNG of that width
/// with real content (a blank page compresses to a few kB).
fn screenshot(url: &str, file: &Path, width: u32, height: u32) {
    let _ = std::fs::remove_file(file);
    browse(
        &[
            format!("--screenshot={}", file.display()),
            format!("--window-size={width},{height}"),
        ],
        url,
    );
    let png = std::fs::read(file).expect("screenshot written");
    assert_eq!(
        &png[..8],
        b"\x89PNG\r\n\x1a\n",
        "not a PNG: {}",
        file.display()
    );
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((w, h), (width, height), "{}", file.display());
    assert!(png.len() > 30_000, "{} looks blank", file.display());
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap_or_else(|e| panic!("selector {s}: {e:?}"))
}

fn attr<'a>(e: &ElementRef<'a>, name: &str) -> &'a str {
    e.value().attr(name).unwrap_or("")
}

/// A time as the page writes it in `data-since` (milliseconds, UTC).
fn ms(json_time: &Value) -> String {
    let t: DateTime<Utc> = json_time
        .as_str()
        .expect("a time")
        .parse()
        .expect("RFC 3339");
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The bot's section.
fn section<'a>(dom: &'a Html, bot: &str) -> ElementRef<'a> {
    dom.select(&sel("section.bot"))
        .find(|s| attr(s, "data-bot") == bot)
        .unwrap_or_else(|| panic!("no section for {bot}"))
}

/// (kind, namespace, pod, since, until) of the finding articles under `root`.
fn articles(root: ElementRef, which: &str) -> BTreeSet<(String, String, String, String, String)> {
    root.select(&sel(&format!(".findings.{which} article.finding")))
        .map(|a| {
            (
                attr(&a, "data-kind").to_string(),
                attr(&a, "data-namespace").to_string(),
                attr(&a, "data-pod").to_string(),
                attr(&a, "data-since").to_string(),
                attr(&a, "data-until").to_string(),
            )
        })
        .collect()
}

/// The same tuple from a JSON finding (API or replay report).
fn tuple(f: &Value) -> (String, String, String, String, String) {
    (
        f["kind"].as_str().unwrap().to_string(),
        f["namespace"].as_str().unwrap().to_string(),
        f["pod"].as_str().unwrap().to_string(),
        ms(&f["since"]),
        if f["until"].is_null() {
            String::new()
        } else {
            ms(&f["until"])
        },
    )
}

/// Nothing loaded from elsewhere: no script, no stylesheet link, no image or frame source.
fn assert_self_contained(dom: &Html, what: &str) {
    for s in [
        "script",
        "link[rel=stylesheet]",
        "[src]",
        "iframe",
        "object",
    ] {
        assert!(
            dom.select(&sel(s)).next().is_none(),
            "{what}: the page must be self-contained, found `{s}`"
        );
    }
}

fn active_api(demo: &Exporter) -> Vec<Value> {
    demo.json("/api/v1/findings?active=true")["findings"]
        .as_array()
        .unwrap()
        .clone()
}

fn find<'a>(list: &'a [Value], kind: &str, bot: &str) -> Option<&'a Value> {
    list.iter().find(|f| f["kind"] == kind && f["bot"] == bot)
}

#[test]
fn demo_status_page_shows_the_incident_in_chromium() {
    chromium();
    let dir = tempfile::tempdir().unwrap();
    // At 4x the rollouts land within a minute, and TallyBot's duplicate delivery stays open
    // for about 100 s after AgentBroker's silent session opened: time to take the DOM.
    let demo = Exporter::start(&["demo", "--speed", "4"], dir.path());
    demo.wait_for(
        Duration::from_secs(180),
        "AgentBroker silent and TallyBot duplicate delivery active",
        |d| {
            let a = active_api(d);
            (find(&a, "silent_session", "AgentBroker").is_some()
                && find(&a, "duplicate_delivery", "TallyBot").is_some())
            .then_some(())
        },
    );
    let url = format!("http://{}/", demo.addr);
    // The demo goes on while Chromium loads the page: what the API says before and after
    // brackets what the page can show.
    let api_before = active_api(&demo);
    let dom = dump_dom(&url);
    let api = active_api(&demo);
    assert_self_contained(&dom, "demo page");

    // AgentBroker: the silent session, its pod, since and runbook, as the API has them.
    let silent = find(&api, "silent_session", "AgentBroker").expect("still active");
    let agent = section(&dom, "AgentBroker");
    let article = agent
        .select(&sel(".findings.active article.finding"))
        .find(|a| attr(a, "data-kind") == "silent_session")
        .expect("AgentBroker's silent_session on the page");
    assert_eq!(attr(&article, "data-pod"), silent["pod"].as_str().unwrap());
    assert_eq!(attr(&article, "data-since"), ms(&silent["since"]));
    assert_eq!(attr(&article, "data-severity"), "critical");
    let text: String = article.text().collect();
    assert!(text.contains(silent["pod"].as_str().unwrap()), "{text}");
    assert!(text.contains("CRITICAL"), "severity in words: {text}");
    assert!(text.contains(" ago)"), "relative time: {text}");
    let since_utc = silent["since"].as_str().unwrap()[..19].replace('T', " ") + " UTC";
    assert!(text.contains(&since_utc), "UTC time {since_utc}: {text}");
    assert!(
        text.contains(silent["explanation"].as_str().unwrap()),
        "the explanation: {text}"
    );
    let runbook = article.select(&sel("a.runbook")).next().expect("runbook");
    assert_eq!(
        attr(&runbook, "href"),
        format!("{RUNBOOK_BASE}{}", silent["runbook"].as_str().unwrap())
    );
    assert!(
        attr(&runbook, "href").ends_with("docs/troubleshooting.md#discordbotsilentsession"),
        "{}",
        attr(&runbook, "href")
    );
    let evidence = article.select(&sel(".evidence li")).count();
    assert!(evidence >= 1, "evidence lines");
    // Its pod has rows on the timeline, with the silence drawn on them.
    let pod_rows: Vec<_> = agent
        .select(&sel("svg.timeline g.pod"))
        .filter(|g| attr(g, "data-pod") == silent["pod"].as_str().unwrap())
        .collect();
    assert!(
        !pod_rows.is_empty(),
        "the silent pod's rows on the timeline"
    );
    for row in &pod_rows {
        assert!(
            row.select(&sel("g.m-finding"))
                .any(|g| attr(&g, "data-kind") == "silent_session"),
            "the silence on the pod's session row"
        );
    }

    // TallyBot: both sessions receive every event.
    let dup = find(&api, "duplicate_delivery", "TallyBot").expect("still active");
    let tally = articles(section(&dom, "TallyBot"), "active");
    assert!(
        tally.contains(&tuple(dup)),
        "TallyBot's duplicate_delivery {:?} in {tally:?}",
        tuple(dup)
    );

    // HelperBot: the workaround, clean.
    assert!(
        !api.iter().any(|f| f["bot"] == "HelperBot"),
        "the demo's HelperBot is clean: {api:?}"
    );
    let helper = section(&dom, "HelperBot");
    assert!(articles(helper, "active").is_empty());
    let clean: String = helper
        .select(&sel(".no-findings"))
        .next()
        .expect("the no-findings line")
        .text()
        .collect();
    assert_eq!(clean, "No active findings for HelperBot.");
    assert!(helper.select(&sel("svg.timeline g.pod")).count() >= 2);

    // Every active finding of the API is on the page, and nothing else is active there.
    let page: BTreeSet<_> = dom
        .select(&sel("section.bot"))
        .flat_map(|s| articles(s, "active"))
        .collect();
    let before: BTreeSet<_> = api_before.iter().map(tuple).collect();
    let after: BTreeSet<_> = api.iter().map(tuple).collect();
    // Active before and still active after: the page has it.
    let steady: BTreeSet<_> = before.intersection(&after).cloned().collect();
    assert!(
        steady.is_subset(&page),
        "API (active throughout) {steady:?} vs page {page:?}"
    );
    // Nothing the API did not have active at one of the two moments.
    let either: BTreeSet<_> = before.union(&after).cloned().collect();
    assert!(page.is_subset(&either), "page {page:?} vs API {either:?}");
    // The demo's sources and what they see.
    let sources: Vec<_> = dom
        .select(&sel(".sources tr[data-source]"))
        .map(|r| attr(&r, "data-source").to_string())
        .collect();
    assert!(sources.contains(&"demo:logs".to_string()), "{sources:?}");

    let out = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        repo_root().join("docs/images")
    } else {
        dir.path().to_path_buf()
    };
    screenshot(&url, &out.join("status-page.png"), 1280, 1500);
    screenshot(&url, &out.join("status-page-phone.png"), 390, 1600);
}

#[test]
fn replay_html_of_every_example_matches_its_json_findings() {
    chromium();
    let dir = tempfile::tempdir().unwrap();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo_root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    examples.sort();
    assert!(examples.len() >= 5, "{examples:?}");
    for ex in &examples {
        let name = ex.file_name().unwrap().to_str().unwrap();
        let run = |format: &str| {
            let out = exporter::run(&["replay", "--format", format, ex.to_str().unwrap()]);
            assert!(
                out.status.success(),
                "{name} {format}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        let report: Value = serde_json::from_slice(&run("json")).unwrap();
        let file = dir.path().join(format!("{name}.html"));
        std::fs::write(&file, run("html")).unwrap();
        let dom = dump_dom(&format!("file://{}", file.display()));
        assert_self_contained(&dom, name);
        assert!(
            dom.select(&sel("meta[http-equiv=refresh]"))
                .next()
                .is_none(),
            "{name}: a report does not reload"
        );
        let findings = report["findings"].as_array().unwrap();
        let bots: BTreeSet<&str> = findings
            .iter()
            .chain(report["sessions"].as_array().unwrap())
            .map(|v| v["bot"].as_str().unwrap())
            .collect();
        for bot in &bots {
            let s = section(&dom, bot);
            let page: BTreeSet<_> = articles(s, "active")
                .into_iter()
                .chain(articles(s, "closed"))
                .collect();
            let json: BTreeSet<_> = findings
                .iter()
                .filter(|f| f["bot"] == *bot)
                .map(tuple)
                .collect();
            assert_eq!(page, json, "{name}: {bot}'s findings, page vs JSON");
            // An open finding is under "Active", a closed one under "Closed".
            for a in articles(s, "active") {
                assert!(
                    a.4.is_empty(),
                    "{name}: closed finding listed as active: {a:?}"
                );
            }
            if json.is_empty() {
                assert!(
                    s.select(&sel(".no-findings")).next().is_some(),
                    "{name}: {bot}"
                );
            }
            for f in findings.iter().filter(|f| f["bot"] == *bot) {
                let a = s
                    .select(&sel("article.finding"))
                    .find(|a| {
                        attr(a, "data-kind") == f["kind"]
                            && attr(a, "data-since") == ms(&f["since"])
                    })
                    .unwrap();
                let link = a.select(&sel("a.runbook")).next().unwrap();
                assert_eq!(
                    attr(&link, "href"),
                    format!("{RUNBOOK_BASE}{}", f["runbook"].as_str().unwrap()),
                    "{name}"
                );
            }
        }
        let sections = dom.select(&sel("section.bot")).count();
        assert_eq!(sections, bots.len(), "{name}: one section per bot");
        // Every input file is listed with its counts.
        let inputs = dom.select(&sel(".sources tr[data-source]")).count();
        assert_eq!(
            inputs,
            report["inputs"].as_array().unwrap().len(),
            "{name}: inputs"
        );
    }
}
