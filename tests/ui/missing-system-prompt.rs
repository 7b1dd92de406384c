#[fabraix::agent(id = "support-bot")]
async fn handle() {}

fn main() {}
