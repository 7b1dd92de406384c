#[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.", on_failure = Continue)]
async fn handle() {}

fn main() {}
