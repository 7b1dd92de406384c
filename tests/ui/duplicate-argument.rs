#[fabraix::agent(
    id = "support-bot",
    system_prompt = "You are a support assistant.",
    id = "other-bot"
)]
async fn handle() {}

#[fabraix::agent(
    id = "support-bot",
    system_prompt = "You are a support assistant.",
    conversation = &conversation_id,
    conversation = &user_id
)]
async fn handle_turn(conversation_id: String, user_id: String) {
    let _ = (conversation_id, user_id);
}

fn main() {}
