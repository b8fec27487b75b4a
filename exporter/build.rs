//! Build facts for `discord_gateway_exporter_build_info`: the git revision the binary was built
//! from and the compiler's version. Outside a git checkout (a source tarball, a Docker build
//! without `.git`) the revision is `DISCORD_GATEWAY_EXPORTER_REVISION` from the environment,
//! else "unknown". No name here starts with `DGE_`: cargo also sets `rustc-env` variables when
//! it runs tests, and the exporter reads every `DGE_` variable as configuration.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DISCORD_GATEWAY_EXPORTER_REVISION");
    let revision = std::env::var("DISCORD_GATEWAY_EXPORTER_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BUILD_GIT_REVISION={}", revision.trim());
    println!("cargo:rustc-env=BUILD_RUSTC_VERSION={}", rustc_version());
}

/// `git rev-parse HEAD`, rebuilt when HEAD moves (a commit, a checkout).
fn git_revision() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let head = git(&["rev-parse", "HEAD"])?;
    for file in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", file]) {
            rerun_if_exists(&p);
        }
    }
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--git-path", &r])
    {
        rerun_if_exists(&p);
    }
    Some(head)
}

fn rerun_if_exists(p: &str) {
    if Path::new(p).exists() {
        println!("cargo:rerun-if-changed={p}");
    }
}

/// `rustc --version`'s version number (`1.89.0`), or "unknown".
fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(1)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into())
}
