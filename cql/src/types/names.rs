//! Type names: CQL strings as system_schema stores them, Java marshal class names (for the
//! protocol's Custom option), and resolution of native type names.

use std::fmt::Write;

use super::CqlType;
use super::codec::hex;

const MARSHAL: &str = "org.apache.cassandra.db.marshal.";

/// Every native type name Cassandra accepts, in the order Cassandra lists them.
pub const NATIVE_NAMES: &[&str] = &[
    "ascii",
    "bigint",
    "blob",
    "boolean",
    "counter",
    "date",
    "decimal",
    "double",
    "duration",
    "float",
    "inet",
    "int",
    "smallint",
    "text",
    "time",
    "timestamp",
    "timeuuid",
    "tinyint",
    "uuid",
    "varchar",
    "varint",
];

impl CqlType {
    /// The CQL type string as system_schema.columns stores it: `text` (never `varchar`),
    /// `frozen<list<int>>`, `map<text, int>`, a UDT by bare name.
    pub fn cql_name(&self) -> String {
        self.cql_name_at(true)
    }

    /// Below the top level every collection and UDT is frozen, whatever its flag says:
    /// Cassandra freezes nested types and prints them so.
    fn cql_name_at(&self, top: bool) -> String {
        let frozen_wrap = |frozen: bool, s: String| {
            if frozen || !top {
                format!("frozen<{s}>")
            } else {
                s
            }
        };
        match self {
            CqlType::List { elem, frozen } => {
                frozen_wrap(*frozen, format!("list<{}>", elem.cql_name_at(false)))
            }
            CqlType::Set { elem, frozen } => {
                frozen_wrap(*frozen, format!("set<{}>", elem.cql_name_at(false)))
            }
            CqlType::Map { key, value, frozen } => frozen_wrap(
                *frozen,
                format!(
                    "map<{}, {}>",
                    key.cql_name_at(false),
                    value.cql_name_at(false)
                ),
            ),
            CqlType::Tuple(types) => {
                let inner: Vec<String> = types.iter().map(|t| t.cql_name_at(false)).collect();
                format!("frozen<tuple<{}>>", inner.join(", "))
            }
            CqlType::Udt { def, frozen } => frozen_wrap(*frozen, quote_identifier(&def.name)),
            CqlType::Vector { elem, dimension } => {
                format!("vector<{}, {dimension}>", elem.cql_name_at(false))
            }
            CqlType::Custom(class) => format!("'{}'", class.replace('\'', "''")),
            other => other.native_name().unwrap_or("empty").to_owned(),
        }
    }

    /// The CQL name of a native type (`text` for text/varchar), `None` otherwise.
    pub fn native_name(&self) -> Option<&'static str> {
        Some(match self {
            CqlType::Ascii => "ascii",
            CqlType::Bigint => "bigint",
            CqlType::Blob => "blob",
            CqlType::Boolean => "boolean",
            CqlType::Counter => "counter",
            CqlType::Decimal => "decimal",
            CqlType::Double => "double",
            CqlType::Duration => "duration",
            CqlType::Float => "float",
            CqlType::Int => "int",
            CqlType::Smallint => "smallint",
            CqlType::Tinyint => "tinyint",
            CqlType::Text => "text",
            CqlType::Timestamp => "timestamp",
            CqlType::Date => "date",
            CqlType::Time => "time",
            CqlType::Uuid => "uuid",
            CqlType::Timeuuid => "timeuuid",
            CqlType::Varint => "varint",
            CqlType::Inet => "inet",
            _ => return None,
        })
    }

    /// Cassandra's marshal class, e.g. `org.apache.cassandra.db.marshal.DurationType`.
    pub fn marshal_class(&self) -> String {
        self.marshal_class_inner(false)
    }

    /// `ignore_freezing` mirrors Cassandra's `AbstractType.toString(boolean)`: inside a
    /// frozen collection the nested `FrozenType(...)` wrappers are not printed.
    fn marshal_class_inner(&self, ignore_freezing: bool) -> String {
        let simple = |name: &str| format!("{MARSHAL}{name}");
        let wrap = |frozen: bool, s: String| {
            if frozen && !ignore_freezing {
                format!("{MARSHAL}FrozenType({s})")
            } else {
                s
            }
        };
        match self {
            CqlType::Ascii => simple("AsciiType"),
            CqlType::Bigint => simple("LongType"),
            CqlType::Blob => simple("BytesType"),
            CqlType::Boolean => simple("BooleanType"),
            CqlType::Counter => simple("CounterColumnType"),
            CqlType::Decimal => simple("DecimalType"),
            CqlType::Double => simple("DoubleType"),
            CqlType::Duration => simple("DurationType"),
            CqlType::Float => simple("FloatType"),
            CqlType::Int => simple("Int32Type"),
            CqlType::Smallint => simple("ShortType"),
            CqlType::Tinyint => simple("ByteType"),
            CqlType::Text => simple("UTF8Type"),
            CqlType::Timestamp => simple("TimestampType"),
            CqlType::Date => simple("SimpleDateType"),
            CqlType::Time => simple("TimeType"),
            CqlType::Uuid => simple("UUIDType"),
            CqlType::Timeuuid => simple("TimeUUIDType"),
            CqlType::Varint => simple("IntegerType"),
            CqlType::Inet => simple("InetAddressType"),
            CqlType::Empty => simple("EmptyType"),
            CqlType::Custom(class) => class.clone(),
            CqlType::List { elem, frozen } => wrap(
                *frozen,
                format!(
                    "{MARSHAL}ListType({})",
                    elem.marshal_class_inner(ignore_freezing || *frozen)
                ),
            ),
            CqlType::Set { elem, frozen } => wrap(
                *frozen,
                format!(
                    "{MARSHAL}SetType({})",
                    elem.marshal_class_inner(ignore_freezing || *frozen)
                ),
            ),
            CqlType::Map { key, value, frozen } => {
                let inner = ignore_freezing || *frozen;
                wrap(
                    *frozen,
                    format!(
                        "{MARSHAL}MapType({},{})",
                        key.marshal_class_inner(inner),
                        value.marshal_class_inner(inner)
                    ),
                )
            }
            CqlType::Tuple(types) => {
                let inner: Vec<String> = types
                    .iter()
                    .map(|t| t.marshal_class_inner(ignore_freezing))
                    .collect();
                format!("{MARSHAL}TupleType({})", inner.join(","))
            }
            CqlType::Udt { def, frozen } => {
                let inner = ignore_freezing || *frozen;
                let mut s = format!(
                    "{MARSHAL}UserType({},{}",
                    def.keyspace,
                    hex(def.name.as_bytes())
                );
                for (name, t) in &def.fields {
                    let _ = write!(
                        s,
                        ",{}:{}",
                        hex(name.as_bytes()),
                        t.marshal_class_inner(inner)
                    );
                }
                s.push(')');
                wrap(*frozen, s)
            }
            CqlType::Vector { elem, dimension } => format!(
                "{MARSHAL}VectorType({},{dimension})",
                elem.marshal_class_inner(true)
            ),
        }
    }

    /// A native type by its CQL name (`varchar` is `text`).
    pub fn from_native_name(name: &str) -> Option<CqlType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "ascii" => CqlType::Ascii,
            "bigint" => CqlType::Bigint,
            "blob" => CqlType::Blob,
            "boolean" => CqlType::Boolean,
            "counter" => CqlType::Counter,
            "date" => CqlType::Date,
            "decimal" => CqlType::Decimal,
            "double" => CqlType::Double,
            "duration" => CqlType::Duration,
            "float" => CqlType::Float,
            "inet" => CqlType::Inet,
            "int" => CqlType::Int,
            "smallint" => CqlType::Smallint,
            "text" | "varchar" => CqlType::Text,
            "time" => CqlType::Time,
            "timestamp" => CqlType::Timestamp,
            "timeuuid" => CqlType::Timeuuid,
            "tinyint" => CqlType::Tinyint,
            "uuid" => CqlType::Uuid,
            "varint" => CqlType::Varint,
            _ => return None,
        })
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

    /// True for list, set and map.
    pub fn is_collection(&self) -> bool {
        matches!(
            self,
            CqlType::List { .. } | CqlType::Set { .. } | CqlType::Map { .. }
        )
    }

    /// A copy with every collection and UDT frozen, as nested types must be.
    pub fn frozen(&self) -> CqlType {
        match self {
            CqlType::List { elem, .. } => CqlType::List {
                elem: Box::new(elem.frozen()),
                frozen: true,
            },
            CqlType::Set { elem, .. } => CqlType::Set {
                elem: Box::new(elem.frozen()),
                frozen: true,
            },
            CqlType::Map { key, value, .. } => CqlType::Map {
                key: Box::new(key.frozen()),
                value: Box::new(value.frozen()),
                frozen: true,
            },
            CqlType::Tuple(types) => CqlType::Tuple(types.iter().map(|t| t.frozen()).collect()),
            CqlType::Udt { def, .. } => CqlType::Udt {
                def: def.clone(),
                frozen: true,
            },
            CqlType::Vector { elem, dimension } => CqlType::Vector {
                elem: Box::new(elem.frozen()),
                dimension: *dimension,
            },
            other => other.clone(),
        }
    }
}

/// Quotes an identifier when Cassandra would (not all lower-case alphanumerics/underscore,
/// or starting with a digit).
pub fn quote_identifier(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

impl std::fmt::Display for CqlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.cql_name())
    }
}
