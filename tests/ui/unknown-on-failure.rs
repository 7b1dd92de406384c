#[fabraix::agent(
    id = "support-bot",
    system_prompt = "You are a support assistant.",
    on_failure = "retry"
)]
async fn handle() {}

fn main() {}
