#[derive(Debug)]
struct MyError;

#[fabraix::agent(
    id = "support-bot",
    system_prompt = "You are a support assistant.",
    on_failure = "error"
)]
async fn handle() -> Result<(), MyError> {
    Ok(())
}

fn main() {}
