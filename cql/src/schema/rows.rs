//! The rows of system_schema.* generated from a schema snapshot.
//!
//! Values are exactly those Cassandra 4.0 writes (`schema/SchemaKeyspace.java`), since
//! drivers rebuild their metadata, and cqlsh its DESCRIBE fallbacks, from them. Cells are
//! in CQL wire format, in the column order of the system_schema table's definition
//! ([`super::system`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::describe::cql_type_name;
use super::system::{system_keyspaces_shared, system_schema_table};
use super::{KeyspaceDef, Schema, TableDef};

/// A row of cells, `None` being null.
pub type Row = Vec<Option<Bytes>>;

/// Every row of `system_schema.<table>` for the whole schema, the built-in keyspaces
/// included (those missing from `schema` are taken from [`super::system`]), sorted by
/// primary key with text compared bytewise. Unknown tables give no rows.
pub fn system_schema_rows(schema: &Schema, table: &str) -> Vec<Row> {
    let Some(def) = system_schema_table(table) else {
        return Vec::new();
    };
    let mut keyspaces: BTreeMap<&str, &Arc<KeyspaceDef>> = BTreeMap::new();
    for ks in system_keyspaces_shared()
        .iter()
        .chain(schema.keyspaces.values())
    {
        keyspaces.insert(ks.name.as_str(), ks);
    }
    let mut rows: Vec<Vec<(&'static str, Option<Bytes>)>> = Vec::new();
    for ks in keyspaces.values() {
        match table {
            "keyspaces" => rows.push(keyspace_row(ks)),
            "tables" => rows.extend(ks.tables.values().map(|t| table_row(t))),
            "columns" => {
                for t in ks.tables.values() {
                    let mut cols: Vec<_> = t.columns.iter().collect();
                    cols.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
                    rows.extend(cols.into_iter().map(|c| {
                        vec![
                            ("keyspace_name", text(&t.keyspace)),
                            ("table_name", text(&t.name)),
                            ("column_name", text(&c.name)),
                            ("clustering_order", text(c.clustering_order_str())),
                            (
                                "column_name_bytes",
                                Some(Bytes::copy_from_slice(c.name.as_bytes())),
                            ),
                            ("kind", text(c.kind.as_str())),
                            ("position", int(c.position)),
                            ("type", text(&cql_type_name(&c.ty))),
                        ]
                    }));
                }
            }
            "dropped_columns" => {
                for t in ks.tables.values() {
                    for (name, (ty, micros)) in &t.dropped_columns {
                        rows.push(vec![
                            ("keyspace_name", text(&t.keyspace)),
                            ("table_name", text(&t.name)),
                            ("column_name", text(name)),
                            // A timestamp: milliseconds, from the drop time in microseconds.
                            ("dropped_time", bigint(micros.div_euclid(1000))),
                            // The model keeps no kind for dropped columns; static ones are rare.
                            ("kind", text("regular")),
                            ("type", text(&cql_type_name(ty))),
                        ]);
                    }
                }
            }
            "indexes" => {
                for t in ks.tables.values() {
                    let mut indexes: Vec<_> = t.indexes.iter().collect();
                    indexes.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
                    rows.extend(indexes.into_iter().map(|i| {
                        vec![
                            ("keyspace_name", text(&t.keyspace)),
                            ("table_name", text(&t.name)),
                            ("index_name", text(&i.name)),
                            ("kind", text(&i.kind)),
                            ("options", text_map(i.options.iter())),
                        ]
                    }));
                }
            }
            "types" => {
                for udt in ks.types.values() {
                    rows.push(vec![
                        ("keyspace_name", text(&ks.name)),
                        ("type_name", text(&udt.name)),
                        (
                            "field_names",
                            text_list(udt.fields.iter().map(|(n, _)| n.clone())),
                        ),
                        (
                            "field_types",
                            text_list(udt.fields.iter().map(|(_, t)| cql_type_name(t))),
                        ),
                    ]);
                }
            }
            // Shoal has no triggers, views, functions or aggregates.
            _ => {}
        }
    }
    rows.into_iter().map(|cells| project(&def, cells)).collect()
}

/// Orders named cells by the table's columns; columns not given are null.
fn project(def: &TableDef, cells: Vec<(&'static str, Option<Bytes>)>) -> Row {
    let mut cells: BTreeMap<&str, Option<Bytes>> = cells.into_iter().collect();
    def.columns
        .iter()
        .map(|c| cells.remove(c.name.as_str()).flatten())
        .collect()
}

fn keyspace_row(ks: &KeyspaceDef) -> Vec<(&'static str, Option<Bytes>)> {
    vec![
        ("keyspace_name", text(&ks.name)),
        ("durable_writes", boolean(ks.durable_writes)),
        ("replication", text_map(ks.replication.iter())),
    ]
}

fn table_row(t: &TableDef) -> Vec<(&'static str, Option<Bytes>)> {
    let p = &t.params;
    vec![
        ("keyspace_name", text(&t.keyspace)),
        ("table_name", text(&t.name)),
        ("additional_write_policy", text(&p.additional_write_policy)),
        ("bloom_filter_fp_chance", double(p.bloom_filter_fp_chance)),
        ("caching", text_map(p.caching.iter())),
        // Cassandra writes `cdc` only when CDC is enabled on the node (cdc_enabled, off by
        // default), so drivers see null.
        ("cdc", None),
        ("comment", text(&p.comment)),
        ("compaction", text_map(p.compaction.iter())),
        ("compression", text_map(p.compression.iter())),
        ("crc_check_chance", double(p.crc_check_chance)),
        // No longer used; written as 0.0 "for drivers' sake".
        ("dclocal_read_repair_chance", double(0.0)),
        ("default_time_to_live", int(p.default_time_to_live)),
        (
            "extensions",
            map(p
                .extensions
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_slice()))),
        ),
        ("flags", text_set(t.flags().into_iter().map(str::to_string))),
        ("gc_grace_seconds", int(p.gc_grace_seconds)),
        ("id", Some(Bytes::copy_from_slice(t.id.as_bytes()))),
        ("max_index_interval", int(p.max_index_interval)),
        (
            "memtable_flush_period_in_ms",
            int(p.memtable_flush_period_in_ms),
        ),
        ("min_index_interval", int(p.min_index_interval)),
        ("read_repair", text(&p.read_repair)),
        ("read_repair_chance", double(0.0)),
        ("speculative_retry", text(&p.speculative_retry)),
    ]
}

fn text(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

fn int(v: i32) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(&v.to_be_bytes()))
}

fn bigint(v: i64) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(&v.to_be_bytes()))
}

fn double(v: f64) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(&v.to_be_bytes()))
}

fn boolean(v: bool) -> Option<Bytes> {
    Some(Bytes::from_static(if v { &[1] } else { &[0] }))
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

/// A frozen list of text, in the order given.
fn text_list(items: impl Iterator<Item = String>) -> Option<Bytes> {
    let items: Vec<String> = items.collect();
    let mut out = (items.len() as i32).to_be_bytes().to_vec();
    for s in &items {
        put_bytes(&mut out, s.as_bytes());
    }
    Some(Bytes::from(out))
}

/// A frozen set of text: elements sorted bytewise (UTF8Type order), duplicates dropped.
fn text_set(items: impl Iterator<Item = String>) -> Option<Bytes> {
    let mut items: Vec<String> = items.collect();
    items.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    items.dedup();
    text_list(items.into_iter())
}

fn text_map<'a>(entries: impl Iterator<Item = (&'a String, &'a String)>) -> Option<Bytes> {
    map(entries.map(|(k, v)| (k.as_bytes(), v.as_bytes())))
}

/// A frozen map with text keys, sorted bytewise as Cassandra serializes maps.
fn map<'a>(entries: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Option<Bytes> {
    let mut entries: Vec<_> = entries.collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = (entries.len() as i32).to_be_bytes().to_vec();
    for (k, v) in entries {
        put_bytes(&mut out, k);
        put_bytes(&mut out, v);
    }
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::ast::Order;
    use crate::schema::describe::java_double;
    use crate::schema::{ColumnDef, ColumnKind, IndexDef, TableParams, TableSource};
    use crate::types::{CqlType, UdtDef};

    fn int_at(b: &[u8], at: usize) -> usize {
        i32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
    }

    /// The elements of a serialized collection (map entries come flattened: k, v, k, v).
    fn elements(b: &[u8], per_entry: usize) -> Vec<&[u8]> {
        let n = int_at(b, 0) * per_entry;
        let mut at = 4;
        let mut out = Vec::new();
        for _ in 0..n {
            let len = int_at(b, at);
            out.push(&b[at + 4..at + 4 + len]);
            at += 4 + len;
        }
        assert_eq!(at, b.len(), "trailing bytes");
        out
    }

    fn utf8(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    fn hex(b: &[u8]) -> String {
        format!(
            "0x{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        )
    }

    /// Renders a cell the way the captured reference file does.
    fn render(ty: &CqlType, cell: &Option<Bytes>) -> String {
        let Some(b) = cell else {
            return "null".into();
        };
        match ty {
            CqlType::Text => utf8(b),
            CqlType::Boolean => (b[..] == [1]).to_string(),
            CqlType::Int => i32::from_be_bytes(b[..].try_into().unwrap()).to_string(),
            CqlType::Double => java_double(f64::from_be_bytes(b[..].try_into().unwrap())),
            CqlType::Uuid => uuid::Uuid::from_slice(b).unwrap().to_string(),
            CqlType::Blob => hex(b),
            CqlType::Timestamp => i64::from_be_bytes(b[..].try_into().unwrap()).to_string(),
            CqlType::List { .. } | CqlType::Set { .. } => format!(
                "[{}]",
                elements(b, 1)
                    .into_iter()
                    .map(utf8)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            CqlType::Map { value, .. } => {
                let e = elements(b, 2);
                let entries: Vec<String> = e
                    .chunks(2)
                    .map(|kv| {
                        let v = if **value == CqlType::Blob {
                            hex(kv[1])
                        } else {
                            utf8(kv[1])
                        };
                        format!("{}: {v}", utf8(kv[0]))
                    })
                    .collect();
                format!("{{{}}}", entries.join(", "))
            }
            other => panic!("unexpected type {other:?}"),
        }
    }

    fn render_rows(schema: &Schema, table: &str) -> Vec<String> {
        let def = system_schema_table(table).unwrap();
        system_schema_rows(schema, table)
            .iter()
            .map(|row| {
                assert_eq!(row.len(), def.columns.len());
                let cells: Vec<String> = def
                    .columns
                    .iter()
                    .zip(row)
                    .map(|(c, cell)| render(&c.ty, cell))
                    .collect();
                format!("{table}|{}", cells.join("|"))
            })
            .collect()
    }

    #[test]
    fn built_in_keyspaces_match_cassandra() {
        let reference = include_str!("testdata/system_schema_rows.txt");
        let schema = Schema::default();
        for table in [
            "keyspaces",
            "tables",
            "columns",
            "indexes",
            "types",
            "triggers",
            "views",
        ] {
            let expected: Vec<&str> = reference
                .lines()
                .filter(|l| l.starts_with(&format!("{table}|")))
                .collect();
            let actual = render_rows(&schema, table);
            for (a, e) in actual.iter().zip(&expected) {
                assert_eq!(a, e);
            }
            assert_eq!(actual.len(), expected.len(), "{table}");
        }
        // functions/aggregates: empty on both sides.
        assert!(system_schema_rows(&schema, "functions").is_empty());
        assert!(system_schema_rows(&schema, "nope").is_empty());
    }

    #[test]
    fn dropped_columns_of_system_local() {
        let rows = render_rows(&Schema::default(), "dropped_columns");
        // Cassandra: Long.MAX_VALUE microseconds, stored as milliseconds.
        assert_eq!(
            rows,
            ["dropped_columns|system|local|thrift_version|9223372036854775|regular|text"]
        );
    }

    fn col(name: &str, ty: CqlType, kind: ColumnKind, position: i32, order: Order) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            ty,
            kind,
            position,
            order,
            id: 0,
        }
    }

    fn sample() -> Schema {
        let addr = Arc::new(UdtDef {
            keyspace: "ks".into(),
            name: "addr".into(),
            fields: vec![
                ("street".into(), CqlType::Text),
                (
                    "tags".into(),
                    CqlType::List {
                        elem: Box::new(CqlType::Int),
                        frozen: true,
                    },
                ),
            ],
        });
        let mut columns = vec![
            col("v", CqlType::Text, ColumnKind::Regular, -1, Order::Asc),
            col("c", CqlType::Int, ColumnKind::Clustering, 0, Order::Desc),
            col("k", CqlType::Int, ColumnKind::PartitionKey, 0, Order::Asc),
            col(
                "a",
                CqlType::Udt {
                    def: addr.clone(),
                    frozen: true,
                },
                ColumnKind::Static,
                -1,
                Order::Asc,
            ),
        ];
        TableDef::sort_columns(&mut columns);
        let mut params = TableParams::default();
        params.extensions.insert("x".into(), vec![1, 2]);
        let t = TableDef {
            keyspace: "ks".into(),
            name: "t".into(),
            id: uuid::Uuid::from_u128(1),
            columns,
            partition_key_len: 1,
            clustering_len: 1,
            params,
            is_counter: true,
            indexes: vec![IndexDef {
                name: "t_v_idx".into(),
                kind: "COMPOSITES".into(),
                options: BTreeMap::from([("target".to_string(), "v".to_string())]),
            }],
            dropped_columns: BTreeMap::from([("old".to_string(), (CqlType::Bigint, 1_500_999))]),
            next_column_id: 5,
            source: TableSource::Stored,
        };
        let ks = KeyspaceDef {
            name: "ks".into(),
            replication: BTreeMap::from([
                (
                    "class".to_string(),
                    "org.apache.cassandra.locator.NetworkTopologyStrategy".to_string(),
                ),
                ("dc1".to_string(), "3".to_string()),
            ]),
            durable_writes: false,
            tables: BTreeMap::from([("t".to_string(), Arc::new(t))]),
            types: BTreeMap::from([("addr".to_string(), addr)]),
            is_system: false,
        };
        Schema {
            keyspaces: BTreeMap::from([("ks".to_string(), Arc::new(ks))]),
            version: uuid::Uuid::nil(),
            ..Default::default()
        }
    }

    fn of_ks(rows: Vec<String>) -> Vec<String> {
        rows.into_iter().filter(|r| r.contains("|ks|")).collect()
    }

    #[test]
    fn user_schema_rows() {
        let schema = sample();
        assert_eq!(
            of_ks(render_rows(&schema, "keyspaces")),
            [
                "keyspaces|ks|false|{class: org.apache.cassandra.locator.NetworkTopologyStrategy, dc1: 3}"
            ]
        );
        // User keyspaces sort among the built-in ones bytewise.
        let names: Vec<String> = render_rows(&schema, "keyspaces")
            .iter()
            .map(|r| r.split('|').nth(1).unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "ks",
                "system",
                "system_auth",
                "system_distributed",
                "system_schema",
                "system_traces"
            ]
        );
        assert_eq!(
            of_ks(render_rows(&schema, "tables")),
            [
                "tables|ks|t|99p|0.01|{keys: ALL, rows_per_partition: NONE}|null||\
              {class: org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy, max_threshold: 32, min_threshold: 4}|\
              {chunk_length_in_kb: 16, class: org.apache.cassandra.io.compress.LZ4Compressor}|1.0|0.0|0|{x: 0x0102}|\
              [compound, counter]|864000|00000000-0000-0000-0000-000000000001|2048|0|128|BLOCKING|0.0|99p"
            ]
        );
        assert_eq!(
            of_ks(render_rows(&schema, "columns")),
            [
                "columns|ks|t|a|none|0x61|static|-1|frozen<addr>",
                "columns|ks|t|c|desc|0x63|clustering|0|int",
                "columns|ks|t|k|none|0x6b|partition_key|0|int",
                "columns|ks|t|v|none|0x76|regular|-1|text",
            ]
        );
        assert_eq!(
            of_ks(render_rows(&schema, "dropped_columns")),
            ["dropped_columns|ks|t|old|1500|regular|bigint"]
        );
        assert_eq!(
            of_ks(render_rows(&schema, "indexes")),
            ["indexes|ks|t|t_v_idx|COMPOSITES|{target: v}"]
        );
        assert_eq!(
            of_ks(render_rows(&schema, "types")),
            ["types|ks|addr|[street, tags]|[text, frozen<list<int>>]"]
        );
    }
}
