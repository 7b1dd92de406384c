/// Look up a price.
#[fabraix::action]
fn price(sku: String) -> Option<u64> {
    let _ = sku;
    Some(1)
}

fn main() {}
