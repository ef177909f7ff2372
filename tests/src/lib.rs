//! Helpers for end-to-end tests: start real `shoal` processes on their own loopback
//! addresses and wait for them.
