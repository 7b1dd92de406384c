//! A `FABRAIX_RATE_LIMIT` value, then a budget living within it: the text up to the first
//! NUL byte is the value, the rest the budget's steps (see `__fuzz::budget`). A value is a
//! limit within the bounds (at most 1,000,000 requests in at most a day per window), which
//! prints back to itself, or a configuration error; the budget never panics.
#![no_main]

use std::time::Duration;

use fabraix_runtime::{Error, RateLimit, __fuzz};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (text, steps) = match input.iter().position(|b| *b == 0) {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (input, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    match text.parse::<RateLimit>() {
        Ok(limit) => {
            for window in limit.windows() {
                assert!((1..=RateLimit::MAX_REQUESTS).contains(&window.requests));
                assert!(window.per >= Duration::from_secs(1) && window.per <= RateLimit::MAX_PER);
            }
            assert_eq!(limit.to_string().parse::<RateLimit>().ok(), Some(limit.clone()));
            __fuzz::budget(&limit, steps);
        }
        Err(error) => {
            assert!(matches!(error, Error::Config(_)), "{error}");
        }
    }
});
