struct SupportBot;

#[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
impl SupportBot {
    fn handle(&self) {}
}

fn main() {}
