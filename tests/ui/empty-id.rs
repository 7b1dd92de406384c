#[fabraix::agent(id = "  ", system_prompt = "You are a support assistant.")]
async fn handle() {}

fn main() {}
