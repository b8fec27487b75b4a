//! Structured lines (JSON objects, logfmt) -> the one text layout the rules are written against.
//!
//! A structured line is first run through the literal prefilter as it is (a line without any
//! rule's literal costs no parsing and no allocation). Only a candidate is decoded and rendered
//! as a tracing-subscriber `fmt` line without its timestamp:
//!
//! ```text
//! {LEVEL:>5} {span{k=v}:...} {target}: {message} k=v k=v
//! ```
//!
//! so the same rules read `fmt()`, `fmt().json()` and logfmt output of a library. Which keys hold
//! the time, level, message and target is a [`StructuredFields`] mapping (per profile, and the
//! `[json_fields]` table of the config for the generic `json` profile).

use std::io::Write;

use memchr::memmem;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::time;
use super::zone::LogZone;
use dge_core::observation::Timestamp;

/// How a profile's lines are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Per line: a JSON object (`{` first), a logfmt line (`time=`, `ts=`, `level=`, `lvl=`,
    /// `msg=` first), else text.
    #[default]
    Auto,
    /// Text only: never decoded.
    Text,
    /// JSON objects (lines that are not are read as text).
    Json,
    /// logfmt (`key=value key="quoted value"`); every line is decoded.
    Logfmt,
}

/// Which keys of a structured line hold what. Paths are dotted (`fields.message`); the first
/// path present wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StructuredFields {
    pub time: Vec<String>,
    pub level: Vec<String>,
    pub message: Vec<String>,
    pub target: Vec<String>,
    /// Objects whose members are rendered as `key=value` after the message.
    pub fields: Vec<String>,
    /// An array of `{name, ..fields}` objects rendered as `name{k=v}:` span prefixes.
    pub spans: Option<String>,
    /// Render the other top-level scalar members as `key=value` too.
    pub rest: bool,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for StructuredFields {
    /// tracing-subscriber JSON, pino, winston, bunyan, zap, logrus, python-json-logger, logstash.
    fn default() -> Self {
        Self {
            time: strings(&["timestamp", "time", "ts", "@timestamp", "asctime", "t"]),
            level: strings(&["level", "levelname", "severity", "lvl", "log.level"]),
            message: strings(&["fields.message", "message", "msg", "@message"]),
            target: strings(&[
                "target",
                "logger",
                "logger_name",
                "name",
                "log.logger",
                "module",
            ]),
            fields: strings(&["fields"]),
            spans: Some("spans".into()),
            rest: true,
        }
    }
}

impl StructuredFields {
    /// Check the mapping (empty paths are an error).
    pub fn validate(&self) -> Result<(), String> {
        for (what, paths) in [
            ("time", &self.time),
            ("level", &self.level),
            ("message", &self.message),
            ("target", &self.target),
            ("fields", &self.fields),
        ] {
            if paths
                .iter()
                .any(|p| p.is_empty() || p.split('.').any(str::is_empty))
            {
                return Err(format!("{what}: an empty key path"));
            }
        }
        if self.message.is_empty() {
            return Err("message: at least one key".into());
        }
        Ok(())
    }
}

/// How one line is encoded, by its first bytes.
#[inline]
pub fn line_format(text: &[u8], profile: Format) -> Format {
    match profile {
        Format::Text => Format::Text,
        Format::Logfmt => Format::Logfmt,
        Format::Json | Format::Auto => {
            let first = text.iter().position(|b| !matches!(b, b' ' | b'\t'));
            match first.map(|i| (text[i], &text[i..])) {
                Some((b'{', _)) => Format::Json,
                Some((b't' | b'l' | b'm', rest)) if profile == Format::Auto && is_logfmt(rest) => {
                    Format::Logfmt
                }
                _ => Format::Text,
            }
        }
    }
}

/// A logfmt line starts with one of the usual first keys.
fn is_logfmt(s: &[u8]) -> bool {
    ["time=", "ts=", "level=", "lvl=", "msg="]
        .iter()
        .any(|k| s.starts_with(k.as_bytes()))
}

/// The line's own time, read without decoding the line (top-level keys only); a zone-less
/// time is UTC.
pub fn line_time(text: &[u8], fmt: Format, map: &StructuredFields) -> Option<Timestamp> {
    line_time_in(text, fmt, map, LogZone::Utc)
}

/// [`line_time`], a zone-less time read as local time in `zone`.
pub fn line_time_in(
    text: &[u8],
    fmt: Format,
    map: &StructuredFields,
    zone: LogZone,
) -> Option<Timestamp> {
    for key in &map.time {
        if key.contains('.') {
            continue;
        }
        let v = match fmt {
            Format::Json => json_top_value(text, key.as_bytes()),
            Format::Logfmt => logfmt_value(text, key.as_bytes()),
            _ => None,
        };
        if let Some(at) = v.and_then(|v| parse_time(v, zone)) {
            return Some(at);
        }
    }
    None
}

/// The raw value after `"key":` (a string's inside, or a number), without decoding.
fn json_top_value<'a>(text: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut pat = Vec::with_capacity(key.len() + 2);
    pat.push(b'"');
    pat.extend_from_slice(key);
    pat.push(b'"');
    let at = memmem::find(text, &pat)?;
    let mut rest = &text[at + pat.len()..];
    rest = rest
        .trim_ascii_start()
        .strip_prefix(b":")?
        .trim_ascii_start();
    if let Some(s) = rest.strip_prefix(b"\"") {
        let end = memchr::memchr2(b'"', b'\\', s)?;
        return Some(&s[..end]);
    }
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'e' | b'E' | b'+')))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// The raw value of `key=` at the start or after a space (quotes removed, no unescaping).
fn logfmt_value<'a>(text: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut from = 0;
    while let Some(off) = memmem::find(&text[from..], key) {
        let at = from + off;
        from = at + 1;
        let starts = at == 0 || text[at - 1] == b' ';
        if !starts || text.get(at + key.len()) != Some(&b'=') {
            continue;
        }
        let rest = &text[at + key.len() + 1..];
        if let Some(s) = rest.strip_prefix(b"\"") {
            let end = memchr::memchr(b'"', s).unwrap_or(s.len());
            return Some(&s[..end]);
        }
        let end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        return Some(&rest[..end]);
    }
    None
}

/// An RFC3339-like string, or epoch seconds / milliseconds / microseconds / nanoseconds.
fn parse_time(v: &[u8], zone: LogZone) -> Option<Timestamp> {
    if v.first().is_some_and(u8::is_ascii_digit) && v.len() >= 10 && v[4] == b'-' {
        return time::message_time(v, zone);
    }
    // Epoch numbers, exactly (no float rounding): integer and fraction digits apart.
    let (int, frac) = match memchr::memchr(b'.', v) {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &b""[..]),
    };
    if int.is_empty()
        || int.len() > 19
        || !int.iter().all(u8::is_ascii_digit)
        || !frac.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let n: i128 = std::str::from_utf8(int).ok()?.parse().ok()?;
    let unit: i128 = if n >= 100_000_000_000_000_000 {
        1
    } else if n >= 100_000_000_000_000 {
        1_000
    } else if n >= 100_000_000_000 {
        1_000_000
    } else {
        1_000_000_000
    };
    let mut nanos = n * unit;
    let mut scale = unit;
    for d in frac.iter().take(9) {
        scale /= 10;
        nanos += i128::from(d - b'0') * scale;
    }
    if nanos <= 0 {
        return None;
    }
    let secs = i64::try_from(nanos / 1_000_000_000).ok()?;
    chrono::DateTime::from_timestamp(secs, (nanos % 1_000_000_000) as u32)
}

/// A level word or number as the text layout's level.
fn level_word(v: &Value) -> Option<&'static str> {
    match v {
        Value::Number(n) => {
            // pino / bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
            let n = n.as_f64()?;
            Some(match n as i64 {
                ..=19 => "TRACE",
                20..=29 => "DEBUG",
                30..=39 => "INFO",
                40..=49 => "WARN",
                _ => "ERROR",
            })
        }
        Value::String(s) => level_str(s.as_bytes()),
        _ => None,
    }
}

fn level_str(s: &[u8]) -> Option<&'static str> {
    let s = s.trim_ascii();
    let mut up = [0u8; 8];
    if s.is_empty() || s.len() > up.len() {
        return None;
    }
    for (d, b) in up.iter_mut().zip(s) {
        *d = b.to_ascii_uppercase();
    }
    Some(match &up[..s.len()] {
        b"TRACE" | b"TRC" => "TRACE",
        b"DEBUG" | b"DBG" | b"VERBOSE" => "DEBUG",
        b"INFO" | b"INF" | b"NOTICE" => "INFO",
        b"WARN" | b"WARNING" | b"WRN" => "WARN",
        b"ERROR" | b"ERR" | b"FATAL" | b"CRITICAL" | b"PANIC" | b"CRIT" | b"EMERG" | b"ALERT" => {
            "ERROR"
        }
        _ => return None,
    })
}

fn get_path<'v>(obj: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    // A key with a dot in it (`log.level`) first, then the nested path.
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut cur = obj.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

fn first<'v>(obj: &'v Map<String, Value>, paths: &'v [String]) -> Option<(&'v str, &'v Value)> {
    paths
        .iter()
        .find_map(|p| get_path(obj, p).map(|v| (p.as_str(), v)))
}

/// A scalar as text: strings bare unless they hold a space or quote (then JSON-quoted).
fn write_scalar(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => {
            if s.is_empty() || s.bytes().any(|b| b <= b' ' || b == b'"') {
                let _ = serde_json::to_writer(&mut *out, s);
            } else {
                out.extend_from_slice(s.as_bytes());
            }
        }
        Value::Null => out.extend_from_slice(b"null"),
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

fn write_fields(out: &mut Vec<u8>, obj: &Map<String, Value>, skip: &[&str], bare: bool) {
    for (k, v) in obj {
        if skip.contains(&k.as_str()) || v.is_object() || v.is_array() {
            continue;
        }
        out.push(b' ');
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        match v {
            // Span fields as fmt shows them (Display, unquoted).
            Value::String(s) if bare => out.extend_from_slice(s.as_bytes()),
            _ => write_scalar(out, v),
        }
    }
}

/// Decode a JSON object line and render it in the text layout. False when it is not an object.
pub fn render_json(text: &[u8], map: &StructuredFields, out: &mut Vec<u8>) -> bool {
    out.clear();
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(text.trim_ascii()) else {
        return false;
    };
    let level = first(&obj, &map.level).and_then(|(_, v)| level_word(v));
    let _ = write!(out, "{:>5} ", level.unwrap_or("INFO"));
    if let Some(Value::Array(spans)) = map.spans.as_deref().and_then(|p| get_path(&obj, p)) {
        let mut any = false;
        for span in spans.iter().filter_map(Value::as_object) {
            let Some(name) = span.get("name").and_then(Value::as_str) else {
                continue;
            };
            out.extend_from_slice(name.as_bytes());
            let mut inner = Vec::new();
            write_fields(&mut inner, span, &["name"], true);
            if !inner.is_empty() {
                out.push(b'{');
                out.extend_from_slice(&inner[1..]);
                out.push(b'}');
            }
            out.push(b':');
            any = true;
        }
        if any {
            out.push(b' ');
        }
    }
    if let Some((_, Value::String(t))) = first(&obj, &map.target) {
        out.extend_from_slice(t.as_bytes());
        out.extend_from_slice(b": ");
    }
    let message = first(&obj, &map.message);
    match message {
        Some((_, Value::String(m))) => out.extend_from_slice(m.as_bytes()),
        Some((_, v)) => write_scalar(out, v),
        None => {}
    }
    // The members already used: the message's key inside a fields object is not repeated.
    let msg_leaf = message.map(|(p, _)| p.rsplit('.').next().unwrap_or(p));
    for path in &map.fields {
        if let Some(Value::Object(f)) = get_path(&obj, path) {
            write_fields(out, f, &[msg_leaf.unwrap_or("")], false);
        }
    }
    if map.rest {
        let mut used: Vec<&str> = Vec::new();
        for paths in [
            &map.time,
            &map.level,
            &map.message,
            &map.target,
            &map.fields,
        ] {
            used.extend(paths.iter().map(String::as_str));
        }
        write_fields(out, &obj, &used, false);
    }
    true
}

/// One logfmt pair: key, raw value, whether it was quoted.
fn logfmt_pairs<'a>(mut s: &'a [u8], mut f: impl FnMut(&'a [u8], Option<&'a [u8]>, bool)) {
    loop {
        s = s.trim_ascii_start();
        if s.is_empty() {
            return;
        }
        let key_end = s
            .iter()
            .position(|&b| b == b'=' || b == b' ')
            .unwrap_or(s.len());
        let key = &s[..key_end];
        s = &s[key_end..];
        let Some(rest) = s.strip_prefix(b"=") else {
            // A bare word: a key without a value.
            f(key, None, false);
            continue;
        };
        if let Some(q) = rest.strip_prefix(b"\"") {
            // Up to the closing quote that is not escaped.
            let mut i = 0;
            while i < q.len() && q[i] != b'"' {
                i += if q[i] == b'\\' { 2 } else { 1 };
            }
            let i = i.min(q.len());
            f(key, Some(&q[..i]), true);
            s = q.get(i + 1..).unwrap_or(b"");
        } else {
            let end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
            f(key, Some(&rest[..end]), false);
            s = &rest[end..];
        }
    }
}

/// `\"`, `\\`, `\n`, `\t` in a quoted logfmt value.
fn unescape_into(out: &mut Vec<u8>, v: &[u8]) {
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' && i + 1 < v.len() {
            out.push(match v[i + 1] {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                other => other,
            });
            i += 2;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
}

/// Decode a logfmt line and render it in the text layout. False when it has no message key.
pub fn render_logfmt(text: &[u8], map: &StructuredFields, out: &mut Vec<u8>) -> bool {
    out.clear();
    let is = |k: &[u8], paths: &[String]| paths.iter().any(|p| p.as_bytes() == k);
    let (mut level, mut target, mut message) = (None, None, None);
    logfmt_pairs(text, |k, v, q| {
        let Some(v) = v else { return };
        if message.is_none() && is(k, &map.message) {
            message = Some((v, q));
        } else if level.is_none() && is(k, &map.level) {
            level = level_str(v);
        } else if target.is_none() && is(k, &map.target) {
            target = Some(v);
        }
    });
    let Some((msg, quoted)) = message else {
        return false;
    };
    let _ = write!(out, "{:>5} ", level.unwrap_or("INFO"));
    if let Some(t) = target {
        out.extend_from_slice(t);
        out.extend_from_slice(b": ");
    }
    if quoted {
        unescape_into(out, msg);
    } else {
        out.extend_from_slice(msg);
    }
    logfmt_pairs(text, |k, v, q| {
        if is(k, &map.message) || is(k, &map.level) || is(k, &map.target) || is(k, &map.time) {
            return;
        }
        out.push(b' ');
        out.extend_from_slice(k);
        let Some(v) = v else { return };
        out.push(b'=');
        if q {
            out.push(b'"');
            out.extend_from_slice(v);
            out.push(b'"');
        } else {
            out.extend_from_slice(v);
        }
    });
    true
}

#[cfg(test)]
mod tests;
