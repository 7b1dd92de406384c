#[derive(serde::Serialize, schemars::JsonSchema)]
struct Point {
    x: i32,
    y: i32,
}

/// Move to a point.
#[fabraix::action]
fn move_to(Point { x, y }: Point) -> Result<(), fabraix::Error> {
    let _ = (x, y);
    Ok(())
}

fn main() {}
