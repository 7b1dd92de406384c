struct Request {
    conversation_id: u64,
}

#[fabraix::agent(
    id = "support-bot",
    system_prompt = "You are a support assistant.",
    conversation = request.conversation_id
)]
async fn handle(request: Request) {}

fn main() {}
