#![deny(deprecated)]

#[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
async fn handle() {
    let helper = tokio::spawn(async { fabraix::current_trace() });
    let _ = helper.await;
}

fn main() {}
