//! Definitions of the built-in system keyspaces and their tables.

pub fn system_keyspaces() -> Vec<super::KeyspaceDef> {
    Vec::new()
}
