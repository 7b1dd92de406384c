#[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
struct SupportBot;

fn main() {}
