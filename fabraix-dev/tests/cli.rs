//! The command line: the two lines a shell evaluates, `--print-env`, `--env-file`, and
//! clear errors for what cannot be done.

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{DevServer, WAIT, wait_exit};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_fabraix-dev");

#[tokio::test]
async fn the_first_lines_are_the_env_lines_then_the_page_url() {
    let dev = DevServer::start(&["--api-key", "custom-key-1"]);
    let port = dev.port;
    assert_eq!(
        dev.lines[0],
        format!("FABRAIX_BASE_URL=http://127.0.0.1:{port}/v1")
    );
    assert_eq!(dev.lines[1], "FABRAIX_API_KEY=custom-key-1");
    assert_eq!(dev.lines[2], format!("http://127.0.0.1:{port}/"));

    // The page is at the URL printed.
    let page = reqwest::get(&dev.page_url).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(
        page.headers()["content-type"].to_str().unwrap(),
        "text/html; charset=utf-8"
    );
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<title>fabraix-dev</title>")
    );

    // The API is at the base URL printed and takes the key printed, and only it.
    let register = |key: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/register-agent-run", dev.base_url))
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .body(
                json!({
                    "agent_id": "6f1c2b1e-8a40-5c1b-9a57-2d1f3e4b5c6d",
                    "timestamp": "2024-01-15T14:30:45.123Z",
                    "system_prompt": "You test.",
                })
                .to_string(),
            )
            .send()
    };
    assert_eq!(
        register("custom-key-1").await.unwrap().status().as_u16(),
        200
    );
    assert_eq!(
        register("fabraix-dev-key").await.unwrap().status().as_u16(),
        401
    );
}

#[test]
fn print_env_prints_the_two_lines_and_exits() {
    let output = Command::new(BIN).arg("--print-env").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "FABRAIX_BASE_URL=http://127.0.0.1:8417/v1\nFABRAIX_API_KEY=fabraix-dev-key\n"
    );
}

#[test]
fn a_shell_exports_the_lines_as_the_readme_says() {
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"export $("$BIN" --print-env --port 9123 --api-key k-9) && env | grep -E '^FABRAIX_(BASE_URL|API_KEY)=' | sort"#)
        .env("BIN", BIN)
        .env_remove("FABRAIX_BASE_URL")
        .env_remove("FABRAIX_API_KEY")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "FABRAIX_API_KEY=k-9\nFABRAIX_BASE_URL=http://127.0.0.1:9123/v1\n"
    );
}

#[test]
fn print_env_refuses_port_zero() {
    let output = Command::new(BIN)
        .args(["--print-env", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--env-file"), "{stderr}");
}

#[test]
fn the_env_file_holds_the_lines_while_serving_and_goes_on_exit() {
    let dir = std::env::temp_dir().join(format!("fabraix-dev-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dev.env");
    let _ = std::fs::remove_file(&path);
    let mut dev = DevServer::start(&["--env-file", path.to_str().unwrap()]);

    let deadline = Instant::now() + WAIT;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "no env file at {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, format!("{}\n{}\n", dev.lines[0], dev.lines[1]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner reads the key");
    }

    let status = dev.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        !path.exists(),
        "the env file is removed when the server stops"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut child = Command::new(BIN)
        .args(["--port", &port])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child);
    let output = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(output.stdout.is_empty(), "no lines to evaluate");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("`--port 0`"), "{stderr}");
    drop(taken);
}

#[test]
fn bad_arguments_exit_2_and_say_what_to_write() {
    for (args, says) in [
        (&["--block", "=because"][..], "needs an action name"),
        (&["--port", "eighty"], "expected a number from 0 to 65535"),
        (&["--api-key", "a b"], "`--api-key` takes"),
        (&["--keep-runs", "0"], "at least 1"),
        (&["--verbose"], "unknown argument `--verbose`"),
    ] {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.starts_with("fabraix-dev: "), "{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn help_lists_every_option() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for option in [
        "--port N",
        "--api-key KEY",
        "--block NAME=REASON",
        "--keep-runs N",
        "--env-file PATH",
        "--print-env",
    ] {
        assert!(help.contains(option), "{option}");
    }
}
