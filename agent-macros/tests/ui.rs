//! Compile-time behaviour of `#[tool]`: signatures that must compile, and signatures that must
//! fail with an error at the exact span (`.stderr` files are checked in; regenerate with
//! `TRYBUILD=overwrite cargo test -p agent-macros --test ui` and review the diff).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
