#[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
async fn handle() -> u32 {
    let reply: u32 = "not a number";
    reply
}

#[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
fn handle_sync() -> u32 {
    let reply: u32 = "not a number";
    reply
}

fn main() {}
