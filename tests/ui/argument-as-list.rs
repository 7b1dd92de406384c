#[fabraix::agent(id("support-bot"), system_prompt = "You are a support assistant.")]
async fn handle() {}

fn main() {}
