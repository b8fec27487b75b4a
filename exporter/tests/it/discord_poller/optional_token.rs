//! The default install without its optional Secret: `deploy/base/exporter.toml` (its
//! Kubernetes section left out: no cluster here) with the token file absent. The bot's Discord
//! source is *disabled*, not down: no `source_up` series for it (so
//! `DiscordGatewayExporterSourceDown`, `source_up == 0`, has nothing to fire on), the reason in
//! the start-up log, `/healthz` and `/readyz`; and it starts polling once the token appears.
//! The same config without `optional = true` is down, as before.

use super::*;
use crate::support::exporter::{Exporter, sample};

/// `deploy/base/exporter.toml` as shipped, with the Kubernetes sources removed, the token file
/// moved into `dir` and Discord pointed at the fake.
fn base_config(dir: &Path, fake: &FakeDiscord, optional: Option<bool>) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("deploy/base/exporter.toml")).unwrap();
    let mut cfg: toml::Table = toml::from_str(&text).unwrap();
    cfg.remove("kubernetes");
    cfg.remove("listen");
    let bots = cfg["bot"].as_array_mut().unwrap();
    assert_eq!(bots.len(), 1, "the base config has one [[bot]]");
    let bot = bots[0].as_table_mut().unwrap();
    assert_eq!(
        bot.get("optional").and_then(toml::Value::as_bool),
        Some(true),
        "the base config's token is optional, as its Secret is"
    );
    bot.insert(
        "token_file".into(),
        dir.join("secret/token")
            .to_string_lossy()
            .into_owned()
            .into(),
    );
    match optional {
        Some(o) => bot.insert("optional".into(), o.into()),
        None => bot.remove("optional"),
    };
    let discord = cfg["discord"].as_table_mut().unwrap();
    discord.insert("proxy".into(), fake.addr.to_string().into());
    discord.insert("use_http".into(), true.into());
    discord.insert("poll_interval_secs".into(), 10.into());
    let path = dir.join("exporter.toml");
    std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
    path
}

fn start(config: &Path, dir: &Path) -> Exporter {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_discord-gateway-exporter"));
    cmd.arg("run").arg("--config").arg(config).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("DGE_") {
            cmd.env_remove(k);
        }
    }
    Exporter::spawn(cmd, |port| dir.join(format!("exporter-{port}.log")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_install_without_its_secret_is_disabled_not_down() {
    let fake = FakeDiscord::start().await;
    fake.bot(TOK_A, "AgentBroker", 111);
    let dir = tempfile::tempdir().unwrap();
    let config = base_config(dir.path(), &fake, Some(true));
    let e = start(&config, dir.path());
    let source = "discord:bot#1";

    // Disabled from the start: the health report is there, the source_up series is not.
    let health = e.wait_for(Duration::from_secs(20), "the disabled report", |e| {
        let h = e.json("/healthz");
        let s = h["sources"][source].clone();
        (!s.is_null()).then_some(s)
    });
    assert_eq!(health["disabled"], true, "{health}");
    assert!(
        health["detail"].as_str().unwrap().contains("absent"),
        "{health}"
    );
    let metrics = e.get("/metrics");
    assert_eq!(
        sample(
            &metrics,
            "discord_gateway_exporter_source_up",
            &[("source", source)]
        ),
        None,
        "a disabled source has no source_up series:\n{metrics}"
    );
    let down: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("discord_gateway_exporter_source_up{") && l.ends_with(" 0"))
        .collect();
    assert!(down.is_empty(), "source_up == 0 would page: {down:?}");
    let readyz = e.get("/readyz");
    assert!(
        readyz.starts_with("ready\n") && readyz.contains(&format!("disabled: {source}: ")),
        "{readyz}"
    );
    let out = e.output();
    assert!(
        out.contains("Discord source disabled") && !out.contains("WARN"),
        "logged once at start, no warning:\n{out}"
    );
    assert_eq!(fake.requests().len(), 0, "no request without a token");

    // The Secret is created: kubelet fills the optional volume; polling starts by itself.
    std::fs::create_dir_all(dir.path().join("secret")).unwrap();
    std::fs::write(dir.path().join("secret/token"), format!("{TOK_A}\n")).unwrap();
    e.wait_for(
        Duration::from_secs(30),
        "source_up 1 once the token appears",
        |e| {
            let m = e.get("/metrics");
            (sample(
                &m,
                "discord_gateway_exporter_source_up",
                &[("source", source)],
            ) == Some(1.0))
            .then_some(())
        },
    );
    assert!(!e.get("/readyz").contains("disabled"));
    assert_eq!(fake.count(TOK_A, "gateway/bot"), 1);
}

/// Without `optional`, an absent token is an operator's mistake: down, and the alert's series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_token_that_is_absent_is_down() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = base_config(dir.path(), &fake, None);
    let e = start(&config, dir.path());
    let source = "discord:bot#1";
    e.wait_for(Duration::from_secs(20), "source_up 0", |e| {
        let m = e.get("/metrics");
        (sample(
            &m,
            "discord_gateway_exporter_source_up",
            &[("source", source)],
        ) == Some(0.0))
        .then_some(())
    });
    let h = e.json("/healthz");
    assert!(h["sources"][source]["disabled"].is_null(), "{h}");
    assert!(!e.get("/readyz").contains("disabled"));
}
