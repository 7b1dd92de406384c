/// Run a query.
#[fabraix::action(name = " ")]
fn query(sql: String) -> Result<(), fabraix::Error> {
    let _ = sql;
    Ok(())
}

fn main() {}
