/// Run a query.
#[fabraix::action(skip = "db")]
fn query(db: u8, sql: String) -> Result<(), fabraix::Error> {
    let _ = (db, sql);
    Ok(())
}

fn main() {}
