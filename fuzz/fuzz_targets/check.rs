//! A `/check` success body: a verdict or `Error::Decode`, never a panic, and never the key
//! in the error.
#![no_main]

use fabraix_runtime::__fuzz::{self, KEY};
use fabraix_runtime::Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Err(error) = __fuzz::check(body) {
        assert!(matches!(error, Error::Decode { .. }), "{error:?}");
        assert!(!format!("{error} {error:?}").contains(KEY), "{error:?}");
    }
});
