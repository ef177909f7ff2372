//! Node configuration: cassandra.yaml keys, then the official image's environment
//! variables, then flags.
