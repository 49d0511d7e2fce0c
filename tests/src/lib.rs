//! Cross-crate integration tests for ledgerwire, and the helpers they share (multi-node harnesses arrive with the
//! switch). Tests that exercise a single crate live in that crate.
#![forbid(unsafe_code)]
