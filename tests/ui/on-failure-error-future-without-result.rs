use std::future::Future;

#[fabraix::agent(
    id = "support-bot",
    system_prompt = "You are a support assistant.",
    on_failure = "error"
)]
fn handle() -> impl Future<Output = ()> {
    async {}
}

fn main() {}
