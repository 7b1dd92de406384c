// A UUID written with `_` between its groups: not a UUID, and not meant as a name.
#[fabraix::agent(
    id = "6f1c2b7e_3d4a_4c5b_9e8f_0a1b2c3d4e5f",
    system_prompt = "You are a support assistant."
)]
async fn handle() {}

fn main() {}
