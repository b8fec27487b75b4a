//! The install commands in README.md, each exercised offline.

use super::*;

/// README.md's "## Install in a cluster" ```sh block, exactly. Every command in it is run or
/// checked by `install_commands_are_exercised`.
const INSTALL: &str = "\
# The namespace, and the bot token as a file the exporter reads (optional: without it the
# exporter still runs, with no Discord-side count). Never put a token in a flag or a manifest.
kubectl create namespace discord-gateway-exporter
kubectl -n discord-gateway-exporter create secret generic discord-bot-token --from-file=token=./discord-bot-token
# Cluster mode. Or: deploy/overlays/node-mode (a DaemonSet reading /var/log/pods on each
# node), deploy/overlays/namespaced (a Role in the bots' namespace instead of a ClusterRole).
kubectl apply -k deploy/base
kubectl -n discord-gateway-exporter rollout status deployment/discord-gateway-exporter --timeout=180s
";

/// The first ```sh block of README.md's `## Install in a cluster` section.
fn readme_install_block() -> Result<String, String> {
    let path = repo_root().join("README.md");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    install_block(&text)
}

/// The first ```sh block of the `## Install in a cluster` section of a README text.
fn install_block(text: &str) -> Result<String, String> {
    let start = text
        .lines()
        .position(|l| l.trim_end() == "## Install in a cluster")
        .ok_or("README.md has no `## Install in a cluster` heading")?;
    let mut block = None;
    for line in text.lines().skip(start + 1) {
        if line.starts_with("## ") {
            break;
        }
        match &mut block {
            None if line.trim_end() == "```sh" => block = Some(String::new()),
            None => {}
            Some(b) if line.trim_end() == "```" => return Ok(b.clone()),
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
        }
    }
    Err("README.md's `## Install in a cluster` section has no complete ```sh block".into())
}

#[test]
fn readme_install_section_is_exactly_the_tested_commands() {
    match readme_install_block() {
        Ok(block) => assert!(
            block == INSTALL,
            "README.md's `## Install in a cluster` ```sh block differs from the commands this \
             test exercises. It must read exactly:\n```sh\n{INSTALL}```\n\nREADME has:\n{block}"
        ),
        Err(e) => panic!("{e}. It must hold exactly:\n```sh\n{INSTALL}```"),
    }
}

#[test]
fn install_block_is_read_from_its_section_only() {
    let readme = format!(
        "# x\n\n## Quick start\n\n```sh\nnot this\n```\n\n## Install in a cluster\n\nProse.\n\n\
         ```toml\nnor = 1\n```\n\n```sh\n{INSTALL}```\n\n```sh\nnor this\n```\n\n## Next\n"
    );
    assert_eq!(install_block(&readme).as_deref(), Ok(INSTALL));
    assert!(
        install_block("## Install in a cluster\n\nno block\n## Next\n```sh\nx\n```\n").is_err()
    );
    assert!(install_block("# nothing\n").is_err());
}

#[test]
fn install_commands_are_exercised() {
    let tmp = tempdir();
    let base = render("deploy/base");
    let base_w = workload(&base, "deploy/base");
    let token_volume = seq(&base_w["spec"]["template"]["spec"]["volumes"])
        .iter()
        .find(|v| v.get("secret").is_some())
        .expect("token volume")
        .clone();
    let mut applied = Vec::new();
    let mut lines = 0;
    for line in INSTALL.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            // Variants named in comments are real ones.
            for word in comment.split_whitespace() {
                let w = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '/' && c != '-');
                if w.starts_with("deploy/") {
                    assert!(
                        VARIANTS.contains(&w),
                        "the install block names {w}: not a variant"
                    );
                }
            }
            continue;
        }
        assert!(!line.ends_with('\\'), "one command per line: {line}");
        lines += 1;
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], "kubectl", "not exercised by this test: {line}");
        // `-n NS` before the verb.
        let (ns, rest) = match words[1] {
            "-n" => (Some(words[2]), &words[3..]),
            _ => (None, &words[1..]),
        };
        match rest {
            ["create", "namespace", n] => {
                let mut cmd = kubectl();
                cmd.args(["create", "namespace", n, "--dry-run=client", "-o", "yaml"]);
                let obj = &docs(&stdout_ok(cmd, KUBECTL_INSTALL, line), line)[0];
                assert_eq!(name(obj), EXPORTER_NAMESPACE, "{line}");
            }
            ["create", "secret", "generic", secret, from] => {
                let (key, file) = from
                    .strip_prefix("--from-file=")
                    .and_then(|s| s.split_once('='))
                    .unwrap_or_else(|| panic!("{line}: --from-file=KEY=PATH"));
                std::fs::write(tmp.path().join(file), "not-a-real-token").expect("write");
                let mut cmd = kubectl();
                cmd.current_dir(tmp.path()).args(&words[1..]).args([
                    "--dry-run=client",
                    "-o",
                    "yaml",
                ]);
                let obj = &docs(&stdout_ok(cmd, KUBECTL_INSTALL, line), line)[0];
                assert_eq!(kind(obj), "Secret");
                assert_eq!(namespace(obj), Some(EXPORTER_NAMESPACE), "{line}");
                assert_eq!(
                    Some(*secret),
                    token_volume["secret"]["secretName"].as_str(),
                    "{line}: the Deployment mounts another Secret"
                );
                assert!(obj["data"].get(key).is_some(), "{line}: key {key}");
                // The exporter reads <mount>/<key>: the config names that file.
                let mount =
                    seq(&base_w["spec"]["template"]["spec"]["containers"][0]["volumeMounts"])
                        .iter()
                        .find(|m| m["name"] == token_volume["name"])
                        .and_then(|m| m["mountPath"].as_str())
                        .expect("token mount")
                        .to_string();
                let (config, _) = mounted_config(&base, base_w, "deploy/base");
                assert!(
                    toml_string_values(&config, "token_file").contains(&format!("{mount}/{key}")),
                    "{line}: exporter.toml does not read {mount}/{key}"
                );
            }
            ["apply", "-k", dir] => {
                assert!(
                    VARIANTS.contains(dir),
                    "{line}: {dir} is not a tested variant"
                );
                assert!(!render(dir).is_empty());
                applied.push(dir.to_string());
            }
            ["rollout", "status", target, timeout] => {
                assert!(timeout.starts_with("--timeout="), "{line}");
                let dir = applied.last().expect("rollout status after an apply");
                let objs = render(dir);
                let w = workload(&objs, dir);
                assert_eq!(
                    *target,
                    format!("{}/{}", kind(w).to_ascii_lowercase(), name(w)),
                    "{line}: the workload of {dir}"
                );
                assert_eq!(namespace(w), ns, "{line}: namespace");
            }
            _ => panic!("the install block has a command this test does not exercise: {line}"),
        }
    }
    assert!(lines >= 3, "the install block is too short");
    assert_eq!(applied, ["deploy/base"], "the block applies the base once");
}
