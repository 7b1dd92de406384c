#[fabraix::agent(id = "support-bot", system_promt = "You are a support assistant.")]
async fn handle() {}

fn main() {}
