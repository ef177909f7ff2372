//! Durable storage of the schema: one file, `schema.db`, replaced atomically on every DDL.
//!
//! Layout (`docs/formats/schema.md`): magic `SHOALSCM`, format version (u32 LE), payload
//! length (u64 LE), CRC32 of the payload (u32 LE), then the payload: UTF-8 JSON of the user
//! keyspaces. A DDL statement is acknowledged only after the new file is fsynced and renamed
//! over the old one and the directory is fsynced, so the schema never loses a change it
//! acknowledged and a crash leaves either the old or the new file, never a mix.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::merge::{Entry, SchemaState};
use super::{ColumnDef, ColumnKind, IndexDef, KeyspaceDef, TableDef, TableParams, TableSource};
use crate::error::CqlError;
use crate::parser::ast::Order;
use crate::types::{CqlType, UdtDef};

const MAGIC: &[u8; 8] = b"SHOALSCM";
const FORMAT_VERSION: u32 = 2;
const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// Errors reading or writing the schema file.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("schema file {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

impl From<PersistError> for CqlError {
    fn from(e: PersistError) -> Self {
        CqlError::Server(e.to_string())
    }
}

/// Reads and writes `schema.db` in one directory.
#[derive(Debug, Clone)]
pub struct SchemaStore {
    dir: PathBuf,
}

impl SchemaStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SchemaStore { dir: dir.into() }
    }

    /// The directory holding the schema (and other small node-wide metadata files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self) -> PathBuf {
        self.dir.join("schema.db")
    }

    /// Loads the user schema with its history; an absent file is an empty schema.
    pub fn load_state(&self) -> Result<SchemaState, PersistError> {
        let path = self.path();
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SchemaState::default()),
            Err(source) => return Err(PersistError::Io { path, source }),
        };
        decode_state(&data).map_err(|e| PersistError::Corrupt {
            path,
            reason: e.to_string(),
        })
    }

    /// Atomically replaces the file with `state`.
    pub fn save_state(&self, state: &SchemaState) -> Result<(), PersistError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PersistError::Io { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let out = encode_state(state);
        let tmp = self.dir.join("schema.db.tmp");
        {
            let mut f = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&tmp)
                .map_err(io(&tmp))?;
            f.write_all(&out).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        let path = self.path();
        fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        Ok(())
    }
}

/// Why bytes are not a schema (file or SCHEMA_PUSH / SCHEMA_PULL payload).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("bad magic bytes or short header")]
    BadHeader,
    #[error("unsupported format version {0}")]
    Version(u32),
    #[error("payload is {actual} bytes, header says {header}")]
    Length { actual: usize, header: u64 },
    #[error("checksum mismatch")]
    Checksum,
    #[error("bad payload: {0}")]
    Payload(String),
}

/// The schema in its file format (`docs/formats/schema.md`), also what nodes exchange.
pub fn encode_state(state: &SchemaState) -> Vec<u8> {
    let payload = serde_json::to_vec(&StateDto::from_state(state)).expect("schema serializes");
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Reads format 2, and format 1 (no history: everything live at timestamp 0).
pub fn decode_state(data: &[u8]) -> Result<SchemaState, FormatError> {
    if data.len() < HEADER_LEN || &data[..8] != MAGIC {
        return Err(FormatError::BadHeader);
    }
    let version = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
    if version != 1 && version != FORMAT_VERSION {
        return Err(FormatError::Version(version));
    }
    let len = u64::from_le_bytes(data[12..20].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(data[20..24].try_into().expect("4 bytes"));
    let payload = &data[HEADER_LEN..];
    if payload.len() as u64 != len {
        return Err(FormatError::Length {
            actual: payload.len(),
            header: len,
        });
    }
    if crc32fast::hash(payload) != crc {
        return Err(FormatError::Checksum);
    }
    let bad = |e: serde_json::Error| FormatError::Payload(e.to_string());
    if version == 1 {
        let dto: SchemaDto = serde_json::from_slice(payload).map_err(bad)?;
        let keyspaces: Vec<KeyspaceDef> = dto
            .keyspaces
            .into_iter()
            .map(KeyspaceDto::into_def)
            .collect();
        return Ok(SchemaState::from_keyspaces(keyspaces.iter()));
    }
    let dto: StateDto = serde_json::from_slice(payload).map_err(bad)?;
    Ok(dto.into_state())
}

fn md5_of(value: &impl Serialize) -> [u8; 16] {
    use md5::{Digest, Md5};
    Md5::digest(serde_json::to_vec(value).expect("schema serializes")).into()
}

/// Digest of a keyspace's properties, to break timestamp ties deterministically.
pub fn keyspace_props_digest(ks: &KeyspaceDef) -> [u8; 16] {
    md5_of(&(&ks.replication, ks.durable_writes))
}

/// Digest of a table definition, to break timestamp ties deterministically.
pub fn table_digest(t: &TableDef) -> [u8; 16] {
    md5_of(&TableDto::from_def(t))
}

/// Digest of a user type, to break timestamp ties deterministically.
pub fn udt_digest(u: &UdtDef) -> [u8; 16] {
    md5_of(&UdtDto::from_def(u))
}

/// A digest of the user schema as a UUID, equal on nodes with equal schemas.
pub fn schema_digest<'a>(keyspaces: impl Iterator<Item = &'a KeyspaceDef>) -> Uuid {
    use md5::{Digest, Md5};
    let dto = SchemaDto {
        keyspaces: keyspaces.map(KeyspaceDto::from_def).collect(),
    };
    let bytes = serde_json::to_vec(&dto).expect("schema serializes");
    let mut hash: [u8; 16] = Md5::digest(&bytes).into();
    // Shape it like Cassandra's name-based (v3) UUIDs.
    hash[6] = (hash[6] & 0x0f) | 0x30;
    hash[8] = (hash[8] & 0x3f) | 0x80;
    Uuid::from_bytes(hash)
}

pub fn load_error(e: PersistError) -> CqlError {
    CqlError::Server(e.to_string())
}

#[derive(Serialize, Deserialize)]
struct SchemaDto {
    keyspaces: Vec<KeyspaceDto>,
}

/// Format 2: every register of [`SchemaState`] with its timestamp (`docs/formats/schema.md`).
#[derive(Serialize, Deserialize)]
struct StateDto {
    keyspaces: Vec<KeyspaceV2>,
    tables: Vec<TableV2>,
    types: Vec<TypeV2>,
    tombstones: Vec<TombstoneDto>,
}

#[derive(Serialize, Deserialize)]
struct KeyspaceV2 {
    name: String,
    timestamp: i64,
    replication: BTreeMap<String, String>,
    durable_writes: bool,
}

#[derive(Serialize, Deserialize)]
struct TableV2 {
    keyspace: String,
    timestamp: i64,
    #[serde(flatten)]
    table: TableDto,
}

#[derive(Serialize, Deserialize)]
struct TypeV2 {
    keyspace: String,
    timestamp: i64,
    #[serde(flatten)]
    udt: UdtDto,
}

#[derive(Serialize, Deserialize)]
struct TombstoneDto {
    /// `keyspace`, `table` or `type`.
    kind: String,
    keyspace: String,
    /// Empty for a keyspace.
    name: String,
    timestamp: i64,
}

impl StateDto {
    fn from_state(s: &SchemaState) -> StateDto {
        let mut tombstones = Vec::new();
        let mut dead = |kind: &str, keyspace: &str, name: &str, ts: i64| {
            tombstones.push(TombstoneDto {
                kind: kind.into(),
                keyspace: keyspace.into(),
                name: name.into(),
                timestamp: ts,
            })
        };
        let mut keyspaces = Vec::new();
        for (name, e) in &s.keyspaces {
            match e {
                Entry::Live { ts, def } => keyspaces.push(KeyspaceV2 {
                    name: name.clone(),
                    timestamp: *ts,
                    replication: def.replication.clone(),
                    durable_writes: def.durable_writes,
                }),
                Entry::Dead { ts } => dead("keyspace", name, "", *ts),
            }
        }
        let mut tables = Vec::new();
        for ((ks, name), e) in &s.tables {
            match e {
                Entry::Live { ts, def } => tables.push(TableV2 {
                    keyspace: ks.clone(),
                    timestamp: *ts,
                    table: TableDto::from_def(def),
                }),
                Entry::Dead { ts } => dead("table", ks, name, *ts),
            }
        }
        let mut types = Vec::new();
        for ((ks, name), e) in &s.types {
            match e {
                Entry::Live { ts, def } => types.push(TypeV2 {
                    keyspace: ks.clone(),
                    timestamp: *ts,
                    udt: UdtDto::from_def(def),
                }),
                Entry::Dead { ts } => dead("type", ks, name, *ts),
            }
        }
        StateDto {
            keyspaces,
            tables,
            types,
            tombstones,
        }
    }

    fn into_state(self) -> SchemaState {
        let mut s = SchemaState::default();
        for k in self.keyspaces {
            let def = KeyspaceDef {
                name: k.name.clone(),
                replication: k.replication,
                durable_writes: k.durable_writes,
                tables: BTreeMap::new(),
                types: BTreeMap::new(),
                is_system: false,
            };
            s.keyspaces.insert(
                k.name,
                Entry::Live {
                    ts: k.timestamp,
                    def: Arc::new(def),
                },
            );
        }
        for t in self.tables {
            let def = t.table.into_def(&t.keyspace);
            s.tables.insert(
                (t.keyspace, def.name.clone()),
                Entry::Live {
                    ts: t.timestamp,
                    def: Arc::new(def),
                },
            );
        }
        for t in self.types {
            let def = t.udt.into_def(&t.keyspace);
            s.types.insert(
                (t.keyspace, def.name.clone()),
                Entry::Live {
                    ts: t.timestamp,
                    def: Arc::new(def),
                },
            );
        }
        for d in self.tombstones {
            match d.kind.as_str() {
                "keyspace" => {
                    s.keyspaces
                        .insert(d.keyspace, Entry::Dead { ts: d.timestamp });
                }
                "table" => {
                    s.tables
                        .insert((d.keyspace, d.name), Entry::Dead { ts: d.timestamp });
                }
                _ => {
                    s.types
                        .insert((d.keyspace, d.name), Entry::Dead { ts: d.timestamp });
                }
            }
        }
        s
    }
}

#[derive(Serialize, Deserialize)]
struct KeyspaceDto {
    name: String,
    replication: BTreeMap<String, String>,
    durable_writes: bool,
    types: Vec<UdtDto>,
    tables: Vec<TableDto>,
}

#[derive(Serialize, Deserialize)]
struct UdtDto {
    name: String,
    fields: Vec<(String, TypeDto)>,
}

#[derive(Serialize, Deserialize)]
struct TableDto {
    name: String,
    id: Uuid,
    columns: Vec<ColumnDto>,
    params: ParamsDto,
    is_counter: bool,
    indexes: Vec<IndexDto>,
    dropped_columns: Vec<(String, TypeDto, i64)>,
    next_column_id: u32,
}

#[derive(Serialize, Deserialize)]
struct ColumnDto {
    name: String,
    ty: TypeDto,
    kind: String,
    position: i32,
    desc: bool,
    id: u32,
}

#[derive(Serialize, Deserialize)]
struct IndexDto {
    name: String,
    kind: String,
    options: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct ParamsDto {
    additional_write_policy: String,
    bloom_filter_fp_chance: f64,
    caching: BTreeMap<String, String>,
    cdc: bool,
    comment: String,
    compaction: BTreeMap<String, String>,
    compression: BTreeMap<String, String>,
    crc_check_chance: f64,
    default_time_to_live: i32,
    extensions: BTreeMap<String, Vec<u8>>,
    gc_grace_seconds: i32,
    max_index_interval: i32,
    memtable_flush_period_in_ms: i32,
    min_index_interval: i32,
    read_repair: String,
    speculative_retry: String,
}

/// A type as persisted. UDTs are embedded whole, so a column's type never depends on
/// resolution order at load time.
#[derive(Serialize, Deserialize)]
enum TypeDto {
    Native(String),
    List(Box<TypeDto>, bool),
    Set(Box<TypeDto>, bool),
    Map(Box<TypeDto>, Box<TypeDto>, bool),
    Tuple(Vec<TypeDto>),
    Udt {
        keyspace: String,
        name: String,
        fields: Vec<(String, TypeDto)>,
        frozen: bool,
    },
    Vector(Box<TypeDto>, u32),
    Custom(String),
}

fn native_name(ty: &CqlType) -> Option<&'static str> {
    use CqlType::*;
    Some(match ty {
        Ascii => "ascii",
        Bigint => "bigint",
        Blob => "blob",
        Boolean => "boolean",
        Counter => "counter",
        Decimal => "decimal",
        Double => "double",
        Duration => "duration",
        Float => "float",
        Int => "int",
        Smallint => "smallint",
        Tinyint => "tinyint",
        Text => "text",
        Timestamp => "timestamp",
        Date => "date",
        Time => "time",
        Uuid => "uuid",
        Timeuuid => "timeuuid",
        Varint => "varint",
        Inet => "inet",
        Empty => "empty",
        _ => return None,
    })
}

fn native_from_name(name: &str) -> Option<CqlType> {
    use CqlType::*;
    Some(match name {
        "ascii" => Ascii,
        "bigint" => Bigint,
        "blob" => Blob,
        "boolean" => Boolean,
        "counter" => Counter,
        "decimal" => Decimal,
        "double" => Double,
        "duration" => Duration,
        "float" => Float,
        "int" => Int,
        "smallint" => Smallint,
        "tinyint" => Tinyint,
        "text" => Text,
        "timestamp" => Timestamp,
        "date" => Date,
        "time" => Time,
        "uuid" => Uuid,
        "timeuuid" => Timeuuid,
        "varint" => Varint,
        "inet" => Inet,
        "empty" => Empty,
        _ => return None,
    })
}

impl TypeDto {
    fn from_type(ty: &CqlType) -> TypeDto {
        if let Some(n) = native_name(ty) {
            return TypeDto::Native(n.to_string());
        }
        match ty {
            CqlType::List { elem, frozen } => {
                TypeDto::List(Box::new(Self::from_type(elem)), *frozen)
            }
            CqlType::Set { elem, frozen } => TypeDto::Set(Box::new(Self::from_type(elem)), *frozen),
            CqlType::Map { key, value, frozen } => TypeDto::Map(
                Box::new(Self::from_type(key)),
                Box::new(Self::from_type(value)),
                *frozen,
            ),
            CqlType::Tuple(ts) => TypeDto::Tuple(ts.iter().map(Self::from_type).collect()),
            CqlType::Udt { def, frozen } => TypeDto::Udt {
                keyspace: def.keyspace.clone(),
                name: def.name.clone(),
                fields: def
                    .fields
                    .iter()
                    .map(|(n, t)| (n.clone(), Self::from_type(t)))
                    .collect(),
                frozen: *frozen,
            },
            CqlType::Vector { elem, dimension } => {
                TypeDto::Vector(Box::new(Self::from_type(elem)), *dimension)
            }
            CqlType::Custom(c) => TypeDto::Custom(c.clone()),
            _ => unreachable!("native types handled above"),
        }
    }

    fn into_type(self) -> CqlType {
        match self {
            TypeDto::Native(n) => native_from_name(&n).unwrap_or(CqlType::Custom(n)),
            TypeDto::List(e, frozen) => CqlType::List {
                elem: Box::new(e.into_type()),
                frozen,
            },
            TypeDto::Set(e, frozen) => CqlType::Set {
                elem: Box::new(e.into_type()),
                frozen,
            },
            TypeDto::Map(k, v, frozen) => CqlType::Map {
                key: Box::new(k.into_type()),
                value: Box::new(v.into_type()),
                frozen,
            },
            TypeDto::Tuple(ts) => CqlType::Tuple(ts.into_iter().map(TypeDto::into_type).collect()),
            TypeDto::Udt {
                keyspace,
                name,
                fields,
                frozen,
            } => CqlType::Udt {
                def: Arc::new(UdtDef {
                    keyspace,
                    name,
                    fields: fields
                        .into_iter()
                        .map(|(n, t)| (n, t.into_type()))
                        .collect(),
                }),
                frozen,
            },
            TypeDto::Vector(e, d) => CqlType::Vector {
                elem: Box::new(e.into_type()),
                dimension: d,
            },
            TypeDto::Custom(c) => CqlType::Custom(c),
        }
    }
}

fn kind_from_str(s: &str) -> ColumnKind {
    match s {
        "partition_key" => ColumnKind::PartitionKey,
        "clustering" => ColumnKind::Clustering,
        "static" => ColumnKind::Static,
        _ => ColumnKind::Regular,
    }
}

impl UdtDto {
    fn from_def(u: &UdtDef) -> UdtDto {
        UdtDto {
            name: u.name.clone(),
            fields: u
                .fields
                .iter()
                .map(|(n, t)| (n.clone(), TypeDto::from_type(t)))
                .collect(),
        }
    }

    fn into_def(self, keyspace: &str) -> UdtDef {
        UdtDef {
            keyspace: keyspace.to_string(),
            name: self.name,
            fields: self
                .fields
                .into_iter()
                .map(|(n, t)| (n, t.into_type()))
                .collect(),
        }
    }
}

impl KeyspaceDto {
    fn from_def(ks: &KeyspaceDef) -> KeyspaceDto {
        KeyspaceDto {
            name: ks.name.clone(),
            replication: ks.replication.clone(),
            durable_writes: ks.durable_writes,
            types: ks.types.values().map(|u| UdtDto::from_def(u)).collect(),
            tables: ks.tables.values().map(|t| TableDto::from_def(t)).collect(),
        }
    }

    fn into_def(self) -> KeyspaceDef {
        let name = self.name;
        KeyspaceDef {
            types: self
                .types
                .into_iter()
                .map(|u| (u.name.clone(), Arc::new(u.into_def(&name))))
                .collect(),
            tables: self
                .tables
                .into_iter()
                .map(|t| (t.name.clone(), Arc::new(t.into_def(&name))))
                .collect(),
            name,
            replication: self.replication,
            durable_writes: self.durable_writes,
            is_system: false,
        }
    }
}

impl TableDto {
    fn from_def(t: &TableDef) -> TableDto {
        let p = &t.params;
        TableDto {
            name: t.name.clone(),
            id: t.id,
            columns: t
                .columns
                .iter()
                .map(|c| ColumnDto {
                    name: c.name.clone(),
                    ty: TypeDto::from_type(&c.ty),
                    kind: c.kind.as_str().to_string(),
                    position: c.position,
                    desc: c.order == Order::Desc,
                    id: c.id,
                })
                .collect(),
            params: ParamsDto {
                additional_write_policy: p.additional_write_policy.clone(),
                bloom_filter_fp_chance: p.bloom_filter_fp_chance,
                caching: p.caching.clone(),
                cdc: p.cdc,
                comment: p.comment.clone(),
                compaction: p.compaction.clone(),
                compression: p.compression.clone(),
                crc_check_chance: p.crc_check_chance,
                default_time_to_live: p.default_time_to_live,
                extensions: p.extensions.clone(),
                gc_grace_seconds: p.gc_grace_seconds,
                max_index_interval: p.max_index_interval,
                memtable_flush_period_in_ms: p.memtable_flush_period_in_ms,
                min_index_interval: p.min_index_interval,
                read_repair: p.read_repair.clone(),
                speculative_retry: p.speculative_retry.clone(),
            },
            is_counter: t.is_counter,
            indexes: t
                .indexes
                .iter()
                .map(|i| IndexDto {
                    name: i.name.clone(),
                    kind: i.kind.clone(),
                    options: i.options.clone(),
                })
                .collect(),
            dropped_columns: t
                .dropped_columns
                .iter()
                .map(|(n, (ty, ts))| (n.clone(), TypeDto::from_type(ty), *ts))
                .collect(),
            next_column_id: t.next_column_id,
        }
    }

    fn into_def(self, keyspace: &str) -> TableDef {
        let mut columns: Vec<ColumnDef> = self
            .columns
            .into_iter()
            .map(|c| ColumnDef {
                name: c.name,
                ty: c.ty.into_type(),
                kind: kind_from_str(&c.kind),
                position: c.position,
                order: if c.desc { Order::Desc } else { Order::Asc },
                id: c.id,
            })
            .collect();
        TableDef::sort_columns(&mut columns);
        let partition_key_len = columns
            .iter()
            .filter(|c| c.kind == ColumnKind::PartitionKey)
            .count();
        let clustering_len = columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Clustering)
            .count();
        let p = self.params;
        TableDef {
            keyspace: keyspace.to_string(),
            name: self.name,
            id: self.id,
            columns,
            partition_key_len,
            clustering_len,
            params: TableParams {
                additional_write_policy: p.additional_write_policy,
                bloom_filter_fp_chance: p.bloom_filter_fp_chance,
                caching: p.caching,
                cdc: p.cdc,
                comment: p.comment,
                compaction: p.compaction,
                compression: p.compression,
                crc_check_chance: p.crc_check_chance,
                default_time_to_live: p.default_time_to_live,
                extensions: p.extensions,
                gc_grace_seconds: p.gc_grace_seconds,
                max_index_interval: p.max_index_interval,
                memtable_flush_period_in_ms: p.memtable_flush_period_in_ms,
                min_index_interval: p.min_index_interval,
                read_repair: p.read_repair,
                speculative_retry: p.speculative_retry,
            },
            is_counter: self.is_counter,
            indexes: self
                .indexes
                .into_iter()
                .map(|i| IndexDef {
                    name: i.name,
                    kind: i.kind,
                    options: i.options,
                })
                .collect(),
            dropped_columns: self
                .dropped_columns
                .into_iter()
                .map(|(n, t, ts)| (n, (t.into_type(), ts)))
                .collect(),
            next_column_id: self.next_column_id,
            source: TableSource::Stored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> KeyspaceDef {
        let udt = Arc::new(UdtDef {
            keyspace: "ks".into(),
            name: "addr".into(),
            fields: vec![
                ("street".into(), CqlType::Text),
                ("zip".into(), CqlType::Int),
            ],
        });
        let mut columns = vec![
            ColumnDef {
                name: "k".into(),
                ty: CqlType::Int,
                kind: ColumnKind::PartitionKey,
                position: 0,
                order: Order::Asc,
                id: 0,
            },
            ColumnDef {
                name: "c".into(),
                ty: CqlType::Text,
                kind: ColumnKind::Clustering,
                position: 0,
                order: Order::Desc,
                id: 1,
            },
            ColumnDef {
                name: "m".into(),
                ty: CqlType::Map {
                    key: Box::new(CqlType::Text),
                    value: Box::new(CqlType::Udt {
                        def: udt.clone(),
                        frozen: true,
                    }),
                    frozen: false,
                },
                kind: ColumnKind::Regular,
                position: -1,
                order: Order::Asc,
                id: 2,
            },
        ];
        TableDef::sort_columns(&mut columns);
        let table = TableDef {
            keyspace: "ks".into(),
            name: "t".into(),
            id: Uuid::new_v4(),
            columns,
            partition_key_len: 1,
            clustering_len: 1,
            params: TableParams::default(),
            is_counter: false,
            indexes: vec![],
            dropped_columns: BTreeMap::new(),
            next_column_id: 3,
            source: TableSource::Stored,
        };
        KeyspaceDef {
            name: "ks".into(),
            replication: [
                (
                    "class".to_string(),
                    "org.apache.cassandra.locator.SimpleStrategy".to_string(),
                ),
                ("replication_factor".to_string(), "1".to_string()),
            ]
            .into_iter()
            .collect(),
            durable_writes: true,
            tables: [("t".to_string(), Arc::new(table))].into_iter().collect(),
            types: [("addr".to_string(), udt)].into_iter().collect(),
            is_system: false,
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = SchemaStore::new(dir.path());
        assert_eq!(store.load_state().unwrap(), SchemaState::default());
        let ks = sample();
        let mut state = SchemaState::from_keyspaces(std::iter::once(&ks)).apply_local(
            std::iter::once(&KeyspaceDef {
                tables: BTreeMap::new(),
                ..ks.clone()
            }),
            42,
        );
        // A tombstone and a live table whose keyspace is gone both survive a round trip.
        state.tables.insert(
            ("gone".into(), "orphan".into()),
            Entry::Live {
                ts: 7,
                def: Arc::new(TableDef {
                    keyspace: "gone".into(),
                    name: "orphan".into(),
                    ..(*ks.tables["t"]).clone()
                }),
            },
        );
        store.save_state(&state).unwrap();
        let loaded = store.load_state().unwrap();
        assert_eq!(loaded, state);
        assert!(matches!(
            loaded.tables[&("ks".to_string(), "t".to_string())],
            Entry::Dead { ts: 42 }
        ));
        let ks_only = loaded.materialize();
        assert_eq!(
            schema_digest(ks_only.iter()),
            schema_digest(state.materialize().iter())
        );
    }

    /// A file written before history existed (format 1) loads with every object live at
    /// timestamp 0.
    #[test]
    fn reads_format_1() {
        let dir = tempfile::tempdir().unwrap();
        let ks = sample();
        let payload = serde_json::to_vec(&SchemaDto {
            keyspaces: vec![KeyspaceDto::from_def(&ks)],
        })
        .unwrap();
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        fs::write(dir.path().join("schema.db"), &out).unwrap();
        let state = SchemaStore::new(dir.path()).load_state().unwrap();
        assert_eq!(state.materialize(), vec![ks]);
        assert!(state.tables.values().all(|e| e.ts() == 0));
    }

    #[test]
    fn corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = SchemaStore::new(dir.path());
        store
            .save_state(&SchemaState::from_keyspaces(std::iter::once(&sample())))
            .unwrap();
        let path = dir.path().join("schema.db");
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 5] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        let err = store.load_state().unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
    }
}
