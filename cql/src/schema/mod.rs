//! The schema: keyspaces, tables, columns, user types and indexes, how it is persisted,
//! and the views of it clients read (system_schema rows, DESCRIBE).
