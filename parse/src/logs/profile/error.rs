//! Why a profile or rule cannot be used, with the rule's name and the regex column.

/// Why a profile or rule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("profile {profile:?}: {message}")]
    Parse { profile: String, message: String },
    #[error("unknown profile {0:?} (built-in: {known})", known = super::builtin_names().join(", "))]
    UnknownProfile(String),
    #[error("rule {rule:?}: {message}")]
    Rule { rule: String, message: String },
    #[error("rule {rule:?}: bad regex{}: {message}", position.map(|p| format!(" at column {p}")).unwrap_or_default())]
    Regex {
        rule: String,
        /// 1-based column in the regex (after `${var}` expansion), when the parser says.
        position: Option<usize>,
        message: String,
    },
    #[error("var {var:?}: {message}")]
    Var { var: String, message: String },
}

impl ProfileError {
    pub(super) fn rule(rule: &str, message: impl Into<String>) -> Self {
        Self::Rule {
            rule: rule.to_owned(),
            message: message.into(),
        }
    }

    pub(super) fn regex(rule: &str, err: &regex::Error) -> Self {
        let (position, message) = match err {
            regex::Error::Syntax(text) => describe_syntax_error(text),
            other => (None, other.to_string()),
        };
        Self::Regex {
            rule: rule.to_owned(),
            position,
            message,
        }
    }
}

/// `regex::Error::Syntax` text is `regex parse error:\n    <pattern>\n    ^^^\nerror: <msg>`:
/// take the caret column and the message.
fn describe_syntax_error(text: &str) -> (Option<usize>, String) {
    let mut position = None;
    let mut message = None;
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if let Some(m) = l.strip_prefix("error: ") {
            message = Some(m.to_owned());
        } else if i > 1
            && position.is_none()
            && l.contains('^')
            && l.chars().all(|c| c == ' ' || c == '^')
        {
            // The caret line is indented like the pattern line above it.
            let indent = lines[1].len() - lines[1].trim_start().len();
            position = l.find('^').map(|p| p.saturating_sub(indent) + 1);
        }
    }
    let message = message.unwrap_or_else(|| text.replace('\n', " "));
    (position, message)
}
