//! The profile machinery's own tests (the profiles themselves: the golden files).

use super::rule::{EventKind, Values};
use super::*;
use dge_core::observation::SessionEvent;

/// The memoized confirmation picks the same rule as the regexes alone, on the examples'
/// lines and the fuzz corpus, each line seen twice (the second time from the memo).
#[test]
fn memoized_confirmation_agrees_with_the_regexes() {
    fn collect(dir: &std::path::Path, out: &mut Vec<Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                collect(&p, out);
            } else if let Ok(bytes) = std::fs::read(&p) {
                for line in bytes.split(|&b| b == b'\n').take(2000) {
                    out.push(line.to_vec());
                    // Also without a container timestamp in front.
                    if let Some(sp) = line.iter().position(|&b| b == b' ') {
                        out.push(line[sp + 1..].to_vec());
                    }
                }
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut lines = Vec::new();
    collect(&root.join("examples"), &mut lines);
    collect(&root.join("fuzz/corpus/log_lines"), &mut lines);
    assert!(lines.len() > 1000, "{} lines", lines.len());
    let p = builtin_profile("auto").unwrap();
    let mut scratch = MatchScratch::default();
    let mut confirmed = 0;
    for _round in 0..2 {
        for l in &lines {
            if !p.prefilter(l, &mut scratch) {
                continue;
            }
            let plain = p
                .match_in(l, &scratch, false, false, u64::MAX, 0)
                .map(|m| m.rule.to_owned());
            let memoized = p
                .match_in(l, &scratch, true, false, u64::MAX, 0)
                .map(|m| m.rule.to_owned());
            assert_eq!(plain, memoized, "{:?}", String::from_utf8_lossy(l));
            confirmed += usize::from(plain.is_some());
        }
    }
    assert!(confirmed > 100, "{confirmed} lines matched a rule");
}

#[test]
fn builtins_compile_and_names_agree() {
    for &name in builtin_names() {
        let p = builtin_profile(name).unwrap();
        assert_eq!(p.name(), name);
        assert!(p.rule_names().count() > 0);
    }
    assert!(builtin_profile("nope").is_none());
    let auto = builtin_profile("auto").unwrap();
    let parts: usize = library_names()
        .iter()
        .map(|n| builtin_profile(n).unwrap().rule_names().count())
        .sum();
    assert_eq!(auto.rule_names().count(), parts);
}

#[test]
fn event_names_round_trip() {
    for k in EventKind::ALL {
        assert_eq!(EventKind::parse(k.name()), Some(k));
        if let Some(e) = k.build(Values::default(), "r") {
            assert_eq!(e.name(), k.name(), "schema names are SessionEvent::name()");
        }
    }
    assert_eq!(EventKind::Ready.name(), "ready");
    assert_eq!(EventKind::HeartbeatAck.name(), "heartbeat_ack");
    assert_eq!(EventKind::InvalidSession.name(), "invalid_session");
}

fn err(rules: Vec<Rule>) -> ProfileError {
    Profile {
        name: "t".into(),
        rules,
        ..Profile::default()
    }
    .compile()
    .unwrap_err()
}

#[test]
fn errors_name_the_rule() {
    let e = err(vec![
        Rule::new("bad.re", "x", "ready").with_regex("x(?P<bot>y"),
    ]);
    match &e {
        ProfileError::Regex {
            rule,
            position,
            message,
        } => {
            assert_eq!(rule, "bad.re");
            assert_eq!(*position, Some(2));
            assert!(message.contains("unclosed group"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        e.to_string()
            .starts_with("rule \"bad.re\": bad regex at column 2:"),
        "{e}"
    );

    let e = err(vec![Rule::new("f", "x", "fatal")]);
    assert!(
        matches!(&e, ProfileError::Rule { rule, message } if rule == "f" && message.contains("reason")),
        "{e}"
    );
    let e = err(vec![Rule::new("i", "x", "invalid_session")]);
    assert!(e.to_string().contains("resumable"), "{e}");
    let e = err(vec![Rule::new("u", "x", "connected")]);
    assert!(e.to_string().contains("unknown event \"connected\""), "{e}");
    let e = err(vec![
        Rule::new("c", "x", "ready").with_regex("(?P<code>\\d+)"),
    ]);
    assert!(e.to_string().contains("capture code does not apply"), "{e}");
    let e = err(vec![
        Rule::new("c", "x", "ready").with_regex("(?P<user>\\w+)"),
    ]);
    assert!(
        e.to_string().contains("unknown capture name \"user\""),
        "{e}"
    );
    let e = err(vec![
        Rule::new("d", "x", "ready"),
        Rule::new("d", "y", "ready"),
    ]);
    assert!(e.to_string().contains("two rules"), "{e}");
    let e = err(vec![Rule::new("e", "", "ready")]);
    assert!(e.to_string().contains("empty literal"), "{e}");
    let e = err(vec![Rule::new("v", "x", "ready").with_regex("${nope}x")]);
    assert!(e.to_string().contains("unknown variable ${nope}"), "{e}");
    let fields = Fields {
        code: Some(4000),
        ..Fields::default()
    };
    let e = err(vec![Rule::new("fx", "x", "dispatch").with_fields(fields)]);
    assert!(e.to_string().contains("field code does not apply"), "{e}");
}

#[test]
fn bad_toml_names_the_profile() {
    let e = Profile::from_toml("name = \"mine\"\n[[rule]]\nname = 3\n").unwrap_err();
    assert!(
        matches!(&e, ProfileError::Parse { profile, .. } if profile == "mine"),
        "{e}"
    );
    let e = Profile::from_toml("name = \"mine\"\n[[rule]]\nname = \"a\"\nliteral = \"b\"\nevent = \"ready\"\nregexp = \"x\"\n").unwrap_err();
    assert!(e.to_string().contains("regexp"), "{e}");
}

#[test]
fn user_rules_and_vars() {
    let rules = Profile::from_toml(
        r#"
        name = "user"
        [vars]
        me = 'mybot: '
        [[rule]]
        name = "user.hello"
        literal = ["hello there", "hi there"]
        regex = '${me}h(?:ello|i) there from shard (?P<shard>\d+|None) as (?P<bot>\S+)'
        event = "ready"
        fields = { session_id = "fixed" }
        [[rule]]
        name = "user.fatal"
        literal = "goodbye"
        regex = 'goodbye (?P<code>\d+)(?: (?P<reason>.+))?'
        event = "fatal"
        fields = { reason = "default reason" }
        "#,
    )
    .unwrap();
    let p = Profile::builtin("openab")
        .unwrap()
        .with_vars(rules.vars.clone(), false)
        .with_user_rules(rules.rules.clone(), Placement::Before)
        .compile()
        .unwrap();
    assert_eq!(p.rule_names().next(), Some("user.hello"));
    let m = p
        .match_text(b"mybot: hi there from shard 3 as \"Helper\"")
        .unwrap();
    assert_eq!(m.rule, "user.hello");
    assert_eq!(
        m.event,
        Some(SessionEvent::Ready {
            session_id: Some("fixed".into())
        })
    );
    assert_eq!((m.bot.as_deref(), m.shard), (Some("Helper"), Some(3)));
    let m = p
        .match_text(b"mybot: hello there from shard None as x")
        .unwrap();
    assert_eq!(m.shard, None);
    let m = p.match_text(b"goodbye 4004").unwrap();
    assert_eq!(
        m.event,
        Some(SessionEvent::Fatal {
            reason: "default reason".into(),
            code: Some(4004)
        })
    );
    let m = p.match_text(b"goodbye 4014 intents off").unwrap();
    assert_eq!(
        m.event,
        Some(SessionEvent::Fatal {
            reason: "intents off".into(),
            code: Some(4014)
        })
    );
    assert_eq!(
        m.captures,
        vec![
            ("code".to_owned(), "4014".to_owned()),
            ("reason".to_owned(), "intents off".to_owned())
        ]
    );
    assert!(p.match_text(b"hello there, no prefix").is_none());
}

#[test]
fn var_cycles_are_errors() {
    let mut p = Profile {
        name: "cyc".into(),
        ..Profile::default()
    };
    p.vars.insert("a".into(), "${b}".into());
    p.vars.insert("b".into(), "${a}".into());
    assert!(matches!(p.compile(), Err(ProfileError::Var { .. })));
    let a = Profile {
        name: "a".into(),
        vars: [("x".to_owned(), "1".to_owned())].into(),
        ..Profile::default()
    };
    let b = Profile {
        name: "b".into(),
        vars: [("x".to_owned(), "2".to_owned())].into(),
        ..Profile::default()
    };
    assert!(Profile::merge("ab", [a, b]).is_err());
}

#[test]
fn ignored_lines_stay_cheap() {
    let p = builtin_profile("auto").unwrap();
    let mut s = MatchScratch::default();
    assert!(!p.prefilter(
        b"2026-04-19T04:12:05.201377Z  INFO openab::discord: registered global slash commands",
        &mut s
    ));
    assert!(
        s.bits.is_empty(),
        "no candidate set built for a line without a literal"
    );
}

/// A compiled-in rule's regex is built on first use: every one of them builds, and the capture
/// names read from its syntax at load are the regex's own, group by group.
#[test]
fn every_compiled_in_regex_builds_with_the_captures_read_at_load() {
    let mut checked = 0;
    for name in builtin_names() {
        let p = builtin_profile(name).expect("built-in");
        for rule in &p.rules {
            let Some(lazy) = &rule.regex else { continue };
            let re = lazy
                .get()
                .unwrap_or_else(|| panic!("{}: regex does not build", rule.name));
            let own: Vec<Option<&str>> = re.capture_names().collect();
            let read: Vec<Option<&str>> = lazy.capture_names().collect();
            assert_eq!(read, own, "{}", rule.name);
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
}

/// A user's rule is built when its profile loads: a regex the regex crate refuses (here: too
/// big, though its syntax is fine) is the loader's error, not a rule that silently never
/// matches.
#[test]
fn a_user_regex_is_built_at_load() {
    let rule = Rule::new("huge", "x", "ready").with_regex("x{1000}{1000}");
    let e = Profile::builtin("openab")
        .unwrap()
        .with_user_rules([rule], Placement::Before)
        .compile()
        .unwrap_err();
    assert!(matches!(e, ProfileError::Regex { .. }), "{e}");
    assert!(e.to_string().contains("size limit"), "{e}");
}
