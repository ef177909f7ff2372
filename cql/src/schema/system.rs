//! Definitions of the built-in system keyspaces and their tables.
