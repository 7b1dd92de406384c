#!/usr/bin/env bash
# Clean-build times: what the SDK adds to an agent's build. Each build starts from an empty
# target directory; the registry cache is warm (downloads are not timed).
#
#   bash benches/compile.sh
#
# Prints seconds for:
#   macros       fabraix-macros alone (syn, quote, proc-macro2 and the macro crate)
#   hello        a reqwest + tokio hello-world with the SDK's reqwest features
#   agent        the same hello-world that also depends on fabraix and uses #[fabraix::agent]
#   quickstart   `cargo build --example quickstart` of this repository (adds the MockServer)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null 2>&1; end=$(date +%s.%N); awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f s", b - a }'; }

mkdir -p "$work/hello/src" "$work/agent/src"
cat > "$work/hello/Cargo.toml" <<TOML
[package]
name = "hello"
version = "0.1.0"
edition = "2024"
[dependencies]
reqwest = { version = "0.13.5", default-features = false, features = ["rustls", "http2"] }
tokio = { version = "1.47", features = ["macros", "rt-multi-thread"] }
TOML
cat > "$work/hello/src/main.rs" <<'RS'
#[tokio::main]
async fn main() {
    let client = reqwest::Client::new();
    let _ = client.get("http://127.0.0.1:9/").send().await;
    println!("hello");
}
RS
sed -e 's/name = "hello"/name = "agent"/' "$work/hello/Cargo.toml" > "$work/agent/Cargo.toml"
echo "fabraix = { path = \"$repo\" }" >> "$work/agent/Cargo.toml"
cat > "$work/agent/src/main.rs" <<'RS'
#[fabraix::agent(id = "hello", system_prompt = "You say hello.")]
async fn hello() {
    let client = reqwest::Client::new();
    let _ = client.get("http://127.0.0.1:9/").send().await;
    println!("hello");
}

#[tokio::main]
async fn main() {
    hello().await;
}
RS
for d in hello agent; do (cd "$work/$d" && cargo generate-lockfile -q && cargo fetch -q); done
(cd "$repo" && cargo fetch -q)

echo "macros     $(cd "$repo" && seconds env CARGO_TARGET_DIR="$work/t-macros" cargo build -p fabraix-macros)"
echo "hello      $(cd "$work/hello" && seconds env CARGO_TARGET_DIR="$work/t-hello" cargo build)"
echo "agent      $(cd "$work/agent" && seconds env CARGO_TARGET_DIR="$work/t-agent" cargo build)"
echo "quickstart $(cd "$repo" && seconds env CARGO_TARGET_DIR="$work/t-quick" cargo build --example quickstart)"
