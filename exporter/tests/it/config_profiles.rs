//! Profiles chosen per bot and the JSON field mapping, as the exporter's config sets them.

use dge::config::Config;
use dge_core::observation::InstanceId;
use dge_parse::logs::{Framing, LogStream, Outcome};

#[test]
fn per_bot_profiles_and_json_fields_in_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exporter.toml");
    std::fs::write(
        &path,
        r#"
        profile = "auto"
        [bot_profiles]
        HelperBot = "discordpy"
        Tally = "twilight"
        [json_fields]
        time = ["when"]
        message = ["text"]
        level = ["sev"]
        target = ["component"]
        [[file]]
        path = "/var/log/helper/*.log"
        bot = "helperbot"
        [[file]]
        path = "/var/log/other.log"
        "#,
    )
    .unwrap();
    let cfg = Config::load(Some(&path)).unwrap();
    let set = cfg.profile_set().unwrap();
    assert_eq!(set.for_bot(Some("helperbot")).name(), "discordpy");
    assert_eq!(set.for_bot(Some("Tally")).name(), "twilight");
    assert_eq!(set.for_bot(Some("Unknown")).name(), "auto");
    assert_eq!(set.for_bot(None).name(), "auto");
    assert_eq!(
        cfg.file_profile(&cfg.sources.files.files[0])
            .unwrap()
            .name(),
        "discordpy"
    );
    assert_eq!(
        cfg.file_profile(&cfg.sources.files.files[1])
            .unwrap()
            .name(),
        "auto"
    );
    // The mapping reaches the profiles that decode structured lines.
    let auto = set.for_bot(None);
    assert_eq!(auto.structured_fields().time, vec!["when".to_owned()]);
    let mut s = LogStream::new(
        auto,
        Framing::Auto,
        InstanceId::pod("bots", "agentbroker-7d9f8-x2x4q"),
        "file:test.log".into(),
    );
    let mut out = Vec::new();
    let line = br#"{"when":"2026-04-19T04:12:04Z","sev":"INFO","component":"openab::discord","text":"discord bot connected","user":"Mapped"}"#;
    assert_eq!(s.push_line(line, &mut out), Outcome::Matched);

    std::fs::write(&path, "[bot_profiles]\nHelperBot = \"discord.py\"\n").unwrap();
    let e = Config::load(Some(&path)).unwrap_err().to_string();
    assert!(
        e.contains("bot_profiles.HelperBot") && e.contains("unknown profile"),
        "{e}"
    );
    std::fs::write(&path, "[json_fields]\nmessage = []\n").unwrap();
    let e = Config::load(Some(&path)).unwrap_err().to_string();
    assert!(e.contains("json_fields"), "{e}");
}
