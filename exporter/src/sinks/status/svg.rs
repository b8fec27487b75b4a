//! A bot's timeline as inline SVG: per pod a lifecycle bar and a session bar on a common UTC
//! axis, the same rows as `replay`'s text timeline. Shape and the timeline's own mark
//! characters carry the meaning, colour only repeats it: pending is a thin line, running a
//! full bar, terminating a hatched bar, a live session a bar, a lingering one an outline, a
//! finding its kind's mark character over a band (or a flag at its start).

use std::fmt::Write;

use super::html::{esc, utc};
use crate::sinks::timeline::{BotTimeline, LIFECYCLE, Mark, Stretch, finding_legend};
use dge_core::engine::Severity;
use dge_core::observation::Timestamp;

const WIDTH: f64 = 960.0;
/// Left column: the pod names.
const LABEL: f64 = 230.0;
const ROW: f64 = 34.0;
const TOP: f64 = 22.0;

/// The SVG of one bot's rows (nothing when it has no pod).
pub fn timeline(out: &mut String, t: &BotTimeline) {
    if t.pods.is_empty() {
        return;
    }
    let height = TOP + ROW * t.pods.len() as f64 + 4.0;
    let plot = WIDTH - LABEL - 28.0;
    let span = (t.end - t.start).num_milliseconds().max(1) as f64;
    let x = |at: Timestamp| -> f64 {
        let f = (at - t.start).num_milliseconds() as f64 / span;
        LABEL + f.clamp(0.0, 1.0) * plot
    };
    let _ = write!(
        out,
        "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" \
         height=\"{height}\" role=\"img\" aria-label=\"Timeline of {bot}: {n} pod(s) from {a} \
         to {b}\" xmlns=\"http://www.w3.org/2000/svg\">",
        bot = esc(&t.bot),
        n = t.pods.len(),
        a = utc(t.start),
        b = utc(t.end),
    );
    axis(out, t.start, t.end, &x, height);
    for (i, p) in t.pods.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let name = if p.pod.chars().count() > 30 {
            let tail: String = p.pod.chars().rev().take(29).collect();
            format!("…{}", tail.chars().rev().collect::<String>())
        } else {
            p.pod.clone()
        };
        let _ = write!(
            out,
            "<g class=\"pod\" data-pod=\"{pod}\"><title>{ns}{pod}</title>\
             <text x=\"4\" y=\"{ty}\" class=\"pod-name\">{name}</text>\
             <text x=\"14\" y=\"{sy}\" class=\"row-name\">session</text>",
            pod = esc(&p.pod),
            ns = if p.namespace.is_empty() {
                String::new()
            } else {
                format!("{}/", esc(&p.namespace))
            },
            ty = y + 11.0,
            sy = y + 25.0,
            name = esc(&name),
        );
        for s in &p.life {
            stretch(out, s, &x, y + 2.0);
        }
        for s in &p.sessions {
            stretch(out, s, &x, y + 16.0);
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
}

/// Patterns: the terminating hatch. Written once per page (an id is unique in a document,
/// and every inline SVG of the page can refer to it): a copy per timeline cost 250 bytes per
/// drawing.
pub const DEFS: &str = "<svg width=\"0\" height=\"0\" style=\"position:absolute\" \
    aria-hidden=\"true\"><defs><pattern id=\"hatch\" width=\"6\" height=\"6\" \
    patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" \
    height=\"6\" fill=\"#f3d9a4\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#9a5b00\" \
    stroke-width=\"3\"/></pattern></defs></svg>";

/// Ticks at a round interval, labelled in UTC.
fn axis(out: &mut String, start: Timestamp, end: Timestamp, x: &impl Fn(Timestamp) -> f64, h: f64) {
    let secs = (end - start).num_seconds().max(1);
    let step = [
        10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
    ]
    .into_iter()
    .find(|s| secs / s <= 8)
    .unwrap_or(86_400 * ((secs / 86_400 / 8) + 1));
    let first = start.timestamp().div_euclid(step) * step + step;
    let mut t = first;
    while t <= end.timestamp() {
        let at = Timestamp::from_timestamp(t, 0).unwrap_or(start);
        let px = x(at);
        let label = if step < 60 {
            at.format("%H:%M:%S")
        } else {
            at.format("%H:%M")
        };
        let _ = write!(
            out,
            "<line class=\"tick\" x1=\"{px:.1}\" y1=\"14\" x2=\"{px:.1}\" y2=\"{h:.1}\"/>\
             <text class=\"tick-label\" x=\"{px:.1}\" y=\"11\">{label}</text>"
        );
        t += step;
    }
    let _ = write!(
        out,
        "<text class=\"axis-name\" x=\"4\" y=\"11\">time (UTC)</text>"
    );
}

fn stretch(out: &mut String, s: &Stretch, x: &impl Fn(Timestamp) -> f64, y: f64) {
    let (a, b) = (x(s.from), x(s.to));
    let w = (b - a).max(2.0);
    // Times of day only (the axis and the caption give the dates): a fleet has thousands.
    let hms = |t: Timestamp| t.format("%H:%M:%S");
    let when = if s.from == s.to {
        format!("at {} UTC", hms(s.from))
    } else {
        format!("{} to {} UTC", hms(s.from), hms(s.to))
    };
    // The pod is named by the row's own title.
    let title = format!("{} {when}", describe(s.what));
    match s.what {
        Mark::Pending => {
            let _ = write!(
                out,
                "<rect class=\"m-pending\" x=\"{a:.1}\" y=\"{:.1}\" width=\"{w:.1}\" \
                 height=\"2\"><title>{title}</title></rect>",
                y + 5.0
            );
        }
        Mark::Running | Mark::Terminating | Mark::Live => {
            let class = match s.what {
                Mark::Running => "m-running",
                Mark::Terminating => "m-terminating",
                _ => "m-live",
            };
            let _ = write!(
                out,
                "<rect class=\"{class}\" x=\"{a:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" \
                 height=\"12\"><title>{title}</title></rect>"
            );
        }
        Mark::Lingering => {
            let _ = write!(
                out,
                "<rect class=\"m-lingering\" x=\"{a:.1}\" y=\"{:.1}\" width=\"{w:.1}\" \
                 height=\"11\"><title>{title}</title></rect>",
                y + 0.5
            );
        }
        Mark::Finding {
            kind,
            legend,
            point,
        } => {
            let sev = severity_class(kind.meta().severity);
            let mark = esc_char(legend.mark);
            if point {
                let _ = write!(
                    out,
                    "<g class=\"m-finding {sev}\" data-kind=\"{k}\"><title>{title}</title>\
                     <path d=\"M{a:.1} {y0:.1} l-6 -7 h12 z\"/><text x=\"{a:.1}\" \
                     y=\"{ty:.1}\" class=\"mark\">{mark}</text></g>",
                    k = kind.as_str(),
                    y0 = y + 13.0,
                    ty = y + 24.0,
                );
            } else {
                let _ = write!(
                    out,
                    "<g class=\"m-finding {sev}\" data-kind=\"{k}\"><title>{title}</title>\
                     <rect x=\"{a:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"12\"/>\
                     <text x=\"{tx:.1}\" y=\"{ty:.1}\" class=\"mark\">{mark}</text></g>",
                    k = kind.as_str(),
                    tx = a + 6.0,
                    ty = y + 10.0,
                );
            }
        }
    }
}

/// The words for a mark (a stretch's tooltip, the legend).
pub fn describe(m: Mark) -> String {
    match m {
        Mark::Finding { kind, legend, .. } => format!("{} ({})", kind.as_str(), legend.means),
        other => LIFECYCLE
            .iter()
            .find(|(l, _)| *l == other)
            .map(|(_, w)| (*w).to_string())
            .unwrap_or_default(),
    }
}

pub fn severity_class(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "sev-critical",
        Severity::Warning => "sev-warning",
        Severity::Info => "sev-info",
    }
}

fn esc_char(c: char) -> String {
    esc(c.encode_utf8(&mut [0; 4])).into_owned()
}

/// The legend: a swatch drawn like the bars, the text timeline's character, the words.
pub fn legend(out: &mut String) {
    out.push_str("<ul class=\"legend\">");
    let swatch = |class: &str, h: u32| {
        format!(
            "<svg width=\"28\" height=\"14\" aria-hidden=\"true\"><rect class=\"{class}\" \
             x=\"1\" y=\"{}\" width=\"26\" height=\"{h}\"/></svg>",
            (14 - h) / 2
        )
    };
    for (m, words) in LIFECYCLE {
        let (class, h) = match m {
            Mark::Pending => ("m-pending", 2),
            Mark::Running => ("m-running", 12),
            Mark::Terminating => ("m-terminating", 12),
            Mark::Lingering => ("m-lingering", 11),
            _ => ("m-live", 12),
        };
        let _ = write!(
            out,
            "<li>{} <code>{}</code> {words}</li>",
            swatch(class, h),
            esc_char(m.char())
        );
    }
    for l in finding_legend() {
        let _ = write!(
            out,
            "<li><span class=\"flag\" aria-hidden=\"true\">▲</span> <code>{}</code> {}</li>",
            esc_char(l.mark),
            esc(l.means)
        );
    }
    out.push_str("</ul>");
}
