#[derive(Debug)]
struct NotFound;

#[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
async fn reply() -> u32 {
    "not a number"
}

#[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
async fn lookup() -> Result<u32, std::num::ParseIntError> {
    let found: Result<u32, NotFound> = Err(NotFound);
    let n = found?;
    Ok(n)
}

fn main() {}
