#[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.", crate = my_sdk::fabraix)]
async fn handle() {}

fn main() {}
