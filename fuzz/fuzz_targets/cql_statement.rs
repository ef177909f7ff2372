//! Feeds arbitrary bytes to the CQL parser: it must never panic, every error must be a
//! syntax error, and every statement it accepts must print and re-parse to the same AST
//! (`shoal_cql::parser::fuzz_one` checks all three).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shoal_cql::parser::fuzz_one(data);
});
