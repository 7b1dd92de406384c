//! An error answer: the first two bytes pick the status (100..600), the rest is the body.
//! Always `Error::Api` with that status and a message, never the key.
#![no_main]

use fabraix_runtime::__fuzz::{self, KEY};
use fabraix_runtime::Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (status, body) = match input {
        [a, b, body @ ..] => (100 + u16::from_le_bytes([*a, *b]) % 500, body),
        _ => (500, input),
    };
    let error = __fuzz::error(status, body);
    match &error {
        Error::Api {
            status: got,
            message,
            ..
        } => {
            assert_eq!(*got, status);
            assert!(!message.trim().is_empty(), "{error:?}");
        }
        other => panic!("not an api error: {other:?}"),
    }
    assert!(!format!("{error} {error:?}").contains(KEY), "{error:?}");
});
