//! Statement execution on one node.
