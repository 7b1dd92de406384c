#[fabraix::agent(
    id = "support-bot",
    system_prompt = "You are a support assistant.",
    on_failure = "error"
)]
async fn handle() {}

#[fabraix::agent(
    id = "support-bot",
    system_prompt = "You are a support assistant.",
    on_failure = "error"
)]
fn handle_sync() -> () {}

fn main() {}
