trait Agent {
    #[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
    fn handle(&self);
}

fn main() {}
