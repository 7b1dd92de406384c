//! Compile-fail cases: every misuse of the attributes is an error on the token to change,
//! with a message that says what to write instead. Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test --test compiletest`, and read every diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
