struct Connection;

/// Run a query.
#[fabraix::action(skip(conn))]
fn query(db: &Connection, sql: String) -> Result<(), fabraix::Error> {
    let _ = (db, sql);
    Ok(())
}

fn main() {}
