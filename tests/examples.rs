//! The examples, run as programs the way a newcomer runs them: offline on their in-process
//! MockServer, and with the SDK turned off (`FABRAIX_DISABLED=1`). Either way they exit 0
//! and say which Fabraix they talk to.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EXAMPLES: [&str; 5] = [
    "quickstart",
    "conversation",
    "orders",
    "autonomous",
    "across_processes",
];

/// The example's binary, next to this test's (`cargo test` builds the examples first);
/// built here when a narrower `cargo test --test examples` did not.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let binary = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "fabraix",
                "--example",
                name,
                "--profile",
                profile,
            ])
            .status()
            .unwrap();
        assert!(status.success(), "the example {name} did not build");
    }
    binary
}

/// Runs the example with `env` and none of this process's `FABRAIX_*` variables.
fn run(name: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(binary(name));
    for (variable, _) in std::env::vars() {
        if variable.starts_with("FABRAIX_") {
            command.env_remove(variable);
        }
    }
    command.envs(env.iter().copied()).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn every_example_runs_with_the_sdk_off_and_says_so() {
    for name in EXAMPLES {
        // With a key too: off means off, whatever else is configured.
        for key in [None, Some("a-key-never-sent")] {
            let mut env = vec![("FABRAIX_DISABLED", "1")];
            env.extend(key.map(|key| ("FABRAIX_API_KEY", key)));
            let output = run(name, &env);
            let printed = stdout(&output);
            assert!(
                output.status.success(),
                "{name} with {env:?} exited {}:\n{printed}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                printed.starts_with("FABRAIX_DISABLED is set: the Fabraix SDK is off"),
                "{name} does not say that the SDK is off:\n{printed}"
            );
            assert!(!printed.contains("MockServer"), "{name}:\n{printed}");
        }
    }
}

#[test]
fn every_example_runs_offline_on_a_mock_server() {
    for name in EXAMPLES {
        let output = run(name, &[]);
        let printed = stdout(&output);
        assert!(
            output.status.success(),
            "{name} exited {}:\n{printed}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            printed.starts_with("FABRAIX_API_KEY is not set: using an in-process MockServer"),
            "{name}:\n{printed}"
        );
        assert!(
            !printed.contains("none: Fabraix is off"),
            "{name}:\n{printed}"
        );
    }
}
