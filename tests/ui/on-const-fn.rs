#[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
const fn handle() -> u32 {
    1
}

fn main() {}
