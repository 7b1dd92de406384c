#![deny(unused_must_use)]

#[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
#[must_use = "the reply is the point"]
fn reply() -> String {
    String::new()
}

fn ignore() {
    reply();
}

fn main() {}
