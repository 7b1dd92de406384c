#[fabraix::agent(
    id = "support-bot",
    system_prompt = "You are a support assistant.",
    id = "other-bot"
)]
async fn handle() {}

fn main() {}
