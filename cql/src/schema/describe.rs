//! Server-side DESCRIBE, as cqlsh 6.2 uses it: CQL text for keyspaces, tables, types and
//! indexes, and the result rows of every DESCRIBE form.
