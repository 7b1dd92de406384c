#[fabraix::agent("support-bot", system_prompt = "You are a support assistant.")]
async fn handle() {}

fn main() {}
