//! What a user's build holds: a crate depending on `fabraix` with its default features
//! sees the SDK, and not the fuzzing entry points (`fabraix::__fuzz`), which exist only
//! for `cargo fuzz` and this repository's property tests.
//!
//! Builds two tiny crates with `cargo check`, with a target directory of their own, all
//! under the scratch directory cargo gives integration tests (`tmp/` in the target
//! directory, wherever `CARGO_TARGET_DIR` puts it), so it costs one check of the SDK's
//! dependency tree the first time.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the user crates and their build go: never the source tree.
fn scratch() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("user-build")
}

fn user_crate(name: &str, main: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = scratch().join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nfabraix = {{ path = {:?} }}\ntokio = {{ version = \"1\", features = [\"macros\", \"rt\"] }}\n\n\
         # Not a member of the SDK's workspace.\n[workspace]\n",
        root.display().to_string()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/main.rs"), main).unwrap();
    // The same versions as the SDK's own build, and nothing fetched.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    dir
}

fn check(dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO"))
        .args(["check", "--offline", "--quiet", "--message-format=short"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", scratch().join("target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn fuzzing_entry_points_are_not_in_a_users_build() {
    // The SDK itself builds in a user's crate ...
    let (ok, stderr) = check(&user_crate(
        "uses-the-sdk",
        "#[fabraix::agent(id = \"user\", system_prompt = \"p\")]\n\
         async fn agent() {}\n\
         #[tokio::main(flavor = \"current_thread\")]\n\
         async fn main() { agent().await; let _ = fabraix::current_trace(); }\n",
    ));
    assert!(ok, "{stderr}");
    // ... and `fabraix::__fuzz` does not resolve there.
    let (ok, stderr) = check(&user_crate(
        "reaches-for-fuzz",
        "fn main() { let _ = fabraix::__fuzz::KEY; }\n",
    ));
    assert!(!ok, "`fabraix::__fuzz` resolved in a user's build");
    assert!(stderr.contains("__fuzz"), "{stderr}");
}
