//! `${name}` fragments: vars expanded among themselves, then substituted into regexes.

use std::collections::BTreeMap;

use super::ProfileError;

/// Expand `${name}` references among the vars themselves (nesting up to a few levels).
pub(super) fn expand_vars(
    vars: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ProfileError> {
    let mut out = vars.clone();
    for _ in 0..8 {
        let mut changed = false;
        for k in vars.keys() {
            let cur = out[k].clone();
            if !cur.contains("${") {
                continue;
            }
            let next = substitute(&cur, &out).map_err(|m| ProfileError::Var {
                var: k.clone(),
                message: m,
            })?;
            if next != cur {
                changed = true;
                out.insert(k.clone(), next);
            }
        }
        if !changed {
            break;
        }
    }
    if let Some((k, _)) = out.iter().find(|(_, v)| v.contains("${")) {
        return Err(ProfileError::Var {
            var: k.clone(),
            message: "refers to itself (or nests too deep)".into(),
        });
    }
    Ok(out)
}

/// Replace each `${name}` with its var. Unknown names are an error.
pub(super) fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated ${".to_owned())?;
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("bad variable reference ${{{name}}}"));
        }
        let value = vars
            .get(name)
            .ok_or_else(|| format!("unknown variable ${{{name}}}"))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
