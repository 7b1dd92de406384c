// One hex digit short in the last group.
#[fabraix::agent(
    id = "6f1c2b7e-3d4a-4c5b-9e8f-0a1b2c3d4e5",
    system_prompt = "You are a support assistant."
)]
async fn handle() {}

fn main() {}
