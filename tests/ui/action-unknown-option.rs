/// Run a query.
#[fabraix::action(descripton = "Run a query.")]
fn query(sql: String) -> Result<(), fabraix::Error> {
    let _ = sql;
    Ok(())
}

fn main() {}
