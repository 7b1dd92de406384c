//! Compile-fail cases: every misuse of the attributes is an error on the token to change,
//! with a message that says what to write instead. Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test --test compiletest`, and read every diff.
//!
//! The `.stderr` snapshots hold rustc 1.95's wording; other compilers word (and place)
//! errors a little differently, so there the test is skipped rather than failed.

#[rustversion::attr(
    not(stable(1.95)),
    ignore = "the .stderr snapshots are rustc 1.95's wording"
)]
#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
