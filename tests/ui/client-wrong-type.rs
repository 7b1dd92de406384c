#[fabraix::agent(
    id = "support-bot",
    system_prompt = "You are a support assistant.",
    client = "https://dev.fabraix.com/v1"
)]
async fn handle() {}

fn main() {}
