//! Unit tests for the type layer; property tests for the byte-comparable encoding live in
//! `props.rs`.

use std::cmp::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use num_bigint::BigInt;

use super::bytecomp::{decode_components, encode_component};
use super::codec::{decode, encode, validate};
use super::compare::compare;
use super::functions::{resolve, timeuuid_now};
use super::literal::{Evaluated, NoBinds, evaluate, to_cql_literal};
use super::{CqlType, UdtDef, Value};
use crate::error::CqlError;
use crate::parser::ast::{BindMarker, Literal, QualifiedName, Term, TypeExpr};

fn h(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn list(t: CqlType) -> CqlType {
    CqlType::List {
        elem: Box::new(t),
        frozen: false,
    }
}

fn set(t: CqlType) -> CqlType {
    CqlType::Set {
        elem: Box::new(t),
        frozen: false,
    }
}

fn map(k: CqlType, v: CqlType) -> CqlType {
    CqlType::Map {
        key: Box::new(k),
        value: Box::new(v),
        frozen: false,
    }
}

fn udt() -> CqlType {
    CqlType::Udt {
        def: Arc::new(UdtDef {
            keyspace: "ks".into(),
            name: "address".into(),
            fields: vec![
                ("street".into(), CqlType::Text),
                ("zip".into(), CqlType::Int),
            ],
        }),
        frozen: true,
    }
}

fn err_msg<T: std::fmt::Debug>(r: Result<T, CqlError>) -> String {
    match r {
        Err(CqlError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------- codec

#[test]
fn varint_golden() {
    for (v, hex) in [
        (0i64, "00"),
        (127, "7f"),
        (128, "0080"),
        (-1, "ff"),
        (-128, "80"),
        (-129, "ff7f"),
    ] {
        assert_eq!(encode(&Value::Varint(BigInt::from(v))).to_vec(), h(hex));
        assert_eq!(
            decode(&CqlType::Varint, &h(hex)).unwrap(),
            Value::Varint(v.into())
        );
    }
}

#[test]
fn decimal_and_date_golden() {
    let d = Value::Decimal {
        unscaled: BigInt::from(12345),
        scale: 2,
    };
    assert_eq!(encode(&d).to_vec(), h("000000023039"));
    assert_eq!(decode(&CqlType::Decimal, &h("000000023039")).unwrap(), d);
    assert_eq!(
        lit(&CqlType::Date, Literal::String("1970-01-01".into())),
        h("80000000")
    );
    assert_eq!(
        lit(&CqlType::Date, Literal::String("1969-12-31".into())),
        h("7fffffff")
    );
    assert_eq!(
        lit(&CqlType::Date, Literal::Integer("2147483648".into())),
        h("80000000")
    );
}

#[test]
fn duration_golden() {
    let v = Value::Duration {
        months: 1,
        days: 2,
        nanos: 3,
    };
    assert_eq!(encode(&v).to_vec(), h("020406"));
    assert_eq!(decode(&CqlType::Duration, &h("020406")).unwrap(), v);
    let neg = Value::Duration {
        months: -1,
        days: 0,
        nanos: -1_000_000_000,
    };
    assert_eq!(decode(&CqlType::Duration, &encode(&neg)).unwrap(), neg);
    // Big nanos use a multi-byte vint.
    let big = Value::Duration {
        months: 0,
        days: 0,
        nanos: 3_600_000_000_000,
    };
    assert_eq!(decode(&CqlType::Duration, &encode(&big)).unwrap(), big);
    assert!(
        err_msg(decode(&CqlType::Duration, &h("020301"))).contains("must be all of the same sign")
    );
}

#[test]
fn fixed_width_errors() {
    assert_eq!(
        err_msg(decode(&CqlType::Int, &[0, 0, 1])),
        "Expected 4 or 0 byte int (3)"
    );
    assert_eq!(
        err_msg(decode(&CqlType::Bigint, &[0; 3])),
        "Expected 8 or 0 byte long (3)"
    );
    assert_eq!(
        err_msg(decode(&CqlType::Tinyint, &[])),
        "Expected 1 byte for a tinyint (0)"
    );
    assert_eq!(
        err_msg(decode(&CqlType::Smallint, &[])),
        "Expected 2 bytes for a smallint (0)"
    );
    assert_eq!(
        err_msg(decode(&CqlType::Date, &[1])),
        "Expected 4 byte long for date (1)"
    );
    assert!(err_msg(decode(&CqlType::Time, &h("0000ffffffffffff"))).contains("Invalid time"));
    assert_eq!(
        err_msg(decode(&CqlType::Ascii, &[0x61, 0xc3])),
        "Invalid byte for ascii: -61"
    );
    assert_eq!(
        err_msg(validate(&CqlType::Text, &[0xff])),
        "String didn't validate."
    );
    let v4 = uuid::Uuid::new_v4();
    assert_eq!(
        err_msg(decode(&CqlType::Timeuuid, v4.as_bytes())),
        "Invalid version for TimeUUID type."
    );
    assert!(decode(&CqlType::Inet, &[1, 2, 3]).is_err());
}

#[test]
fn empty_values() {
    for t in [
        CqlType::Int,
        CqlType::Bigint,
        CqlType::Boolean,
        CqlType::Uuid,
        CqlType::Timeuuid,
        CqlType::Varint,
        CqlType::Decimal,
        CqlType::Timestamp,
        CqlType::Inet,
        CqlType::Float,
        list(CqlType::Int),
    ] {
        assert_eq!(decode(&t, &[]).unwrap(), Value::Empty, "{t:?}");
    }
    assert_eq!(
        decode(&CqlType::Text, &[]).unwrap(),
        Value::Text(String::new())
    );
}

#[test]
fn collections_tuples_udts() {
    let l = Value::List(vec![Value::Int(1), Value::Int(2)]);
    let b = encode(&l);
    assert_eq!(
        b.to_vec(),
        h("00000002000000040000000100000004")
            .into_iter()
            .chain(h("00000002"))
            .collect::<Vec<_>>()
    );
    assert_eq!(decode(&list(CqlType::Int), &b).unwrap(), l);
    // A null element is refused.
    assert_eq!(
        err_msg(decode(&list(CqlType::Int), &h("00000001ffffffff"))),
        "null is not supported inside collections"
    );
    // UDT with fewer fields than defined: trailing null.
    let v = decode(&udt(), &h("0000000161")).unwrap();
    assert_eq!(
        v,
        Value::Udt(vec![
            ("street".into(), Some(Value::Text("a".into()))),
            ("zip".into(), None)
        ])
    );
    let t = CqlType::Tuple(vec![CqlType::Int, CqlType::Text]);
    let tv = Value::Tuple(vec![Some(Value::Int(7)), None]);
    assert_eq!(decode(&t, &encode(&tv)).unwrap(), tv);
    assert!(decode(&t, &h("ffffffffffffffffffffffff")).is_err());
    let vec_t = CqlType::Vector {
        elem: Box::new(CqlType::Float),
        dimension: 2,
    };
    let vv = Value::Vector(vec![Value::Float(1.0), Value::Float(2.0)]);
    assert_eq!(encode(&vv).len(), 8);
    assert_eq!(decode(&vec_t, &encode(&vv)).unwrap(), vv);
    let vec_text = CqlType::Vector {
        elem: Box::new(CqlType::Text),
        dimension: 2,
    };
    let vt = Value::Vector(vec![Value::Text("ab".into()), Value::Text("".into())]);
    assert_eq!(encode(&vt).to_vec(), h("02616200"));
    assert_eq!(decode(&vec_text, &encode(&vt)).unwrap(), vt);
}

#[test]
fn vint_roundtrip() {
    for v in [
        0u64,
        1,
        127,
        128,
        16383,
        16384,
        u32::MAX as u64,
        u64::MAX >> 1,
        u64::MAX,
    ] {
        let mut out = Vec::new();
        super::codec::write_unsigned_vint(v, &mut out);
        assert_eq!(super::codec::read_unsigned_vint(&out), Some((v, out.len())));
    }
}

// ---------------------------------------------------------------- compare

fn cmp(t: &CqlType, a: &[u8], b: &[u8]) -> Ordering {
    compare(t, a, b)
}

#[test]
fn compare_numbers() {
    let i = |v: i32| v.to_be_bytes().to_vec();
    assert_eq!(cmp(&CqlType::Int, &i(-1), &i(1)), Ordering::Less);
    assert_eq!(cmp(&CqlType::Int, &[], &i(i32::MIN)), Ordering::Less);
    let f = |v: f32| v.to_be_bytes().to_vec();
    assert_eq!(cmp(&CqlType::Float, &f(-0.0), &f(0.0)), Ordering::Less);
    assert_eq!(
        cmp(&CqlType::Float, &f(f32::NAN), &f(f32::INFINITY)),
        Ordering::Greater
    );
    assert_eq!(
        cmp(&CqlType::Float, &f(f32::NAN), &(-f32::NAN).to_be_bytes()),
        Ordering::Equal
    );
    assert_eq!(
        cmp(&CqlType::Float, &f(f32::NEG_INFINITY), &f(-1e30)),
        Ordering::Less
    );
    let d = |u: i64, s: i32| {
        encode(&Value::Decimal {
            unscaled: u.into(),
            scale: s,
        })
    };
    assert_eq!(
        cmp(&CqlType::Decimal, &d(10, 1), &d(100, 2)),
        Ordering::Equal
    );
    assert_eq!(cmp(&CqlType::Decimal, &d(-5, 0), &d(1, 3)), Ordering::Less);
    assert_eq!(
        cmp(&CqlType::Varint, &h("0080"), &h("7f")),
        Ordering::Greater
    );
    assert_eq!(cmp(&CqlType::Varint, &h("ff7f"), &h("80")), Ordering::Less);
    // date is unsigned: 2^31 (epoch) after 0x7fffffff.
    assert_eq!(
        cmp(&CqlType::Date, &h("80000000"), &h("7fffffff")),
        Ordering::Greater
    );
    assert_eq!(cmp(&CqlType::Boolean, &[0], &[7]), Ordering::Less);
}

#[test]
fn compare_uuids() {
    // timeuuid: timestamp first, whatever the byte order of the time fields.
    let early = h("ffffffff00001000800000000000000a"); // time_low high, time_hi 0
    let late = h("0000000000001001800000000000000a"); // time_hi 1
    assert_eq!(cmp(&CqlType::Timeuuid, &early, &late), Ordering::Less);
    assert_eq!(early.cmp(&late), Ordering::Greater);
    // Same timestamp: lsb compared as signed bytes (0x80 < 0x7f).
    let a = h("00000000000010008000000000000000");
    let b = h("00000000000010007f00000000000000");
    assert_eq!(cmp(&CqlType::Timeuuid, &a, &b), Ordering::Less);
    // uuid: version first; v1 by timestamp; others unsigned bytes.
    let v4 = h("00000000000040008000000000000000");
    assert_eq!(cmp(&CqlType::Uuid, &late, &v4), Ordering::Less);
    assert_eq!(cmp(&CqlType::Uuid, &early, &late), Ordering::Less);
    let v4b = h("ff000000000040000000000000000000");
    assert_eq!(cmp(&CqlType::Uuid, &v4, &v4b), Ordering::Less);
    // uuid v1 lsb is unsigned (unlike timeuuid).
    assert_eq!(cmp(&CqlType::Uuid, &a, &b), Ordering::Greater);
}

#[test]
fn compare_collections_and_tuples() {
    let l = list(CqlType::Int);
    let e = |v: Vec<i32>| encode(&Value::List(v.into_iter().map(Value::Int).collect()));
    assert_eq!(cmp(&l, &e(vec![1]), &e(vec![1, 0])), Ordering::Less);
    assert_eq!(cmp(&l, &e(vec![2]), &e(vec![1, 5])), Ordering::Greater);
    let t = CqlType::Tuple(vec![CqlType::Int, CqlType::Int]);
    let tv = |a: Option<i32>, b: Option<i32>| {
        encode(&Value::Tuple(vec![a.map(Value::Int), b.map(Value::Int)]))
    };
    assert_eq!(
        cmp(&t, &tv(None, Some(1)), &tv(Some(0), None)),
        Ordering::Less
    );
    assert_eq!(
        cmp(&t, &tv(Some(1), None), &tv(Some(1), Some(i32::MIN))),
        Ordering::Less
    );
    // Missing trailing component == null.
    let short = encode(&Value::Tuple(vec![Some(Value::Int(1))]));
    assert_eq!(cmp(&t, &short, &tv(Some(1), None)), Ordering::Equal);
}

// ---------------------------------------------------------------- bytecomp

#[test]
fn bytecomp_examples() {
    let ty = CqlType::Int;
    let mut a = Vec::new();
    encode_component(&ty, &1i32.to_be_bytes(), false, &mut a).unwrap();
    assert_eq!(a, h("0280000001"));
    let mut d = Vec::new();
    encode_component(&ty, &1i32.to_be_bytes(), true, &mut d).unwrap();
    assert_eq!(d, h("fd7ffffffe"));
    let mut t = Vec::new();
    encode_component(&CqlType::Text, b"a\0", false, &mut t).unwrap();
    assert_eq!(t, h("026100ff0000"));
    let types = [(CqlType::Int, false), (CqlType::Text, true)];
    let mut key = Vec::new();
    encode_component(&types[0].0, &5i32.to_be_bytes(), false, &mut key).unwrap();
    encode_component(&types[1].0, b"xyz", true, &mut key).unwrap();
    let parts = decode_components(&types, &key).unwrap();
    assert_eq!(parts[0].to_vec(), 5i32.to_be_bytes());
    assert_eq!(&parts[1][..], b"xyz");
    assert_eq!(decode_components(&types, &key[..5]).unwrap().len(), 1);
    assert!(decode_components(&types, &key[..4]).is_err());
    // Invalid values are refused rather than encoded.
    assert!(encode_component(&CqlType::Int, &[1, 2], false, &mut Vec::new()).is_err());
}

// ---------------------------------------------------------------- literals

struct Binds(Vec<Evaluated>);

impl super::literal::BindSource for Binds {
    fn bound(&self, m: &BindMarker) -> crate::error::CqlResult<Evaluated> {
        Ok(self.0[m.index].clone())
    }
}

fn ev(ty: &CqlType, term: Term) -> crate::error::CqlResult<Evaluated> {
    evaluate(ty, &term, "k", &NoBinds)
}

fn val(ty: &CqlType, term: Term) -> Vec<u8> {
    match ev(ty, term).unwrap() {
        Evaluated::Value(v) => v.to_vec(),
        other => panic!("{other:?}"),
    }
}

fn lit(ty: &CqlType, l: Literal) -> Vec<u8> {
    val(ty, Term::Literal(l))
}

fn s(x: &str) -> Literal {
    Literal::String(x.into())
}

fn int(x: &str) -> Term {
    Term::Literal(Literal::Integer(x.into()))
}

#[test]
fn integer_literals() {
    assert_eq!(
        lit(&CqlType::Int, Literal::Integer("-2".into())),
        h("fffffffe")
    );
    assert_eq!(
        lit(&CqlType::Tinyint, Literal::Integer("127".into())),
        h("7f")
    );
    assert_eq!(
        err_msg(ev(&CqlType::Tinyint, int("128"))),
        "Unable to make byte from '128'"
    );
    assert_eq!(
        err_msg(ev(&CqlType::Int, int("2147483648"))),
        "Unable to make int from '2147483648'"
    );
    assert_eq!(
        err_msg(ev(&CqlType::Int, Term::Literal(s("abc")))),
        "Invalid STRING constant (abc) for \"k\" of type int"
    );
    assert_eq!(
        err_msg(ev(
            &CqlType::Int,
            Term::Literal(Literal::Float("1.5".into()))
        )),
        "Invalid FLOAT constant (1.5) for \"k\" of type int"
    );
    assert_eq!(
        err_msg(ev(&CqlType::Blob, Term::Literal(s("ab")))),
        "Invalid STRING constant (ab) for \"k\" of type blob"
    );
    assert_eq!(
        lit(&CqlType::Varint, Literal::Integer("-129".into())),
        h("ff7f")
    );
    assert_eq!(
        lit(&CqlType::Counter, Literal::Integer("5".into())),
        h("0000000000000005")
    );
    assert_eq!(
        err_msg(ev(&list(CqlType::Int), int("1"))),
        "Invalid INTEGER constant (1) for \"k\" of type list<int>"
    );
}

#[test]
fn float_and_decimal_literals() {
    assert_eq!(
        lit(&CqlType::Double, Literal::Float("1.5".into())),
        1.5f64.to_be_bytes()
    );
    assert_eq!(
        lit(&CqlType::Float, Literal::Integer("2".into())),
        2f32.to_be_bytes()
    );
    assert!(f64::from_be_bytes(lit(&CqlType::Double, Literal::NaN).try_into().unwrap()).is_nan());
    assert_eq!(
        lit(&CqlType::Float, Literal::NegInfinity),
        f32::NEG_INFINITY.to_be_bytes()
    );
    assert_eq!(
        lit(&CqlType::Decimal, Literal::Float("123.45".into())),
        h("000000023039")
    );
    assert_eq!(
        lit(&CqlType::Decimal, Literal::Float("1.5e10".into())),
        h("fffffff70f")
    );
    assert_eq!(
        err_msg(ev(&CqlType::Decimal, Term::Literal(Literal::NaN))),
        "unable to make BigDecimal from 'NaN'"
    );
    let big = "123456789012345678901234567890";
    let b = lit(&CqlType::Varint, Literal::Integer(big.into()));
    assert_eq!(to_cql_literal(&CqlType::Varint, &b), big);
}

#[test]
fn string_like_literals() {
    assert_eq!(lit(&CqlType::Text, s("héllo")), "héllo".as_bytes());
    assert!(
        err_msg(ev(&CqlType::Ascii, Term::Literal(s("é")))).starts_with("Invalid ASCII character")
    );
    assert_eq!(lit(&CqlType::Blob, Literal::Blob("0102".into())), h("0102"));
    assert_eq!(
        lit(&CqlType::Blob, Literal::Blob("".into())),
        Vec::<u8>::new()
    );
    assert_eq!(lit(&CqlType::Boolean, Literal::Boolean(true)), h("01"));
    assert_eq!(lit(&CqlType::Inet, s("127.0.0.1")), h("7f000001"));
    assert_eq!(lit(&CqlType::Inet, s("::1")).len(), 16);
    assert_eq!(
        err_msg(ev(&CqlType::Inet, Term::Literal(s("nope")))),
        "Unable to make inet address from 'nope'"
    );
    let u = "550e8400-e29b-41d4-a716-446655440000";
    assert_eq!(
        lit(&CqlType::Uuid, Literal::Uuid(u.into())),
        uuid::Uuid::parse_str(u).unwrap().as_bytes()
    );
    assert_eq!(
        err_msg(ev(
            &CqlType::Timeuuid,
            Term::Literal(Literal::Uuid(u.into()))
        )),
        "TimeUUID supports only version 1 UUIDs"
    );
    assert_eq!(
        err_msg(ev(&CqlType::Uuid, Term::Literal(s(u)))),
        format!("Invalid STRING constant ({u}) for \"k\" of type uuid")
    );
}

#[test]
fn timestamp_literals() {
    let ts = |x: &str| i64::from_be_bytes(lit(&CqlType::Timestamp, s(x)).try_into().unwrap());
    let base = 1_706_659_200_000; // 2024-01-31T00:00:00Z
    assert_eq!(ts("2024-01-31"), base);
    assert_eq!(ts("2024-01-31 01:02"), base + 3_720_000);
    assert_eq!(ts("2024-01-31 01:02:03"), base + 3_723_000);
    assert_eq!(ts("2024-01-31T01:02:03.456"), base + 3_723_456);
    assert_eq!(ts("2024-01-31T01:02:03.456Z"), base + 3_723_456);
    assert_eq!(ts("2024-01-31 01:02:03+0100"), base + 3_723_000 - 3_600_000);
    assert_eq!(
        ts("2024-01-31 01:02:03-01:30"),
        base + 3_723_000 + 5_400_000
    );
    assert_eq!(ts("2024-01-31 01:02:03 UTC"), base + 3_723_000);
    assert_eq!(ts("2024-01-31+0000"), base);
    assert_eq!(ts("1234"), 1234);
    assert_eq!(ts("1969-12-31 23:59:59.999"), -1);
    assert_eq!(
        i64::from_be_bytes(
            lit(&CqlType::Timestamp, Literal::Integer("-5".into()))
                .try_into()
                .unwrap()
        ),
        -5
    );
    for bad in [
        "2024-13-01",
        "2024-02-30",
        "2024-01-31 25:00",
        "yesterday",
        "2024-01-31X",
    ] {
        assert_eq!(
            err_msg(ev(&CqlType::Timestamp, Term::Literal(s(bad)))),
            format!("Unable to coerce '{bad}' to a formatted date (long)")
        );
    }
    assert_eq!(
        to_cql_literal(&CqlType::Timestamp, &(base + 3_723_456).to_be_bytes()),
        "'2024-01-31T01:02:03.456Z'"
    );
    assert_eq!(
        to_cql_literal(&CqlType::Timestamp, &(-1i64).to_be_bytes()),
        "'1969-12-31T23:59:59.999Z'"
    );
}

#[test]
fn date_time_literals() {
    let d = lit(&CqlType::Date, s("2024-01-31"));
    assert_eq!(
        u32::from_be_bytes(d.clone().try_into().unwrap()),
        (1 << 31) + 19753
    );
    assert_eq!(to_cql_literal(&CqlType::Date, &d), "'2024-01-31'");
    assert_eq!(
        to_cql_literal(&CqlType::Date, &lit(&CqlType::Date, s("-0001-03-01"))),
        "'-0001-03-01'"
    );
    let t = lit(&CqlType::Time, s("08:12:54.123456789"));
    assert_eq!(
        i64::from_be_bytes(t.clone().try_into().unwrap()),
        ((8 * 60 + 12) * 60 + 54) * 1_000_000_000 + 123_456_789
    );
    assert_eq!(to_cql_literal(&CqlType::Time, &t), "'08:12:54.123456789'");
    assert_eq!(
        i64::from_be_bytes(lit(&CqlType::Time, s("08:12:54.1")).try_into().unwrap()),
        29_574_100_000_000
    );
    assert_eq!(
        lit(&CqlType::Time, Literal::Integer("5".into())),
        h("0000000000000005")
    );
    assert!(ev(&CqlType::Time, Term::Literal(s("24:00:00"))).is_err());
    assert!(ev(&CqlType::Time, int("86400000000000")).is_err());
    assert!(ev(&CqlType::Date, Term::Literal(s("2024-1-1x"))).is_err());
}

#[test]
fn duration_literals() {
    let d = |x: &str| {
        let b = lit(&CqlType::Duration, Literal::Duration(x.into()));
        match decode(&CqlType::Duration, &b).unwrap() {
            Value::Duration {
                months,
                days,
                nanos,
            } => (months, days, nanos),
            _ => unreachable!(),
        }
    };
    const H: i64 = 3_600_000_000_000;
    assert_eq!(d("1h30m"), (0, 0, H + H / 2));
    assert_eq!(
        d("1y2mo3w4d5h6m7s8ms9us10ns"),
        (14, 25, 5 * H + 6 * 60_000_000_000 + 7_008_009_010)
    );
    assert_eq!(d("3µs"), (0, 0, 3000));
    assert_eq!(d("-2d"), (0, -2, 0));
    assert_eq!(d("P1DT2H"), (0, 1, 2 * H));
    assert_eq!(d("P1Y2M"), (14, 0, 0));
    assert_eq!(d("PT1M"), (0, 0, 60_000_000_000));
    assert_eq!(d("P2W"), (0, 14, 0));
    assert_eq!(d("P0001-02-03T04:05:06"), (14, 3, 4 * H + 306_000_000_000));
    assert_eq!(d("-P1D"), (0, -1, 0));
    let bad = |x: &str| {
        err_msg(ev(
            &CqlType::Duration,
            Term::Literal(Literal::Duration(x.into())),
        ))
    };
    assert_eq!(bad("1x"), "Unable to convert '1x' to a duration");
    assert_eq!(
        bad("1h2d"),
        "Invalid duration. The hours should be after days"
    );
    assert_eq!(
        bad("1d2d"),
        "Invalid duration. The days are specified multiple times"
    );
    assert_eq!(
        bad("3000000000mo"),
        "Invalid duration. The total number of months must be less or equal to 2147483647"
    );
    assert_eq!(
        err_msg(ev(&CqlType::Duration, int("5"))),
        "Unable to convert '5' to a duration"
    );
    let b = lit(
        &CqlType::Duration,
        Literal::Duration("1y2mo3d4h5m6s7ms8us9ns".into()),
    );
    assert_eq!(
        to_cql_literal(&CqlType::Duration, &b),
        "1y2mo3d4h5m6s7ms8us9ns"
    );
    let b = lit(&CqlType::Duration, Literal::Duration("-90m".into()));
    assert_eq!(to_cql_literal(&CqlType::Duration, &b), "-1h30m");
}

#[test]
fn collection_literals() {
    let s_int = set(CqlType::Int);
    let v = val(
        &s_int,
        Term::Set(vec![int("3"), int("1"), int("3"), int("-2")]),
    );
    assert_eq!(to_cql_literal(&s_int, &v), "{-2, 1, 3}");
    let m = map(CqlType::Text, CqlType::Int);
    let v = val(
        &m,
        Term::Map(vec![
            (Term::Literal(s("b")), int("1")),
            (Term::Literal(s("a")), int("2")),
            (Term::Literal(s("b")), int("3")),
        ]),
    );
    assert_eq!(to_cql_literal(&m, &v), "{'a': 2, 'b': 3}");
    // `{}` is an empty set or an empty map by receiver.
    assert_eq!(val(&s_int, Term::Map(vec![])), h("00000000"));
    assert_eq!(val(&m, Term::Map(vec![])), h("00000000"));
    let l = list(CqlType::Text);
    let v = val(
        &l,
        Term::List(vec![Term::Literal(s("it's")), Term::Literal(s("x"))]),
    );
    assert_eq!(to_cql_literal(&l, &v), "['it''s', 'x']");
    assert_eq!(
        err_msg(ev(&l, Term::List(vec![Term::Literal(Literal::Null)]))),
        "null is not supported inside collections"
    );
    assert_eq!(
        err_msg(ev(&CqlType::Int, Term::List(vec![]))),
        "Invalid list literal for k of type int"
    );
    assert_eq!(
        err_msg(ev(&l, Term::List(vec![int("1")]))),
        "Invalid INTEGER constant (1) for \"value(k)\" of type text"
    );
    // Nested frozen collections.
    let nested = list(CqlType::List {
        elem: Box::new(CqlType::Int),
        frozen: true,
    });
    let v = val(
        &nested,
        Term::List(vec![
            Term::List(vec![int("1"), int("2")]),
            Term::List(vec![]),
        ]),
    );
    assert_eq!(to_cql_literal(&nested, &v), "[[1, 2], []]");
    assert_eq!(
        ev(&l, Term::Literal(Literal::Null)).unwrap(),
        Evaluated::Null
    );
}

#[test]
fn tuple_udt_vector_literals() {
    let t = CqlType::Tuple(vec![CqlType::Int, CqlType::Text]);
    let v = val(
        &t,
        Term::Tuple(vec![int("1"), Term::Literal(Literal::Null)]),
    );
    assert_eq!(to_cql_literal(&t, &v), "(1, null)");
    assert_eq!(
        err_msg(ev(&t, Term::Tuple(vec![int("1"), int("2"), int("3")]))),
        "Invalid tuple literal for k: too many elements. Type frozen<tuple<int, text>> expects 2 but got 3"
    );
    let u = udt();
    let v = val(&u, Term::Udt(vec![("zip".into(), int("75001"))]));
    assert_eq!(to_cql_literal(&u, &v), "{street: null, zip: 75001}");
    let v = val(
        &u,
        Term::Map(vec![(
            Term::Identifier("street".into()),
            Term::Literal(s("Main")),
        )]),
    );
    assert_eq!(to_cql_literal(&u, &v), "{street: 'Main', zip: null}");
    assert_eq!(
        err_msg(ev(&u, Term::Udt(vec![("x".into(), int("1"))]))),
        "Unknown field 'x' in value of user defined type address"
    );
    let vt = CqlType::Vector {
        elem: Box::new(CqlType::Float),
        dimension: 3,
    };
    let v = val(
        &vt,
        Term::List(vec![
            Term::Literal(Literal::Float("1.5".into())),
            int("2"),
            int("3"),
        ]),
    );
    assert_eq!(to_cql_literal(&vt, &v), "[1.5, 2.0, 3.0]");
    assert!(ev(&vt, Term::List(vec![int("1")])).is_err());
}

#[test]
fn binds_casts_negation() {
    let binds = Binds(vec![
        Evaluated::Value(Bytes::from_static(&[0, 0, 0, 9])),
        Evaluated::Null,
        Evaluated::Unset,
    ]);
    let marker = |i| {
        Term::Bind(BindMarker {
            index: i,
            name: None,
        })
    };
    let l = list(CqlType::Int);
    let v = evaluate(&l, &Term::List(vec![int("1"), marker(0)]), "k", &binds).unwrap();
    assert_eq!(
        v,
        Evaluated::Value(super::codec::encode_collection(&[
            1i32.to_be_bytes(),
            9i32.to_be_bytes()
        ]))
    );
    assert!(evaluate(&l, &Term::List(vec![marker(1)]), "k", &binds).is_err());
    assert_eq!(
        evaluate(&CqlType::Int, &marker(2), "k", &binds).unwrap(),
        Evaluated::Unset
    );
    let neg = evaluate(
        &CqlType::Int,
        &Term::Negate(Box::new(marker(0))),
        "k",
        &binds,
    )
    .unwrap();
    assert_eq!(
        neg,
        Evaluated::Value(Bytes::copy_from_slice(&(-9i32).to_be_bytes()))
    );
    let cast = Term::Cast {
        ty: TypeExpr::Native("int".into()),
        term: Box::new(int("3")),
    };
    assert_eq!(val(&CqlType::Int, cast.clone()), h("00000003"));
    assert!(ev(&CqlType::Bigint, cast).is_err());
}

fn call(name: &str, args: Vec<Term>) -> Term {
    Term::FunctionCall {
        name: QualifiedName {
            keyspace: None,
            name: name.into(),
        },
        args,
    }
}

#[test]
fn function_calls() {
    let blob = |x: &str| Term::Literal(Literal::Blob(x.into()));
    assert_eq!(
        val(&CqlType::Int, call("blobasint", vec![blob("00000001")])),
        h("00000001")
    );
    assert_eq!(
        val(&CqlType::Int, call("blob_as_int", vec![blob("")])),
        Vec::<u8>::new()
    );
    assert_eq!(
        val(&CqlType::Blob, call("intAsBlob", vec![int("1")])),
        h("00000001")
    );
    assert_eq!(
        val(&CqlType::Blob, call("int_as_blob", vec![int("1")])),
        h("00000001")
    );
    assert!(
        err_msg(ev(&CqlType::Int, call("blobAsInt", vec![blob("0001")])))
            .contains("is not a valid binary representation for type int")
    );
    assert_eq!(
        err_msg(ev(
            &CqlType::Text,
            call("blobAsInt", vec![blob("00000001")])
        )),
        "Type error: cannot assign result of function system.blobasint (type int) to k (type text)"
    );
    let now = val(&CqlType::Timeuuid, call("now", vec![]));
    assert_eq!(now[6] >> 4, 1);
    // toTimestamp(now()) resolves through the inner call's type.
    let ts = val(
        &CqlType::Timestamp,
        call("totimestamp", vec![call("now", vec![])]),
    );
    let ms = i64::from_be_bytes(ts.try_into().unwrap());
    assert!((ms - super::temporal::now_millis()).abs() < 10_000);
    // An untyped argument to an overloaded function is ambiguous, as in Cassandra.
    assert!(err_msg(ev(&CqlType::Date, call("todate", vec![int("1")]))).starts_with("Ambiguous"));
    let min = val(
        &CqlType::Timeuuid,
        call("minTimeuuid", vec![Term::Literal(s("2024-01-31"))]),
    );
    let max = val(
        &CqlType::Timeuuid,
        call("system.maxtimeuuid", vec![Term::Literal(s("2024-01-31"))]),
    );
    assert_eq!(compare(&CqlType::Timeuuid, &min, &max), Ordering::Less);
    let f = resolve("toTimestamp", &[Some(CqlType::Timeuuid)], None).unwrap();
    assert_eq!(
        (f.exec)(&[Some(Bytes::from(min.clone()))])
            .unwrap()
            .unwrap()
            .to_vec(),
        1_706_659_200_000i64.to_be_bytes()
    );
    let f = resolve("todate", &[Some(CqlType::Timestamp)], None).unwrap();
    assert_eq!(f.return_type, CqlType::Date);
    assert_eq!(f.name, "system.todate");
    assert!(resolve("nosuch", &[], None).is_err());
    let f = resolve("unixtimestampof", &[None], None).unwrap();
    assert_eq!(
        (f.exec)(&[Some(Bytes::from(max))])
            .unwrap()
            .unwrap()
            .to_vec(),
        1_706_659_200_000i64.to_be_bytes()
    );
}

#[test]
fn timeuuid_now_is_monotonic_v1() {
    let mut prev = timeuuid_now();
    for _ in 0..1000 {
        let next = timeuuid_now();
        assert_eq!(next.get_version_num(), 1);
        assert_eq!(
            compare(&CqlType::Timeuuid, prev.as_bytes(), next.as_bytes()),
            Ordering::Less
        );
        prev = next;
    }
}

// ---------------------------------------------------------------- names

#[test]
fn type_names() {
    let frozen_list = CqlType::List {
        elem: Box::new(CqlType::Int),
        frozen: true,
    };
    assert_eq!(CqlType::Text.cql_name(), "text");
    assert_eq!(frozen_list.cql_name(), "frozen<list<int>>");
    assert_eq!(
        map(CqlType::Text, CqlType::Int).cql_name(),
        "map<text, int>"
    );
    assert_eq!(
        CqlType::Tuple(vec![CqlType::Int, CqlType::Text]).cql_name(),
        "frozen<tuple<int, text>>"
    );
    assert_eq!(
        list(frozen_list.clone()).cql_name(),
        "list<frozen<list<int>>>"
    );
    assert_eq!(udt().cql_name(), "frozen<address>");
    assert_eq!(
        CqlType::Vector {
            elem: Box::new(CqlType::Float),
            dimension: 3
        }
        .cql_name(),
        "vector<float, 3>"
    );
    assert_eq!(CqlType::Custom("a.B".into()).cql_name(), "'a.B'");
    assert_eq!(
        CqlType::Int.marshal_class(),
        "org.apache.cassandra.db.marshal.Int32Type"
    );
    assert_eq!(
        list(CqlType::Int).marshal_class(),
        "org.apache.cassandra.db.marshal.ListType(org.apache.cassandra.db.marshal.Int32Type)"
    );
    assert_eq!(
        list(frozen_list.clone()).marshal_class(),
        "org.apache.cassandra.db.marshal.ListType(org.apache.cassandra.db.marshal.FrozenType(org.apache.cassandra.db.marshal.ListType(org.apache.cassandra.db.marshal.Int32Type)))"
    );
    assert_eq!(
        udt().marshal_class(),
        "org.apache.cassandra.db.marshal.FrozenType(org.apache.cassandra.db.marshal.UserType(ks,61646472657373,737472656574:org.apache.cassandra.db.marshal.UTF8Type,7a6970:org.apache.cassandra.db.marshal.Int32Type))"
    );
    assert_eq!(CqlType::from_native_name("varchar"), Some(CqlType::Text));
    for n in super::names::NATIVE_NAMES {
        let t = CqlType::from_native_name(n).unwrap();
        if *n != "varchar" {
            assert_eq!(t.cql_name(), *n);
        }
    }
    assert!(list(CqlType::Int).is_multicell());
    assert!(!frozen_list.is_multicell());
}

#[test]
fn literal_text_roundtrips() {
    // to_cql_literal output parses back to the same bytes.
    let cases: Vec<(CqlType, Term)> = vec![
        (CqlType::Double, Term::Literal(Literal::Float("0.1".into()))),
        (
            CqlType::Double,
            Term::Literal(Literal::Float("1e300".into())),
        ),
        (
            CqlType::Decimal,
            Term::Literal(Literal::Float("-0.00123".into())),
        ),
        (
            CqlType::Decimal,
            Term::Literal(Literal::Float("12E+3".into())),
        ),
    ];
    for (ty, term) in cases {
        let b = val(&ty, term);
        let text = to_cql_literal(&ty, &b);
        let back = if text.contains(['.', 'e', 'E']) {
            Literal::Float(text.clone())
        } else {
            Literal::Integer(text.clone())
        };
        assert_eq!(compare(&ty, &lit(&ty, back), &b), Ordering::Equal, "{text}");
    }
    assert_eq!(to_cql_literal(&CqlType::Int, &[]), "null");
    assert_eq!(to_cql_literal(&CqlType::Blob, &[1, 2]), "0x0102");
    assert_eq!(
        super::format_value(&CqlType::Text, &Value::Text("a'b".into())),
        "'a''b'"
    );
}

#[test]
fn marker_specs_follow_literal_structure() {
    let m = |i| {
        Term::Bind(BindMarker {
            index: i,
            name: None,
        })
    };
    let ty = map(CqlType::Text, list(CqlType::Int));
    let term = Term::Map(vec![(m(0), Term::List(vec![m(1)]))]);
    let specs = super::literal::marker_specs(&ty, &term, "m").unwrap();
    assert_eq!(specs.len(), 2);
    assert_eq!(
        (specs[0].ty.clone(), specs[0].receiver.as_str()),
        (CqlType::Text, "key(m)")
    );
    assert_eq!(
        (specs[1].ty.clone(), specs[1].receiver.as_str()),
        (CqlType::Int, "value(value(m))")
    );
    let specs =
        super::literal::marker_specs(&CqlType::Int, &call("blobAsInt", vec![m(0)]), "k").unwrap();
    assert_eq!(
        (specs[0].ty.clone(), specs[0].receiver.as_str()),
        (CqlType::Blob, "arg0")
    );
}

#[test]
fn strict_constant_kinds() {
    assert_eq!(
        err_msg(ev(&CqlType::Duration, Term::Literal(s("1h")))),
        "Invalid STRING constant (1h) for \"k\" of type duration"
    );
    assert_eq!(
        err_msg(ev(&CqlType::Counter, Term::Literal(Literal::Null))),
        "Invalid null value for counter increment/decrement"
    );
    assert_eq!(
        err_msg(ev(&CqlType::Int, Term::Literal(Literal::Blob("01".into())))),
        "Invalid HEX constant (0x01) for \"k\" of type int"
    );
}
