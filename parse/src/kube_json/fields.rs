//! Typed, never-panicking access to the fields of untrusted JSON objects.
//!
//! `null` counts as absent (Kubernetes prints `"eventTime": null`). A present field of the wrong
//! type is an error naming the field, never its value: hostile input must not reach error
//! messages (it could carry a token).

use chrono::DateTime;
use serde_json::{Map, Value};

use dge_core::observation::Timestamp;

pub(super) type Fallible<T> = Result<T, String>;

/// The field `key` of `v`, `None` when `v` is not an object or the field is absent or `null`.
pub(super) fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v.as_object()?.get(key)? {
        Value::Null => None,
        other => Some(other),
    }
}

pub(super) fn opt_obj<'a>(
    v: &'a Value,
    key: &str,
    path: &str,
) -> Fallible<Option<&'a Map<String, Value>>> {
    match get(v, key) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(format!("{path} is not an object")),
    }
}

pub(super) fn opt_array<'a>(v: &'a Value, key: &str, path: &str) -> Fallible<&'a [Value]> {
    match get(v, key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("{path} is not an array")),
    }
}

pub(super) fn opt_str<'a>(v: &'a Value, key: &str, path: &str) -> Fallible<Option<&'a str>> {
    match get(v, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{path} is not a string")),
    }
}

pub(super) fn req_str<'a>(v: &'a Value, key: &str, path: &str) -> Fallible<&'a str> {
    match opt_str(v, key, path)? {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(format!("{path} is empty")),
        None => Err(format!("{path} is missing")),
    }
}

/// A non-negative integer; a float with no fractional part is accepted (some tools print
/// `30.0`).
pub(super) fn opt_u64(v: &Value, key: &str, path: &str) -> Fallible<Option<u64>> {
    match get(v, key) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0) {
                if f < 18_446_744_073_709_551_615.0 {
                    Ok(Some(f as u64))
                } else {
                    Err(format!("{path} is out of range"))
                }
            } else {
                Err(format!("{path} is not a non-negative integer"))
            }
        }
        Some(_) => Err(format!("{path} is not a number")),
    }
}

pub(super) fn opt_u32(v: &Value, key: &str, path: &str) -> Fallible<Option<u32>> {
    match opt_u64(v, key, path)? {
        None => Ok(None),
        Some(u) => u32::try_from(u)
            .map(Some)
            .map_err(|_| format!("{path} is out of range")),
    }
}

pub(super) fn opt_i32(v: &Value, key: &str, path: &str) -> Fallible<Option<i32>> {
    match get(v, key) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => i32::try_from(i)
                .map(Some)
                .map_err(|_| format!("{path} is out of range")),
            None => Err(format!("{path} is not an integer")),
        },
        Some(_) => Err(format!("{path} is not a number")),
    }
}

/// An RFC 3339 time (`metav1.Time`, `metav1.MicroTime`).
pub(super) fn opt_time(v: &Value, key: &str, path: &str) -> Fallible<Option<Timestamp>> {
    match opt_str(v, key, path)? {
        None => Ok(None),
        Some(s) => parse_time(s)
            .map(Some)
            .ok_or_else(|| format!("{path} is not an RFC 3339 time")),
    }
}

pub(super) fn req_time(v: &Value, key: &str, path: &str) -> Fallible<Timestamp> {
    opt_time(v, key, path)?.ok_or_else(|| format!("{path} is missing"))
}

pub(super) fn parse_time(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.to_utc())
}

/// A kind or type name taken from input, made safe to put in a message: Kubernetes kinds are
/// short alphanumeric identifiers, anything else is not echoed (it could be a secret).
pub(super) fn shown(s: &str) -> String {
    if !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        s.to_owned()
    } else {
        "(not a kind name)".to_owned()
    }
}
