//! Stamps the binary with the commit it was built from (`storefront --version`, the
//! `storefront_build_info` metric); `unknown` outside a git checkout (a Docker build context).

use std::process::Command;

fn main() {
    // A Docker build has no .git: it passes the commit in (`--build-arg STOREFRONT_COMMIT`).
    println!("cargo:rerun-if-env-changed=STOREFRONT_COMMIT");
    let given = std::env::var("STOREFRONT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty() && c != "unknown");
    let commit = given.or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .filter(|commit| !commit.is_empty())
    });
    let commit = commit.unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=STOREFRONT_COMMIT={commit}");
    // A new commit moves the branch's ref; a checkout moves HEAD.
    println!("cargo:rerun-if-changed=.git/HEAD");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(reference) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=.git/{reference}");
        }
    }
    println!("cargo:rerun-if-changed=.git/packed-refs");
}
