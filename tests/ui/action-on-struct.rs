#[fabraix::action]
struct Query {
    sql: String,
}

fn main() {}
