#[fabraix::agent(
    id = "support-bot",
    system_prompt = "You are a support assistant.",
    retries = 3
)]
async fn handle() {}

fn main() {}
