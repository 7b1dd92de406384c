//! A `Retry-After` value: the first eight bytes pick the time it is read at, the rest is
//! the value. Seconds are read exactly; anything else is a date, or refused; never a panic.
#![no_main]

use std::time::{Duration, SystemTime};

use fabraix_runtime::__fuzz;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (now, value) = match input {
        [a, b, c, d, e, f, g, h, value @ ..] => {
            let secs = u64::from_le_bytes([*a, *b, *c, *d, *e, *f, *g, *h]) % (1 << 40);
            (SystemTime::UNIX_EPOCH + Duration::from_secs(secs), value)
        }
        _ => (SystemTime::UNIX_EPOCH, input),
    };
    let Ok(value) = std::str::from_utf8(value) else {
        return;
    };
    let parsed = __fuzz::retry_after(value, now);
    let trimmed = value.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = trimmed.parse().unwrap_or(u64::MAX);
        assert_eq!(parsed, Some(Duration::from_secs(seconds)));
    }
});
