/// Ring the bell.
#[fabraix::action]
fn ring_bell(times: u32) {
    let _ = times;
}

/// Ring the bell and count.
#[fabraix::action]
fn ring_bell_counted(times: u32) -> u32 {
    times
}

fn main() {}
