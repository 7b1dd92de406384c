#[fabraix::agent(
    id = "support-bot",
    system_prompt = "You are a support assistant.",
    conversation = " "
)]
async fn handle() {}

fn main() {}
