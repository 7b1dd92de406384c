#[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
#[fabraix::agent(id = "other-bot", system_prompt = "You are another assistant.")]
async fn handle() {}

fn main() {}
