//! Durable storage of the schema.
