//! The CQL TCP server.
