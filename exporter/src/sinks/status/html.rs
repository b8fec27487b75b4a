//! The page's HTML: written as strings, every value from the inputs (bot and pod names,
//! explanations, evidence lines, source details) through [`esc`]. One inline stylesheet, no
//! script, no external asset; the live page reloads itself with a meta refresh.

use std::borrow::Cow;
use std::fmt::Write;

use super::Mode;
use super::model::{BotPage, Page, span};
use super::svg;
use dge_core::engine::{Finding, Kind, Severity};
use dge_core::observation::Timestamp;

/// Evidence lines shown per finding (as many as `replay`'s text), and characters per line.
const EVIDENCE_LINES: usize = 4;
const EVIDENCE_CHARS: usize = 400;
/// Closed findings listed per bot on the live page.
const CLOSED_LIVE: usize = 5;

/// Escapes text for HTML content and double- or single-quoted attributes.
pub fn esc(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A time in UTC, to the second.
pub fn utc(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `<time>` with the UTC time and how long before the page's time it was.
fn when(p: &Page, t: Timestamp) -> String {
    let secs = (p.now - t).num_milliseconds() as f64 / 1000.0;
    let rel = match (p.mode, secs < 0.0) {
        (_, true) => format!("{} later", span(-secs)),
        (Mode::Live, false) => format!("{} ago", span(secs)),
        (Mode::Replay, false) => format!("{} before the capture's end", span(secs)),
    };
    format!(
        "<time datetime=\"{}\">{}</time> <span class=\"rel\">({rel})</span>",
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        utc(t)
    )
}

/// The whole document.
pub fn page(p: &Page) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = match p.mode {
        Mode::Live => "Discord gateway sessions: status",
        Mode::Replay => "Discord gateway sessions: incident report",
    };
    out.push_str("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    if p.mode == Mode::Live && p.refresh_secs > 0 {
        let _ = write!(
            out,
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            p.refresh_secs
        );
    }
    let _ = write!(
        out,
        "<title>{title}</title><style>{CSS}</style></head><body>{}",
        svg::DEFS
    );
    header(&mut out, p, title);
    out.push_str("<main>");
    for b in &p.bots {
        bot(&mut out, p, b);
    }
    if p.bots.is_empty() {
        out.push_str("<p class=\"empty\">No bot seen yet: no session, pod or Discord count.</p>");
    }
    sources(&mut out, p);
    out.push_str("</main>");
    footer(&mut out, p);
    out.push_str("</body></html>\n");
    out
}

fn header(out: &mut String, p: &Page, title: &str) {
    let [crit, warn, info] = p.active_counts();
    let _ = write!(
        out,
        "<header><h1>{title}</h1><p class=\"as-of\">As of <time datetime=\"{}\">{}</time>. \
         {} bot(s); active findings: <strong>{crit} critical</strong>, {warn} warning, {info} \
         info.</p>",
        p.now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        utc(p.now),
        p.bots.len(),
    );
    out.push_str(
        "<table class=\"summary\"><caption>Bots at a glance</caption><thead><tr><th \
         scope=\"col\">Bot</th><th scope=\"col\">State</th><th scope=\"col\">Live \
         sessions</th><th scope=\"col\">Active findings</th></tr></thead><tbody>",
    );
    for b in &p.bots {
        let kinds: Vec<&str> = b.active.iter().map(|f| f.kind.as_str()).collect();
        let _ = write!(
            out,
            "<tr><th scope=\"row\"><a href=\"#{id}\">{name}</a></th><td>{state}</td>\
             <td>{live}</td><td>{kinds}</td></tr>",
            id = anchor(&b.timeline.bot),
            name = esc(&b.timeline.bot),
            state = badge(b.worst),
            live = b.live_sessions,
            kinds = if kinds.is_empty() {
                "none".to_string()
            } else {
                esc(&kinds.join(", ")).into_owned()
            },
        );
    }
    out.push_str("</tbody></table></header>");
}

/// The state in words (and an icon), never colour alone.
fn badge(worst: Option<Severity>) -> String {
    let (class, text) = match worst {
        Some(Severity::Critical) => ("sev-critical", "✖ CRITICAL"),
        Some(Severity::Warning) => ("sev-warning", "▲ WARNING"),
        Some(Severity::Info) => ("sev-info", "ℹ INFO"),
        None => ("sev-ok", "✔ OK"),
    };
    format!("<span class=\"badge {class}\">{text}</span>")
}

/// An id for a bot's section: its name with anything but [A-Za-z0-9_-] as `-`.
fn anchor(bot: &str) -> String {
    let name: String = bot
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("bot-{name}")
}

fn bot(out: &mut String, p: &Page, b: &BotPage) {
    let name = esc(&b.timeline.bot);
    let _ = write!(
        out,
        "<section class=\"bot\" id=\"{}\" data-bot=\"{name}\"><h2>{name} {}</h2>",
        anchor(&b.timeline.bot),
        badge(b.worst)
    );
    if b.active.is_empty() {
        let _ = write!(
            out,
            "<p class=\"no-findings\">No active findings for {name}.</p>"
        );
    } else {
        let _ = write!(
            out,
            "<h3>Active findings ({})</h3><div class=\"findings active\">",
            b.active.len()
        );
        for f in &b.active {
            finding(out, p, f);
        }
        out.push_str("</div>");
    }
    timeline(out, p, b);
    closed(out, p, b);
    out.push_str("<h3>What the exporter can see</h3><ul class=\"sight\">");
    for s in &b.sight {
        let _ = write!(
            out,
            "<li class=\"{}\"><strong>{} {}</strong>: {}</li>",
            if s.seen { "seen" } else { "unseen" },
            if s.seen { "✔" } else { "✖ not seen:" },
            esc(s.what),
            esc(&s.detail)
        );
    }
    out.push_str("</ul></section>");
}

fn timeline(out: &mut String, p: &Page, b: &BotPage) {
    let t = &b.timeline;
    let what = match p.window {
        Some(w) => format!("last {}", span(w.num_seconds() as f64)),
        None => "the whole capture".into(),
    };
    let _ = write!(out, "<h3>Timeline ({what})</h3>");
    if t.pods.is_empty() {
        out.push_str("<p class=\"no-pods\">No pod or session in this period.</p>");
    } else {
        let _ = write!(out, "<figure><div class=\"scroll\">");
        svg::timeline(out, t);
        let _ = write!(
            out,
            "</div><figcaption>{} to {}: {} pod(s){}.</figcaption></figure>",
            utc(t.start),
            utc(t.end),
            t.pods.len(),
            match b.hidden_pods {
                0 => String::new(),
                n => format!("; {n} older pod(s) ended before this period"),
            }
        );
        if let Some(z) = &b.zoom {
            let _ = write!(
                out,
                "<h3>Close-up (last {})</h3><figure><div class=\"scroll\">",
                span((z.end - z.start).num_seconds() as f64)
            );
            svg::timeline(out, z);
            let _ = write!(
                out,
                "</div><figcaption>{} to {}: {} pod(s).</figcaption></figure>",
                utc(z.start),
                utc(z.end),
                z.pods.len()
            );
        }
        out.push_str("<details class=\"legend-box\"><summary>Legend</summary>");
        svg::legend(out);
        out.push_str("</details>");
    }
}

fn closed(out: &mut String, p: &Page, b: &BotPage) {
    if b.closed.is_empty() {
        return;
    }
    let shown = match p.mode {
        Mode::Live => CLOSED_LIVE.min(b.closed.len()),
        Mode::Replay => b.closed.len(),
    };
    let _ = write!(
        out,
        "<details class=\"closed\"{}><summary>Closed findings ({})</summary>\
         <div class=\"findings closed\">",
        if p.mode == Mode::Replay { " open" } else { "" },
        b.closed.len()
    );
    for f in b.closed.iter().take(shown) {
        finding(out, p, f);
    }
    if shown < b.closed.len() {
        let _ = write!(
            out,
            "<p>{} older closed finding(s) not shown; <a href=\"api/v1/findings\">all in the \
             JSON API</a>.</p>",
            b.closed.len() - shown
        );
    }
    out.push_str("</div></details>");
}

fn finding(out: &mut String, p: &Page, f: &Finding) {
    let sev = f.severity.as_str();
    let pod = f.subject.pod_label();
    let ns = f.subject.namespace_label();
    let since = f.since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let _ = write!(
        out,
        "<article class=\"finding {class}\" data-kind=\"{kind}\" data-severity=\"{sev}\" \
         data-namespace=\"{ns}\" data-pod=\"{pod}\" data-since=\"{since}\" data-until=\"{until}\">\
         <h4><span class=\"badge {class}\">{sev_upper}</span> <span class=\"kind\">{kind}</span>",
        class = svg::severity_class(f.severity),
        kind = f.kind.as_str(),
        ns = esc(ns),
        pod = esc(pod),
        until = f
            .until
            .map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default(),
        sev_upper = sev.to_uppercase(),
    );
    match f.subject.pod_name() {
        Some(pod) => {
            let _ = write!(out, " on pod <code class=\"pod\">{}</code>", esc(pod));
        }
        None => out.push_str(" for the whole bot"),
    }
    if !ns.is_empty() {
        let _ = write!(out, " in namespace <code>{}</code>", esc(ns));
    }
    if let Some(s) = f.subject.shard() {
        let _ = write!(out, ", shard {s}");
    }
    out.push_str("</h4><dl>");
    let _ = write!(
        out,
        "<dt>Since</dt><dd class=\"since\">{}</dd>",
        when(p, f.since)
    );
    if let Some(u) = f.until {
        let _ = write!(
            out,
            "<dt>Until</dt><dd class=\"until\">{} (lasted {})</dd>",
            when(p, u),
            span((u - f.since).num_seconds() as f64)
        );
    }
    let _ = write!(
        out,
        "<dt>What it means</dt><dd class=\"explanation\">{}</dd>",
        esc(&f.explanation)
    );
    let _ = write!(
        out,
        "<dt>What to do</dt><dd><a class=\"runbook\" href=\"{}{}\">Runbook for {}</a>{}</dd></dl>",
        esc(p.runbook_base),
        esc(f.runbook),
        f.kind.as_str(),
        // What the kind means in general, for an open finding (a closed one keeps it short).
        match f.until {
            None => format!(
                " <span class=\"rel\">({})</span>",
                esc(runbook_title(f.kind))
            ),
            Some(_) => String::new(),
        }
    );
    // The live page lists the evidence of active findings only (a closed one's is in the
    // JSON API): with many closed findings, the page stays small.
    if !f.evidence.is_empty() && (f.until.is_none() || p.mode == Mode::Replay) {
        let _ = write!(
            out,
            "<details class=\"evidence\"{}><summary>Evidence ({} line(s))</summary><ol>",
            if f.until.is_none() { " open" } else { "" },
            f.evidence.len()
        );
        for e in f.evidence.iter().take(EVIDENCE_LINES) {
            let mut text: String = e.text.chars().take(EVIDENCE_CHARS).collect();
            if text.len() < e.text.len() {
                text.push('…');
            }
            let _ = write!(
                out,
                "<li><time datetime=\"{}\">{}</time> <span class=\"src\">{}</span> \
                 <code>{}</code></li>",
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                e.at.format("%H:%M:%S%.3f"),
                esc(&e.source),
                esc(&text)
            );
        }
        if f.evidence.len() > EVIDENCE_LINES {
            let _ = write!(
                out,
                "<li>… {} more in the JSON API</li>",
                f.evidence.len() - EVIDENCE_LINES
            );
        }
        out.push_str("</ol></details>");
    }
    out.push_str("</article>");
}

/// The kind's description, as the link's words.
fn runbook_title(kind: Kind) -> &'static str {
    kind.meta().description
}

fn sources(out: &mut String, p: &Page) {
    let heading = match p.mode {
        Mode::Live => "Sources",
        Mode::Replay => "Inputs",
    };
    let _ = write!(
        out,
        "<section class=\"sources\" id=\"sources\"><h2>{heading}</h2>"
    );
    if p.sources.is_empty() {
        out.push_str("<p>No source reported yet.</p></section>");
        return;
    }
    out.push_str(
        "<table><thead><tr><th scope=\"col\">Source</th><th scope=\"col\">State</th><th \
         scope=\"col\">Detail</th></tr></thead><tbody>",
    );
    for s in p.sources {
        let _ = write!(
            out,
            "<tr class=\"{}\" data-source=\"{name}\"><th scope=\"row\">{name}</th><td>{}</td>\
             <td>{}</td></tr>",
            if s.up { "up" } else { "down" },
            if s.up { "✔ up" } else { "✖ DOWN" },
            esc(&s.detail),
            name = esc(&s.name),
        );
    }
    out.push_str("</tbody></table></section>");
}

fn footer(out: &mut String, p: &Page) {
    out.push_str("<footer><p>");
    match p.mode {
        Mode::Live => {
            if p.refresh_secs > 0 {
                let _ = write!(out, "This page reloads every {} s. ", p.refresh_secs);
            }
            out.push_str(
                "Read-only, and without authentication of its own: expose it through \
                 <code>kubectl port-forward</code>, not a public Service. Machine-readable: \
                 <a href=\"metrics\">/metrics</a>, <a href=\"api/v1/findings\">findings</a>, \
                 <a href=\"api/v1/sessions\">sessions</a>, <a href=\"healthz\">health</a>.",
            );
        }
        Mode::Replay => out.push_str(
            "Written by <code>discord-gateway-exporter replay --format html</code> from \
             recorded captures; times are the captures' own.",
        ),
    }
    let _ = write!(
        out,
        " discord-gateway-exporter {}.</p></footer>",
        env!("CARGO_PKG_VERSION")
    );
}

const CSS: &str = "\
:root{color-scheme:light;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#fff;--crit:#b42318;\
--warn:#9a5b00;--info:#0b5cad;--ok:#1a7f37}\
*{box-sizing:border-box}\
body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);\
background:var(--bg)}\
header,main,footer{max-width:1240px;margin:0 auto;padding:0 16px}\
h1{font-size:1.5rem;margin:16px 0 4px}h2{font-size:1.25rem;margin:0 0 8px}\
h3{font-size:1.05rem;margin:16px 0 6px}h4{font-size:1rem;margin:0 0 6px}\
.as-of{color:var(--muted);margin:0 0 10px}\
table{border-collapse:collapse;width:100%;margin:6px 0 16px}\
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top;\
overflow-wrap:anywhere}\
caption{text-align:left;font-weight:600;padding:4px 0}\
.bot,.sources{border:1px solid var(--line);border-radius:8px;padding:14px;margin:16px 0}\
.badge{display:inline-block;font-size:.8rem;font-weight:700;padding:1px 7px;border-radius:10px;\
border:1px solid currentColor;white-space:nowrap;vertical-align:middle}\
.sev-critical{color:var(--crit)}.sev-warning{color:var(--warn)}.sev-info{color:var(--info)}\
.sev-ok{color:var(--ok)}\
.finding{border:1px solid var(--line);border-left:6px solid currentColor;border-radius:6px;\
padding:10px 12px;margin:8px 0;color:var(--fg)}\
.finding.sev-critical{border-left-color:var(--crit)}.finding.sev-warning{border-left-color:var(--warn)}\
.finding.sev-info{border-left-color:var(--info)}\
.finding .kind{font-family:ui-monospace,monospace}\
dl{display:grid;grid-template-columns:9em 1fr;gap:2px 10px;margin:4px 0}\
dt{color:var(--muted)}dd{margin:0}\
.rel{color:var(--muted)}\
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em;overflow-wrap:anywhere}\
.evidence ol{margin:4px 0;padding-left:1.5em;font-size:.9em}.evidence li{margin:2px 0}\
.src{color:var(--muted)}\
.scroll{overflow-x:auto;direction:rtl}figure{margin:0}figcaption{color:var(--muted);font-size:.9em}\
.timeline{display:block;direction:ltr;width:100%;min-width:760px;height:auto;\
font:11px system-ui,sans-serif}\
.timeline .pod-name{font-weight:600;fill:#1b1f24}.timeline .row-name{fill:#57606a}\
.timeline .tick{stroke:#e6e9ec}.timeline .axis-name{fill:#57606a}.timeline .tick-label{fill:#57606a;text-anchor:middle}\
.m-pending{fill:#8c959f}.m-running{fill:#4a6fa5}.m-terminating{fill:url(#hatch)}\
.m-live{fill:#2da44e}.m-lingering{fill:#fff;stroke:#2da44e;stroke-width:1.5;stroke-dasharray:4 2}\
.m-finding.sev-critical rect,.m-finding.sev-critical path{fill:#d1242f}\
.m-finding.sev-warning rect,.m-finding.sev-warning path{fill:#bf8700}\
.m-finding.sev-info rect,.m-finding.sev-info path{fill:#0969da}\
.m-finding .mark{fill:#fff;font-weight:700;font-size:11px}\
.m-finding path + .mark{fill:#1b1f24;text-anchor:middle}\
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:4px 16px;margin:6px 0}\
.legend li{display:flex;align-items:center;gap:5px}.flag{color:#d1242f}\
.sight{padding-left:1.2em}.sight .unseen strong{color:var(--warn)}\
.sources tr.down th,.sources tr.down td{color:var(--crit);font-weight:600}\
footer{color:var(--muted);font-size:.9em;padding-bottom:24px}\
@media (max-width:640px){body{font-size:14px}dl{grid-template-columns:1fr}dt{margin-top:4px}\
.summary th:nth-child(3),.summary td:nth-child(3){display:none}.bot,.sources{padding:10px}}\
";
