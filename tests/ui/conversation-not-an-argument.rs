#[fabraix::agent(
    id = "support-bot",
    system_prompt = "You are a support assistant.",
    conversation = &request.conversation_id
)]
async fn handle(conversation_id: String) {}

fn main() {}
