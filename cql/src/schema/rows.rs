//! The rows of system_schema.* generated from a schema snapshot.
