//! Response bodies (v4/v5 spec §4.2), type `[option]`s (§4.2.5.2) and ERROR bodies (§9
//! of v4, §8 of the final v5 text), for protocol versions 3, 4 and 5.

use bytes::BytesMut;

use super::primitives::*;
use super::{ColumnSpec, Event, Opcode, Response, ResultBody, RowsMetadata, SchemaChange};
use crate::error::{CqlError, WriteType};
use crate::types::CqlType;

/// Rows metadata flags (§4.2.5.2).
pub mod rows_flags {
    pub const GLOBAL_TABLES_SPEC: i32 = 0x0001;
    pub const HAS_MORE_PAGES: i32 = 0x0002;
    pub const NO_METADATA: i32 = 0x0004;
    /// v5 only.
    pub const METADATA_CHANGED: i32 = 0x0008;
}

/// RESULT kinds.
pub mod result_kind {
    pub const VOID: i32 = 0x0001;
    pub const ROWS: i32 = 0x0002;
    pub const SET_KEYSPACE: i32 = 0x0003;
    pub const PREPARED: i32 = 0x0004;
    pub const SCHEMA_CHANGE: i32 = 0x0005;
}

/// Writes the body of `response` for protocol `version`, returning its opcode.
pub fn encode_response(version: u8, response: &Response, out: &mut BytesMut) -> Opcode {
    match response {
        Response::Error(e) => {
            encode_error(version, e, out);
            Opcode::Error
        }
        Response::Ready => Opcode::Ready,
        Response::Authenticate(class) => {
            write_string(out, class);
            Opcode::Authenticate
        }
        Response::Supported(options) => {
            write_string_multimap(out, options);
            Opcode::Supported
        }
        Response::Result(body) => {
            encode_result(version, body, out);
            Opcode::Result
        }
        Response::Event(event) => {
            encode_event(event, out);
            Opcode::Event
        }
        Response::AuthChallenge(token) => {
            write_bytes(out, token.as_deref());
            Opcode::AuthChallenge
        }
        Response::AuthSuccess(token) => {
            write_bytes(out, token.as_deref());
            Opcode::AuthSuccess
        }
    }
}

/// An ERROR body. Codes a version doesn't know are sent as the closest older code, as
/// Cassandra's `ErrorMessage.encode` does, so that old drivers can still decode them.
pub fn encode_error(version: u8, error: &CqlError, out: &mut BytesMut) {
    let downgraded;
    let error = match downgrade_error(version, error) {
        Some(e) => {
            downgraded = e;
            &downgraded
        }
        None => error,
    };
    write_int(out, error.code());
    write_string(out, &error.to_string());
    match error {
        CqlError::Unavailable {
            consistency,
            required,
            alive,
            ..
        } => {
            write_consistency(out, *consistency);
            write_int(out, *required);
            write_int(out, *alive);
        }
        CqlError::WriteTimeout {
            consistency,
            received,
            block_for,
            write_type,
            contentions,
            ..
        } => {
            write_consistency(out, *consistency);
            write_int(out, *received);
            write_int(out, *block_for);
            write_string(out, write_type.name());
            // v5 added <contentions> only for CAS; v4 readers would misparse a trailer.
            if version >= 5 && *write_type == WriteType::Cas {
                write_short(out, contentions.unwrap_or(0));
            }
        }
        CqlError::ReadTimeout {
            consistency,
            received,
            block_for,
            data_present,
            ..
        } => {
            write_consistency(out, *consistency);
            write_int(out, *received);
            write_int(out, *block_for);
            write_byte(out, *data_present as u8);
        }
        CqlError::ReadFailure {
            consistency,
            received,
            block_for,
            failures,
            data_present,
            ..
        } => {
            write_consistency(out, *consistency);
            write_int(out, *received);
            write_int(out, *block_for);
            write_failures(version, failures, out);
            write_byte(out, *data_present as u8);
        }
        CqlError::FunctionFailure {
            keyspace,
            function,
            arg_types,
            ..
        } => {
            write_string(out, keyspace);
            write_string(out, function);
            write_string_list(out, arg_types);
        }
        CqlError::WriteFailure {
            consistency,
            received,
            block_for,
            failures,
            write_type,
            ..
        } => {
            write_consistency(out, *consistency);
            write_int(out, *received);
            write_int(out, *block_for);
            write_failures(version, failures, out);
            write_string(out, write_type.name());
        }
        CqlError::CasWriteUnknown {
            consistency,
            received,
            block_for,
            ..
        } => {
            write_consistency(out, *consistency);
            write_int(out, *received);
            write_int(out, *block_for);
        }
        CqlError::AlreadyExists {
            keyspace, table, ..
        } => {
            write_string(out, keyspace);
            write_string(out, table);
        }
        CqlError::Unprepared { id, .. } => write_short_bytes(out, id),
        _ => {}
    }
}

/// v4 sends `<numfailures>`; v5 replaced it with the reason map `[int] n` ×
/// (`[inetaddr]`, `[short]`).
fn write_failures(version: u8, failures: &[(std::net::IpAddr, u16)], out: &mut BytesMut) {
    write_int(out, failures.len() as i32);
    if version >= 5 {
        for (addr, code) in failures {
            write_inetaddr(out, addr);
            write_short(out, *code);
        }
    }
}

/// Errors that a protocol version has no code for, mapped as Cassandra does: before v5
/// CAS_WRITE_UNKNOWN is a CAS write timeout; before v4 read/write failures are timeouts
/// and function failures are invalid requests.
fn downgrade_error(version: u8, error: &CqlError) -> Option<CqlError> {
    match error {
        CqlError::CasWriteUnknown {
            message,
            consistency,
            received,
            block_for,
        } if version < 5 => Some(CqlError::WriteTimeout {
            message: message.clone(),
            consistency: *consistency,
            received: *received,
            block_for: *block_for,
            write_type: WriteType::Cas,
            contentions: None,
        }),
        CqlError::ReadFailure {
            message,
            consistency,
            received,
            block_for,
            data_present,
            ..
        } if version < 4 => Some(CqlError::ReadTimeout {
            message: message.clone(),
            consistency: *consistency,
            received: *received,
            block_for: *block_for,
            data_present: *data_present,
        }),
        CqlError::WriteFailure {
            message,
            consistency,
            received,
            block_for,
            write_type,
            ..
        } if version < 4 => Some(CqlError::WriteTimeout {
            message: message.clone(),
            consistency: *consistency,
            received: *received,
            block_for: *block_for,
            write_type: *write_type,
            contentions: None,
        }),
        CqlError::FunctionFailure { message, .. } if version < 4 => {
            Some(CqlError::Invalid(message.clone()))
        }
        _ => None,
    }
}

fn encode_result(version: u8, body: &ResultBody, out: &mut BytesMut) {
    match body {
        ResultBody::Void => write_int(out, result_kind::VOID),
        ResultBody::Rows(rows) => {
            write_int(out, result_kind::ROWS);
            write_rows_metadata(version, &rows.metadata, out);
            write_int(out, rows.rows.len() as i32);
            for row in &rows.rows {
                for cell in row {
                    write_bytes(out, cell.as_deref());
                }
            }
        }
        ResultBody::SetKeyspace(ks) => {
            write_int(out, result_kind::SET_KEYSPACE);
            write_string(out, ks);
        }
        ResultBody::Prepared {
            id,
            result_metadata_id,
            bind_columns,
            pk_indexes,
            result,
        } => {
            write_int(out, result_kind::PREPARED);
            write_short_bytes(out, id);
            if version >= 5 {
                write_short_bytes(out, result_metadata_id);
            }
            write_prepared_metadata(version, bind_columns, pk_indexes, out);
            write_rows_metadata(version, result, out);
        }
        ResultBody::SchemaChange(change) => {
            write_int(out, result_kind::SCHEMA_CHANGE);
            write_schema_change(change, out);
        }
    }
}

/// The (keyspace, table) every column shares, if any: then the spec is sent once.
fn global_spec(columns: &[ColumnSpec]) -> Option<(&str, &str)> {
    let first = columns.first()?;
    columns
        .iter()
        .all(|c| c.keyspace == first.keyspace && c.table == first.table)
        .then_some((first.keyspace.as_str(), first.table.as_str()))
}

fn write_column_specs(version: u8, columns: &[ColumnSpec], global: bool, out: &mut BytesMut) {
    for c in columns {
        if !global {
            write_string(out, &c.keyspace);
            write_string(out, &c.table);
        }
        write_string(out, &c.name);
        write_type_option(version, &c.ty, out);
    }
}

/// `<metadata>` of Rows results and of the result part of Prepared results.
pub fn write_rows_metadata(version: u8, md: &RowsMetadata, out: &mut BytesMut) {
    let global = if md.no_metadata {
        None
    } else {
        global_spec(&md.columns)
    };
    let mut flags = 0;
    if global.is_some() {
        flags |= rows_flags::GLOBAL_TABLES_SPEC;
    }
    if md.paging_state.is_some() {
        flags |= rows_flags::HAS_MORE_PAGES;
    }
    if md.no_metadata {
        flags |= rows_flags::NO_METADATA;
    }
    let new_id = md.new_metadata_id.as_ref().filter(|_| version >= 5);
    if new_id.is_some() {
        flags |= rows_flags::METADATA_CHANGED;
    }
    write_int(out, flags);
    write_int(out, md.columns.len() as i32);
    if let Some(state) = &md.paging_state {
        write_bytes(out, Some(state));
    }
    if let Some(id) = new_id {
        write_short_bytes(out, id);
    }
    if md.no_metadata {
        return;
    }
    if let Some((ks, table)) = global {
        write_string(out, ks);
        write_string(out, table);
    }
    write_column_specs(version, &md.columns, global.is_some(), out);
}

/// Prepared `<metadata>`: bind markers, with partition-key indexes from v4 on.
fn write_prepared_metadata(
    version: u8,
    columns: &[ColumnSpec],
    pk_indexes: &[u16],
    out: &mut BytesMut,
) {
    let global = global_spec(columns);
    write_int(
        out,
        if global.is_some() {
            rows_flags::GLOBAL_TABLES_SPEC
        } else {
            0
        },
    );
    write_int(out, columns.len() as i32);
    if version >= 4 {
        write_int(out, pk_indexes.len() as i32);
        for i in pk_indexes {
            write_short(out, *i);
        }
    }
    if let Some((ks, table)) = global {
        write_string(out, ks);
        write_string(out, table);
    }
    write_column_specs(version, columns, global.is_some(), out);
}

fn write_schema_change(change: &SchemaChange, out: &mut BytesMut) {
    write_string(out, change.change);
    write_string(out, change.target);
    write_string(out, &change.keyspace);
    match change.target {
        "KEYSPACE" => {}
        "FUNCTION" | "AGGREGATE" => {
            write_string(out, &change.name);
            write_string_list(out, &change.arguments);
        }
        _ => write_string(out, &change.name),
    }
}

fn encode_event(event: &Event, out: &mut BytesMut) {
    match event {
        Event::TopologyChange { change, address } => {
            write_string(out, "TOPOLOGY_CHANGE");
            write_string(out, change);
            write_inet(out, address);
        }
        Event::StatusChange { change, address } => {
            write_string(out, "STATUS_CHANGE");
            write_string(out, change);
            write_inet(out, address);
        }
        Event::SchemaChange(change) => {
            write_string(out, "SCHEMA_CHANGE");
            write_schema_change(change, out);
        }
    }
}

/// A type `[option]` as `version` knows it: types newer than the version, and vectors
/// (which have no id in any version), go as Custom with their marshal class, as
/// Cassandra's `DataType.getId` does.
pub fn write_type_option(version: u8, ty: &CqlType, out: &mut BytesMut) {
    let id: u16 = match ty {
        CqlType::Ascii => 0x0001,
        CqlType::Bigint => 0x0002,
        CqlType::Blob => 0x0003,
        CqlType::Boolean => 0x0004,
        CqlType::Counter => 0x0005,
        CqlType::Decimal => 0x0006,
        CqlType::Double => 0x0007,
        CqlType::Float => 0x0008,
        CqlType::Int => 0x0009,
        CqlType::Timestamp => 0x000B,
        CqlType::Uuid => 0x000C,
        CqlType::Text => 0x000D,
        CqlType::Varint => 0x000E,
        CqlType::Timeuuid => 0x000F,
        CqlType::Inet => 0x0010,
        CqlType::Date if version >= 4 => 0x0011,
        CqlType::Time if version >= 4 => 0x0012,
        CqlType::Smallint if version >= 4 => 0x0013,
        CqlType::Tinyint if version >= 4 => 0x0014,
        CqlType::Duration if version >= 5 => 0x0015,
        CqlType::List { elem, .. } => {
            write_short(out, 0x0020);
            write_type_option(version, elem, out);
            return;
        }
        CqlType::Map { key, value, .. } => {
            write_short(out, 0x0021);
            write_type_option(version, key, out);
            write_type_option(version, value, out);
            return;
        }
        CqlType::Set { elem, .. } => {
            write_short(out, 0x0022);
            write_type_option(version, elem, out);
            return;
        }
        CqlType::Udt { def, .. } => {
            write_short(out, 0x0030);
            write_string(out, &def.keyspace);
            write_string(out, &def.name);
            write_short(out, def.fields.len() as u16);
            for (name, fty) in &def.fields {
                write_string(out, name);
                write_type_option(version, fty, out);
            }
            return;
        }
        CqlType::Tuple(elems) => {
            write_short(out, 0x0031);
            write_short(out, elems.len() as u16);
            for e in elems {
                write_type_option(version, e, out);
            }
            return;
        }
        CqlType::Custom(class) => {
            write_short(out, 0x0000);
            write_string(out, class);
            return;
        }
        // Date/Time/Smallint/Tinyint before v4, Duration before v5, Vector, Empty.
        _ => {
            write_short(out, 0x0000);
            write_string(out, &ty.marshal_class());
            return;
        }
    };
    write_short(out, id);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::error::Consistency;
    use crate::protocol::Rows;
    use crate::protocol::primitives::Reader;
    use crate::types::UdtDef;

    fn body(version: u8, r: &Response) -> (Opcode, Bytes) {
        let mut out = BytesMut::new();
        let op = encode_response(version, r, &mut out);
        (op, out.freeze())
    }

    fn opt(version: u8, ty: &CqlType) -> Vec<u8> {
        let mut out = BytesMut::new();
        write_type_option(version, ty, &mut out);
        out.to_vec()
    }

    fn custom(class: &str) -> Vec<u8> {
        let mut out = BytesMut::new();
        write_short(&mut out, 0);
        write_string(&mut out, class);
        out.to_vec()
    }

    fn col(ks: &str, table: &str, name: &str, ty: CqlType) -> ColumnSpec {
        ColumnSpec {
            keyspace: ks.into(),
            table: table.into(),
            name: name.into(),
            ty,
        }
    }

    #[test]
    fn simple_type_ids() {
        let cases = [
            (CqlType::Ascii, 0x01),
            (CqlType::Bigint, 0x02),
            (CqlType::Blob, 0x03),
            (CqlType::Boolean, 0x04),
            (CqlType::Counter, 0x05),
            (CqlType::Decimal, 0x06),
            (CqlType::Double, 0x07),
            (CqlType::Float, 0x08),
            (CqlType::Int, 0x09),
            (CqlType::Timestamp, 0x0B),
            (CqlType::Uuid, 0x0C),
            (CqlType::Text, 0x0D),
            (CqlType::Varint, 0x0E),
            (CqlType::Timeuuid, 0x0F),
            (CqlType::Inet, 0x10),
        ];
        for v in 3..=5 {
            for (ty, id) in &cases {
                assert_eq!(opt(v, ty), vec![0, *id], "{ty:?} v{v}");
            }
        }
        for v in 4..=5 {
            assert_eq!(opt(v, &CqlType::Date), vec![0, 0x11]);
            assert_eq!(opt(v, &CqlType::Time), vec![0, 0x12]);
            assert_eq!(opt(v, &CqlType::Smallint), vec![0, 0x13]);
            assert_eq!(opt(v, &CqlType::Tinyint), vec![0, 0x14]);
        }
        assert_eq!(opt(5, &CqlType::Duration), vec![0, 0x15]);
    }

    #[test]
    fn types_newer_than_the_version_are_custom() {
        let m = "org.apache.cassandra.db.marshal.";
        for v in [3, 4] {
            assert_eq!(
                opt(v, &CqlType::Duration),
                custom(&format!("{m}DurationType"))
            );
        }
        assert_eq!(
            opt(3, &CqlType::Date),
            custom(&format!("{m}SimpleDateType"))
        );
        assert_eq!(opt(3, &CqlType::Time), custom(&format!("{m}TimeType")));
        assert_eq!(opt(3, &CqlType::Smallint), custom(&format!("{m}ShortType")));
        assert_eq!(opt(3, &CqlType::Tinyint), custom(&format!("{m}ByteType")));
        let vector = CqlType::Vector {
            elem: Box::new(CqlType::Float),
            dimension: 3,
        };
        for v in 3..=5 {
            assert_eq!(
                opt(v, &vector),
                custom(
                    "org.apache.cassandra.db.marshal.VectorType(org.apache.cassandra.db.marshal.FloatType,3)"
                )
            );
        }
        assert_eq!(
            opt(4, &CqlType::Custom("com.example.Foo".into())),
            custom("com.example.Foo")
        );
        assert_eq!(opt(4, &CqlType::Empty), custom(&format!("{m}EmptyType")));
    }

    #[test]
    fn collection_udt_and_tuple_options() {
        let list = CqlType::List {
            elem: Box::new(CqlType::Int),
            frozen: true,
        };
        assert_eq!(opt(4, &list), vec![0, 0x20, 0, 0x09]);
        let set = CqlType::Set {
            elem: Box::new(CqlType::Text),
            frozen: false,
        };
        assert_eq!(opt(4, &set), vec![0, 0x22, 0, 0x0D]);
        let map = CqlType::Map {
            key: Box::new(CqlType::Text),
            value: Box::new(CqlType::Bigint),
            frozen: false,
        };
        assert_eq!(opt(4, &map), vec![0, 0x21, 0, 0x0D, 0, 0x02]);
        // Nested types follow the version rule too.
        let list_date = CqlType::List {
            elem: Box::new(CqlType::Date),
            frozen: false,
        };
        let mut expected = vec![0, 0x20];
        expected.extend(custom("org.apache.cassandra.db.marshal.SimpleDateType"));
        assert_eq!(opt(3, &list_date), expected);

        let tuple = CqlType::Tuple(vec![CqlType::Int, CqlType::Text]);
        assert_eq!(opt(4, &tuple), vec![0, 0x31, 0, 2, 0, 0x09, 0, 0x0D]);

        let udt = CqlType::Udt {
            def: Arc::new(UdtDef {
                keyspace: "ks".into(),
                name: "addr".into(),
                fields: vec![
                    ("street".into(), CqlType::Text),
                    ("no".into(), CqlType::Int),
                ],
            }),
            frozen: true,
        };
        let mut expected = vec![0, 0x30, 0, 2, b'k', b's', 0, 4];
        expected.extend(b"addr");
        expected.extend([0, 2, 0, 6]);
        expected.extend(b"street");
        expected.extend([0, 0x0D, 0, 2, b'n', b'o', 0, 0x09]);
        assert_eq!(opt(4, &udt), expected);
        assert_eq!(
            udt.marshal_class(),
            "org.apache.cassandra.db.marshal.FrozenType(org.apache.cassandra.db.marshal.UserType(ks,61646472,737472656574:org.apache.cassandra.db.marshal.UTF8Type,6e6f:org.apache.cassandra.db.marshal.Int32Type))"
        );
        assert_eq!(
            map.marshal_class(),
            "org.apache.cassandra.db.marshal.MapType(org.apache.cassandra.db.marshal.UTF8Type,org.apache.cassandra.db.marshal.LongType)"
        );
    }

    #[test]
    fn simple_responses() {
        assert_eq!(body(4, &Response::Ready), (Opcode::Ready, Bytes::new()));
        let (op, b) = body(
            4,
            &Response::Authenticate("org.apache.cassandra.auth.PasswordAuthenticator".into()),
        );
        assert_eq!(op, Opcode::Authenticate);
        assert_eq!(&b[..2], &[0, 47]);
        assert_eq!(&b[2..], b"org.apache.cassandra.auth.PasswordAuthenticator");

        let (op, b) = body(
            4,
            &Response::Supported(vec![
                ("CQL_VERSION".into(), vec!["3.4.7".into()]),
                ("COMPRESSION".into(), vec![]),
            ]),
        );
        assert_eq!(op, Opcode::Supported);
        let mut r = Reader::new(b);
        let mm = r.string_multimap().unwrap();
        assert_eq!(mm[0], ("CQL_VERSION".into(), vec!["3.4.7".into()]));
        assert_eq!(mm[1], ("COMPRESSION".into(), vec![]));

        let (op, b) = body(4, &Response::AuthSuccess(None));
        assert_eq!(
            (op, &b[..]),
            (Opcode::AuthSuccess, &[0xFF, 0xFF, 0xFF, 0xFF][..])
        );
        let (op, b) = body(4, &Response::AuthChallenge(Some(Bytes::from_static(b"c"))));
        assert_eq!(
            (op, &b[..]),
            (Opcode::AuthChallenge, &[0, 0, 0, 1, b'c'][..])
        );
    }

    #[test]
    fn void_set_keyspace_schema_change() {
        let (op, b) = body(4, &Response::Result(ResultBody::Void));
        assert_eq!((op, &b[..]), (Opcode::Result, &[0, 0, 0, 1][..]));
        let (_, b) = body(4, &Response::Result(ResultBody::SetKeyspace("ks".into())));
        assert_eq!(&b[..], &[0, 0, 0, 3, 0, 2, b'k', b's']);

        let sc = |target: &'static str, name: &str, args: Vec<String>| SchemaChange {
            change: "CREATED",
            target,
            keyspace: "ks".into(),
            name: name.into(),
            arguments: args,
        };
        let (_, b) = body(
            4,
            &Response::Result(ResultBody::SchemaChange(sc("KEYSPACE", "", vec![]))),
        );
        let mut r = Reader::new(b);
        assert_eq!(r.int().unwrap(), 5);
        assert_eq!(r.string().unwrap(), "CREATED");
        assert_eq!(r.string().unwrap(), "KEYSPACE");
        assert_eq!(r.string().unwrap(), "ks");
        assert!(r.is_empty());

        let (_, b) = body(
            4,
            &Response::Result(ResultBody::SchemaChange(sc("TABLE", "t", vec![]))),
        );
        let mut r = Reader::new(b.slice(4..));
        assert_eq!(r.string().unwrap(), "CREATED");
        assert_eq!(r.string().unwrap(), "TABLE");
        assert_eq!(r.string().unwrap(), "ks");
        assert_eq!(r.string().unwrap(), "t");
        assert!(r.is_empty());

        let (_, b) = body(
            4,
            &Response::Result(ResultBody::SchemaChange(sc(
                "FUNCTION",
                "f",
                vec!["int".into(), "text".into()],
            ))),
        );
        let mut r = Reader::new(b.slice(4..));
        r.string().unwrap();
        r.string().unwrap();
        r.string().unwrap();
        assert_eq!(r.string().unwrap(), "f");
        assert_eq!(r.string_list().unwrap(), vec!["int", "text"]);
        assert!(r.is_empty());
    }

    #[test]
    fn rows_with_global_spec_and_paging() {
        let rows = Rows {
            metadata: RowsMetadata {
                columns: vec![
                    col("system", "local", "key", CqlType::Text),
                    col("system", "local", "n", CqlType::Int),
                ],
                paging_state: Some(Bytes::from_static(b"PS")),
                no_metadata: false,
                new_metadata_id: None,
            },
            rows: vec![vec![Some(Bytes::from_static(b"local")), None]],
        };
        let (_, b) = body(4, &Response::Result(ResultBody::Rows(rows)));
        let mut expected = vec![0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2, b'P', b'S'];
        expected.extend([0, 6]);
        expected.extend(b"system");
        expected.extend([0, 5]);
        expected.extend(b"local");
        expected.extend([0, 3, b'k', b'e', b'y', 0, 0x0D, 0, 1, b'n', 0, 0x09]);
        expected.extend([0, 0, 0, 1, 0, 0, 0, 5]);
        expected.extend(b"local");
        expected.extend([0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(&b[..], &expected[..]);
    }

    #[test]
    fn rows_without_global_spec_no_metadata_and_metadata_changed() {
        let md = RowsMetadata {
            columns: vec![
                col("a", "t", "x", CqlType::Int),
                col("b", "t", "y", CqlType::Int),
            ],
            ..Default::default()
        };
        let mut out = BytesMut::new();
        write_rows_metadata(4, &md, &mut out);
        let mut r = Reader::new(out.freeze());
        assert_eq!(r.int().unwrap(), 0);
        assert_eq!(r.int().unwrap(), 2);
        for (ks, name) in [("a", "x"), ("b", "y")] {
            assert_eq!(r.string().unwrap(), ks);
            assert_eq!(r.string().unwrap(), "t");
            assert_eq!(r.string().unwrap(), name);
            assert_eq!(r.short().unwrap(), 0x09);
        }
        assert!(r.is_empty());

        let md = RowsMetadata {
            columns: vec![col("a", "t", "x", CqlType::Int)],
            paging_state: None,
            no_metadata: true,
            new_metadata_id: Some(Bytes::from_static(b"M")),
        };
        let mut out = BytesMut::new();
        write_rows_metadata(4, &md, &mut out);
        // v4 has no Metadata_changed: only No_metadata and the count.
        assert_eq!(&out[..], &[0, 0, 0, 4, 0, 0, 0, 1]);
        let mut out = BytesMut::new();
        write_rows_metadata(5, &md, &mut out);
        assert_eq!(&out[..], &[0, 0, 0, 0x0C, 0, 0, 0, 1, 0, 1, b'M']);

        // No columns at all: no global spec flag.
        let mut out = BytesMut::new();
        write_rows_metadata(4, &RowsMetadata::default(), &mut out);
        assert_eq!(&out[..], &[0, 0, 0, 0, 0, 0, 0, 0]);
    }

    fn prepared() -> ResultBody {
        ResultBody::Prepared {
            id: Bytes::from_static(b"ID"),
            result_metadata_id: Bytes::from_static(b"RM"),
            bind_columns: vec![
                col("ks", "t", "k", CqlType::Int),
                col("ks", "t", "c", CqlType::Text),
            ],
            pk_indexes: vec![0],
            result: RowsMetadata {
                columns: vec![col("ks", "t", "v", CqlType::Blob)],
                ..Default::default()
            },
        }
    }

    fn specs_tail() -> Vec<u8> {
        let mut v = vec![0, 2, b'k', b's', 0, 1, b't'];
        v.extend([0, 1, b'k', 0, 0x09, 0, 1, b'c', 0, 0x0D]);
        // Result metadata.
        v.extend([0, 0, 0, 1, 0, 0, 0, 1, 0, 2, b'k', b's', 0, 1, b't']);
        v.extend([0, 1, b'v', 0, 0x03]);
        v
    }

    #[test]
    fn prepared_v3_v4_v5() {
        let r = Response::Result(prepared());
        let (_, b) = body(4, &r);
        let mut expected = vec![0, 0, 0, 4, 0, 2, b'I', b'D'];
        expected.extend([0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0]);
        expected.extend(specs_tail());
        assert_eq!(&b[..], &expected[..]);

        let (_, b) = body(5, &r);
        let mut expected = vec![0, 0, 0, 4, 0, 2, b'I', b'D', 0, 2, b'R', b'M'];
        expected.extend([0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0]);
        expected.extend(specs_tail());
        assert_eq!(&b[..], &expected[..]);

        // v3 has no pk indexes.
        let (_, b) = body(3, &r);
        let mut expected = vec![0, 0, 0, 4, 0, 2, b'I', b'D'];
        expected.extend([0, 0, 0, 1, 0, 0, 0, 2]);
        expected.extend(specs_tail());
        assert_eq!(&b[..], &expected[..]);
    }

    #[test]
    fn events() {
        let addr: std::net::SocketAddr = "127.0.0.2:9042".parse().unwrap();
        let (op, b) = body(
            4,
            &Response::Event(Event::TopologyChange {
                change: "NEW_NODE",
                address: addr,
            }),
        );
        assert_eq!(op, Opcode::Event);
        let mut r = Reader::new(b);
        assert_eq!(r.string().unwrap(), "TOPOLOGY_CHANGE");
        assert_eq!(r.string().unwrap(), "NEW_NODE");
        assert_eq!(r.inet().unwrap(), addr);
        assert!(r.is_empty());

        let (_, b) = body(
            4,
            &Response::Event(Event::StatusChange {
                change: "DOWN",
                address: addr,
            }),
        );
        let mut r = Reader::new(b);
        assert_eq!(r.string().unwrap(), "STATUS_CHANGE");
        assert_eq!(r.string().unwrap(), "DOWN");
        assert_eq!(r.inet().unwrap(), addr);

        let (_, b) = body(
            4,
            &Response::Event(Event::SchemaChange(SchemaChange {
                change: "UPDATED",
                target: "TYPE",
                keyspace: "ks".into(),
                name: "addr".into(),
                arguments: vec![],
            })),
        );
        let mut r = Reader::new(b);
        assert_eq!(r.string().unwrap(), "SCHEMA_CHANGE");
        assert_eq!(r.string().unwrap(), "UPDATED");
        assert_eq!(r.string().unwrap(), "TYPE");
        assert_eq!(r.string().unwrap(), "ks");
        assert_eq!(r.string().unwrap(), "addr");
        assert!(r.is_empty());
    }

    fn err(version: u8, e: &CqlError) -> Reader {
        let (op, b) = body(version, &Response::Error(e.clone()));
        assert_eq!(op, Opcode::Error);
        Reader::new(b)
    }

    fn head(r: &mut Reader, code: i32, msg: &str) {
        assert_eq!(r.int().unwrap(), code);
        assert_eq!(r.string().unwrap(), msg);
    }

    #[test]
    fn error_bodies_without_extras() {
        let cases = [
            (CqlError::Server("s".into()), 0x0000),
            (CqlError::Protocol("p".into()), 0x000A),
            (CqlError::BadCredentials("b".into()), 0x0100),
            (CqlError::Overloaded("o".into()), 0x1001),
            (CqlError::IsBootstrapping("i".into()), 0x1002),
            (CqlError::Truncate("t".into()), 0x1003),
            (CqlError::Syntax("x".into()), 0x2000),
            (CqlError::Unauthorized("u".into()), 0x2100),
            (CqlError::Invalid("v".into()), 0x2200),
            (CqlError::Config("c".into()), 0x2300),
        ];
        for v in 3..=5 {
            for (e, code) in &cases {
                let mut r = err(v, e);
                head(&mut r, *code, &e.to_string());
                assert!(r.is_empty());
            }
        }
        // The golden bytes of a Protocol error.
        let (_, b) = body(4, &Response::Error(CqlError::protocol("bad")));
        assert_eq!(&b[..], &[0, 0, 0, 0x0A, 0, 3, b'b', b'a', b'd']);
    }

    #[test]
    fn unavailable_timeouts_already_exists_unprepared() {
        for v in 3..=5 {
            let mut r = err(
                v,
                &CqlError::Unavailable {
                    message: "m".into(),
                    consistency: Consistency::Quorum,
                    required: 2,
                    alive: 1,
                },
            );
            head(&mut r, 0x1000, "m");
            assert_eq!(r.short().unwrap(), 4);
            assert_eq!(r.int().unwrap(), 2);
            assert_eq!(r.int().unwrap(), 1);
            assert!(r.is_empty());

            let mut r = err(
                v,
                &CqlError::ReadTimeout {
                    message: "m".into(),
                    consistency: Consistency::One,
                    received: 0,
                    block_for: 1,
                    data_present: true,
                },
            );
            head(&mut r, 0x1200, "m");
            assert_eq!(r.short().unwrap(), 1);
            assert_eq!(r.int().unwrap(), 0);
            assert_eq!(r.int().unwrap(), 1);
            assert_eq!(r.byte().unwrap(), 1);
            assert!(r.is_empty());

            let mut r = err(
                v,
                &CqlError::AlreadyExists {
                    message: "m".into(),
                    keyspace: "ks".into(),
                    table: "".into(),
                },
            );
            head(&mut r, 0x2400, "m");
            assert_eq!(r.string().unwrap(), "ks");
            assert_eq!(r.string().unwrap(), "");
            assert!(r.is_empty());

            let mut r = err(
                v,
                &CqlError::Unprepared {
                    message: "m".into(),
                    id: Bytes::from_static(&[1, 2, 3]),
                },
            );
            head(&mut r, 0x2500, "m");
            assert_eq!(&r.short_bytes().unwrap()[..], &[1, 2, 3]);
            assert!(r.is_empty());
        }
    }

    fn write_timeout(wt: WriteType) -> CqlError {
        CqlError::WriteTimeout {
            message: "m".into(),
            consistency: Consistency::Serial,
            received: 1,
            block_for: 2,
            write_type: wt,
            contentions: Some(3),
        }
    }

    #[test]
    fn write_timeout_contentions_only_for_cas_on_v5() {
        for v in [4, 5] {
            let mut r = err(v, &write_timeout(WriteType::Simple));
            head(&mut r, 0x1100, "m");
            assert_eq!(r.short().unwrap(), 8);
            assert_eq!(r.int().unwrap(), 1);
            assert_eq!(r.int().unwrap(), 2);
            assert_eq!(r.string().unwrap(), "SIMPLE");
            assert!(r.is_empty());
        }
        let mut r = err(4, &write_timeout(WriteType::Cas));
        head(&mut r, 0x1100, "m");
        r.take(10, "x").unwrap();
        assert_eq!(r.string().unwrap(), "CAS");
        assert!(r.is_empty());
        let mut r = err(5, &write_timeout(WriteType::Cas));
        head(&mut r, 0x1100, "m");
        r.take(10, "x").unwrap();
        assert_eq!(r.string().unwrap(), "CAS");
        assert_eq!(r.short().unwrap(), 3);
        assert!(r.is_empty());
    }

    fn failures() -> Vec<(std::net::IpAddr, u16)> {
        vec![
            ("10.0.0.1".parse().unwrap(), 1),
            ("::1".parse().unwrap(), 2),
        ]
    }

    #[test]
    fn read_and_write_failure_v4_v5() {
        let rf = CqlError::ReadFailure {
            message: "m".into(),
            consistency: Consistency::All,
            received: 1,
            block_for: 3,
            failures: failures(),
            data_present: false,
        };
        let mut r = err(4, &rf);
        head(&mut r, 0x1300, "m");
        assert_eq!(r.short().unwrap(), 5);
        assert_eq!(r.int().unwrap(), 1);
        assert_eq!(r.int().unwrap(), 3);
        assert_eq!(r.int().unwrap(), 2);
        assert_eq!(r.byte().unwrap(), 0);
        assert!(r.is_empty());

        let mut r = err(5, &rf);
        head(&mut r, 0x1300, "m");
        r.take(10, "x").unwrap();
        assert_eq!(r.int().unwrap(), 2);
        assert_eq!(r.inetaddr().unwrap(), failures()[0].0);
        assert_eq!(r.short().unwrap(), 1);
        assert_eq!(r.inetaddr().unwrap(), failures()[1].0);
        assert_eq!(r.short().unwrap(), 2);
        assert_eq!(r.byte().unwrap(), 0);
        assert!(r.is_empty());

        let wf = CqlError::WriteFailure {
            message: "m".into(),
            consistency: Consistency::All,
            received: 1,
            block_for: 3,
            failures: failures(),
            write_type: WriteType::BatchLog,
        };
        let mut r = err(4, &wf);
        head(&mut r, 0x1500, "m");
        r.take(10, "x").unwrap();
        assert_eq!(r.int().unwrap(), 2);
        assert_eq!(r.string().unwrap(), "BATCH_LOG");
        assert!(r.is_empty());

        let mut r = err(5, &wf);
        head(&mut r, 0x1500, "m");
        r.take(10, "x").unwrap();
        assert_eq!(r.int().unwrap(), 2);
        r.inetaddr().unwrap();
        r.short().unwrap();
        r.inetaddr().unwrap();
        r.short().unwrap();
        assert_eq!(r.string().unwrap(), "BATCH_LOG");
        assert!(r.is_empty());

        // v3 has no failure codes: they become timeouts.
        let mut r = err(3, &rf);
        head(&mut r, 0x1200, "m");
        r.take(10, "x").unwrap();
        assert_eq!(r.byte().unwrap(), 0);
        assert!(r.is_empty());
        let mut r = err(3, &wf);
        head(&mut r, 0x1100, "m");
        r.take(10, "x").unwrap();
        assert_eq!(r.string().unwrap(), "BATCH_LOG");
        assert!(r.is_empty());
    }

    #[test]
    fn function_failure_and_cas_write_unknown() {
        let ff = CqlError::FunctionFailure {
            message: "m".into(),
            keyspace: "ks".into(),
            function: "f".into(),
            arg_types: vec!["int".into()],
        };
        for v in [4, 5] {
            let mut r = err(v, &ff);
            head(&mut r, 0x1400, "m");
            assert_eq!(r.string().unwrap(), "ks");
            assert_eq!(r.string().unwrap(), "f");
            assert_eq!(r.string_list().unwrap(), vec!["int"]);
            assert!(r.is_empty());
        }
        let mut r = err(3, &ff);
        head(&mut r, 0x2200, "m");
        assert!(r.is_empty());

        let cwu = CqlError::CasWriteUnknown {
            message: "m".into(),
            consistency: Consistency::Serial,
            received: 0,
            block_for: 2,
        };
        let mut r = err(5, &cwu);
        head(&mut r, 0x1700, "m");
        assert_eq!(r.short().unwrap(), 8);
        assert_eq!(r.int().unwrap(), 0);
        assert_eq!(r.int().unwrap(), 2);
        assert!(r.is_empty());
        let mut r = err(4, &cwu);
        head(&mut r, 0x1100, "m");
        r.take(10, "x").unwrap();
        assert_eq!(r.string().unwrap(), "CAS");
        assert!(r.is_empty());
    }
}
