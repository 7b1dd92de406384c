#[fabraix::agent(id = 42, system_prompt = "You are a support assistant.")]
async fn handle() {}

fn main() {}
