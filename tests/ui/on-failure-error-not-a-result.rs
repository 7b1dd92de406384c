#[fabraix::agent(
    id = "support-bot",
    system_prompt = "You are a support assistant.",
    on_failure = "error"
)]
fn count() -> u32 {
    1
}

fn main() {}
