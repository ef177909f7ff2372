//! Type names: CQL strings as system_schema stores them, Java marshal class names (for the
//! protocol's Custom option), and resolution of native type names.

use super::CqlType;

impl CqlType {
    /// The CQL type string as system_schema.columns stores it: `text` (never `varchar`),
    /// `frozen<list<int>>`, `map<text, int>`, a UDT by bare name.
    pub fn cql_name(&self) -> String {
        String::new()
    }

    /// Cassandra's marshal class, e.g. `org.apache.cassandra.db.marshal.DurationType`.
    pub fn marshal_class(&self) -> String {
        String::new()
    }

    /// A native type by its CQL name (`varchar` is `text`).
    pub fn from_native_name(name: &str) -> Option<CqlType> {
        let _ = name;
        None
    }

    /// True for non-frozen collections and UDTs (stored one cell per element).
    pub fn is_multicell(&self) -> bool {
        match self {
            CqlType::List { frozen, .. }
            | CqlType::Set { frozen, .. }
            | CqlType::Map { frozen, .. }
            | CqlType::Udt { frozen, .. } => !frozen,
            _ => false,
        }
    }
}
