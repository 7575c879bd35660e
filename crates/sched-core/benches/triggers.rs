//! PLACEHOLDER benchmark.
fn main() {}
