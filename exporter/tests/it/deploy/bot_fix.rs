//! deploy/bot-fix/ removes the overlap from an example bot Deployment.

use super::*;

#[test]
fn bot_fix_removes_the_overlap_from_the_example_bot() {
    let before: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/bot-fix/example/deployment.yaml"))
            .expect("example deployment"),
    )
    .expect("YAML");
    assert!(
        before["spec"].get("strategy").is_none(),
        "the example starts from the default RollingUpdate (the overlap)"
    );
    let objs = render(BOT_FIX_EXAMPLE);
    let d = one(&objs, "Deployment", BOT_FIX_EXAMPLE);
    let strategy = &d["spec"]["strategy"];
    match strategy["type"].as_str() {
        Some("Recreate") => assert!(
            strategy.get("rollingUpdate").is_none(),
            "Recreate with a rollingUpdate block is rejected by the API server"
        ),
        Some("RollingUpdate") => {
            assert_eq!(strategy["rollingUpdate"]["maxSurge"].as_u64(), Some(0));
            assert!(strategy["rollingUpdate"]["maxUnavailable"].as_u64() >= Some(1));
        }
        other => panic!("strategy {other:?}"),
    }
    let pod = &d["spec"]["template"]["spec"];
    let pre_stop = &pod["containers"][0]["lifecycle"]["preStop"];
    assert!(pre_stop.is_mapping(), "a preStop hook on the bot container");
    let sleep = pre_stop["sleep"]["seconds"].as_u64().unwrap_or(0);
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace >= sleep + 30,
        "grace {grace}s leaves under 30s after the {sleep}s preStop for a clean close"
    );
    // Everything else of the bot is untouched.
    assert_eq!(
        pod["containers"][0]["image"],
        before["spec"]["template"]["spec"]["containers"][0]["image"]
    );
    let readme = std::fs::read_to_string(repo_root().join("deploy/bot-fix/README.md"))
        .expect("deploy/bot-fix/README.md");
    for word in [
        "Recreate",
        "maxSurge",
        "preStop",
        "terminationGracePeriodSeconds",
    ] {
        assert!(
            readme.contains(word),
            "the trade-offs README explains {word}"
        );
    }
}
