struct Connection;

/// Run a query.
#[fabraix::action]
fn query(db: &Connection, sql: String) -> Result<(), fabraix::Error> {
    let _ = (db, sql);
    Ok(())
}

fn main() {}
