//! deploy/Dockerfile: multi-stage, a numeric non-root user, a version label.

use super::*;

#[test]
fn dockerfile_is_multi_stage_non_root_and_labelled() {
    let path = repo_root().join("deploy/Dockerfile");
    let text = std::fs::read_to_string(&path).expect("deploy/Dockerfile");
    // Instructions, with continuation lines joined and comments dropped.
    let mut instructions: Vec<String> = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head);
                cur.push(' ');
            }
            None => {
                cur.push_str(t);
                instructions.push(std::mem::take(&mut cur));
            }
        }
    }
    let stages: Vec<Vec<&String>> = instructions.iter().fold(Vec::new(), |mut acc, i| {
        if i.to_ascii_uppercase().starts_with("FROM ") {
            acc.push(vec![i]);
        } else if let Some(last) = acc.last_mut() {
            last.push(i);
        }
        acc
    });
    assert!(stages.len() >= 2, "multi-stage: {} FROM", stages.len());
    assert!(
        stages[0][0].contains("rust:") && stages[0][0].contains(" AS builder"),
        "first stage builds with the Rust image: {}",
        stages[0][0]
    );
    assert!(
        stages[0]
            .iter()
            .any(|i| i.contains("cargo build --release --locked")),
        "the builder builds with --release --locked"
    );
    let last = stages.last().unwrap();
    let from = last[0];
    assert!(
        from.contains("distroless") || from.contains("-slim"),
        "small final image: {from}"
    );
    let users: Vec<&&String> = last.iter().filter(|i| i.starts_with("USER ")).collect();
    let user = users.last().expect("the final stage sets USER");
    let uid = user["USER ".len()..].split(':').next().unwrap().trim();
    let uid: u64 = uid
        .parse()
        .unwrap_or_else(|_| panic!("USER must be numeric (runAsNonRoot checks it): {user}"));
    assert_ne!(uid, 0, "USER is root");
    assert!(
        last.iter().any(|i| i.starts_with("ARG VERSION")),
        "ARG VERSION in the final stage (ARGs do not cross stages)"
    );
    assert!(
        last.iter().any(|i| i.starts_with("LABEL")
            && i.contains("org.opencontainers.image.version=\"${VERSION}\"")),
        "LABEL org.opencontainers.image.version from the VERSION build arg"
    );
    assert!(
        last.iter().any(|i| i.starts_with("COPY --from=builder")),
        "the final stage copies the binary from the builder"
    );
    assert!(
        last.iter()
            .any(|i| i.starts_with("ENTRYPOINT") && i.contains("discord-gateway-exporter"))
    );
    // The image's user is the one the manifests run as.
    for variant in VARIANTS {
        let objs = render(variant);
        let w = workload(&objs, variant);
        assert_eq!(
            w["spec"]["template"]["spec"]["securityContext"]["runAsUser"].as_u64(),
            Some(uid),
            "{variant}: runAsUser vs the Dockerfile's USER"
        );
    }
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore")).expect(".dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "*") || ignore.lines().any(|l| l.contains("target")),
        ".dockerignore keeps target/ out of the build context"
    );
}
