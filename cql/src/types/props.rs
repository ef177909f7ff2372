//! Property tests: the byte-comparable clustering encoding agrees with `compare` (ASC and
//! DESC), is prefix-free and reversible, keys extend their prefixes; decoding arbitrary
//! bytes never panics.

use std::cmp::Ordering;
use std::sync::Arc;

use num_bigint::BigInt;
use proptest::collection::vec;
use proptest::prelude::*;

use super::bytecomp::{decode_components, encode_component};
use super::codec::{self, decode, encode_collection, encode_fields, encode_map};
use super::compare::compare;
use super::{CqlType, UdtDef};

fn scalar_type() -> impl Strategy<Value = CqlType> {
    prop_oneof![
        Just(CqlType::Ascii),
        Just(CqlType::Text),
        Just(CqlType::Blob),
        Just(CqlType::Boolean),
        Just(CqlType::Tinyint),
        Just(CqlType::Smallint),
        Just(CqlType::Int),
        Just(CqlType::Bigint),
        Just(CqlType::Varint),
        Just(CqlType::Decimal),
        Just(CqlType::Float),
        Just(CqlType::Double),
        Just(CqlType::Timestamp),
        Just(CqlType::Date),
        Just(CqlType::Time),
        Just(CqlType::Uuid),
        Just(CqlType::Timeuuid),
        Just(CqlType::Inet),
    ]
}

/// Every type that can be a clustering column, nested two levels deep at most.
fn clustering_type() -> impl Strategy<Value = CqlType> {
    scalar_type().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| CqlType::List {
                elem: Box::new(t),
                frozen: true
            }),
            inner.clone().prop_map(|t| CqlType::Set {
                elem: Box::new(t),
                frozen: true
            }),
            (inner.clone(), inner.clone()).prop_map(|(k, v)| CqlType::Map {
                key: Box::new(k),
                value: Box::new(v),
                frozen: true
            }),
            vec(inner.clone(), 1..4).prop_map(CqlType::Tuple),
            vec(inner, 1..3).prop_map(|ts| CqlType::Udt {
                def: Arc::new(UdtDef {
                    keyspace: "ks".into(),
                    name: "u".into(),
                    fields: ts
                        .into_iter()
                        .enumerate()
                        .map(|(i, t)| (format!("f{i}"), t))
                        .collect(),
                }),
                frozen: true,
            }),
        ]
    })
}

/// Small alphabets so that equal values and shared prefixes are common.
fn small_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![Just(0u8), Just(1), Just(0xff), Just(0x61), any::<u8>()],
        0..6,
    )
}

fn float_bits() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(0x8000_0000),
        Just(0x7fc0_0000),
        Just(0xffc0_0001),
        Just(0x7f80_0000),
        Just(0xff80_0000),
        Just(1.0f32.to_bits()),
        any::<u32>(),
    ]
}

fn double_bits() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1 << 63),
        Just(0x7ff8_0000_0000_0000),
        Just(0x7ff0_0000_0000_0000),
        Just(0xfff0_0000_0000_0000),
        Just(2.0f64.to_bits()),
        any::<u64>(),
    ]
}

fn uuid_bytes(v1_only: bool) -> impl Strategy<Value = Vec<u8>> {
    (
        vec(
            prop_oneof![Just(0u8), Just(0x80), Just(0x7f), any::<u8>()],
            16,
        ),
        prop_oneof![Just(1u8), Just(4), Just(0), any::<u8>()],
    )
        .prop_map(move |(mut b, v)| {
            let v = if v1_only { 1 } else { v & 0xf };
            b[6] = (b[6] & 0x0f) | (v << 4);
            b
        })
}

fn varint_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (-300i64..300).prop_map(|v| BigInt::from(v).to_signed_bytes_be()),
        any::<i64>().prop_map(|v| BigInt::from(v).to_signed_bytes_be()),
        vec(any::<u8>(), 1..20).prop_map(|b| BigInt::from_signed_bytes_be(&b).to_signed_bytes_be()),
    ]
}

fn decimal_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![-1000i64..1000, any::<i64>()],
        prop_oneof![-3i32..4, any::<i32>()],
    )
        .prop_map(|(u, s)| {
            let mut out = s.to_be_bytes().to_vec();
            out.extend_from_slice(&BigInt::from(u).to_signed_bytes_be());
            out
        })
}

/// A valid serialized value of `ty` (sometimes the empty value, where allowed).
fn value_of(ty: &CqlType) -> BoxedStrategy<Vec<u8>> {
    let non_empty: BoxedStrategy<Vec<u8>> = match ty {
        CqlType::Ascii => vec(prop_oneof![Just(0u8), Just(b'a'), 0u8..128], 0..6).boxed(),
        CqlType::Text => "[a\\x00é\u{10000}]{0,5}"
            .prop_map(String::into_bytes)
            .boxed(),
        CqlType::Blob => small_bytes().boxed(),
        CqlType::Boolean => any::<u8>().prop_map(|b| vec![b]).boxed(),
        CqlType::Tinyint => any::<i8>().prop_map(|v| v.to_be_bytes().to_vec()).boxed(),
        CqlType::Smallint => prop_oneof![-3i16..3, any::<i16>()]
            .prop_map(|v| v.to_be_bytes().to_vec())
            .boxed(),
        CqlType::Int => prop_oneof![-3i32..3, any::<i32>()]
            .prop_map(|v| v.to_be_bytes().to_vec())
            .boxed(),
        CqlType::Bigint | CqlType::Timestamp => prop_oneof![-3i64..3, any::<i64>()]
            .prop_map(|v| v.to_be_bytes().to_vec())
            .boxed(),
        CqlType::Time => prop_oneof![0i64..3, 0..codec::NANOS_PER_DAY]
            .prop_map(|v| v.to_be_bytes().to_vec())
            .boxed(),
        CqlType::Date => prop_oneof![(1u32 << 31) - 2..(1 << 31) + 2, any::<u32>()]
            .prop_map(|v| v.to_be_bytes().to_vec())
            .boxed(),
        CqlType::Float => float_bits().prop_map(|v| v.to_be_bytes().to_vec()).boxed(),
        CqlType::Double => double_bits().prop_map(|v| v.to_be_bytes().to_vec()).boxed(),
        CqlType::Varint => varint_bytes().boxed(),
        CqlType::Decimal => decimal_bytes().boxed(),
        CqlType::Uuid => uuid_bytes(false).boxed(),
        CqlType::Timeuuid => uuid_bytes(true).boxed(),
        CqlType::Inet => prop_oneof![vec(any::<u8>(), 4), vec(any::<u8>(), 16)].boxed(),
        CqlType::List { elem, .. } => vec(value_of(elem), 0..3)
            .prop_map(|items| encode_collection(&items).to_vec())
            .boxed(),
        CqlType::Set { elem, .. } => {
            let e = (**elem).clone();
            vec(value_of(elem), 0..3)
                .prop_map(move |mut items| {
                    items.sort_by(|a, b| compare(&e, a, b));
                    items.dedup_by(|a, b| compare(&e, a, b) == Ordering::Equal);
                    encode_collection(&items).to_vec()
                })
                .boxed()
        }
        CqlType::Map { key, value, .. } => {
            let k = (**key).clone();
            vec((value_of(key), value_of(value)), 0..3)
                .prop_map(move |mut entries| {
                    entries.sort_by(|a, b| compare(&k, &a.0, &b.0));
                    entries.dedup_by(|a, b| compare(&k, &a.0, &b.0) == Ordering::Equal);
                    encode_map(&entries).to_vec()
                })
                .boxed()
        }
        CqlType::Tuple(types) => fields_of(types.clone()),
        CqlType::Udt { def, .. } => fields_of(def.fields.iter().map(|f| f.1.clone()).collect()),
        _ => Just(Vec::new()).boxed(),
    };
    if codec::accepts_empty(ty) && !ty.is_collection() {
        prop_oneof![1 => Just(Vec::new()), 8 => non_empty].boxed()
    } else {
        non_empty
    }
}

/// Tuple/UDT values, including nulls and missing trailing fields.
fn fields_of(types: Vec<CqlType>) -> BoxedStrategy<Vec<u8>> {
    let n = types.len();
    let parts: Vec<BoxedStrategy<Option<Vec<u8>>>> = types
        .iter()
        .map(|t| proptest::option::weighted(0.8, value_of(t)).boxed())
        .collect();
    (parts, 0..=n)
        .prop_map(|(fields, keep)| {
            let fields: Vec<Option<Vec<u8>>> = fields.into_iter().take(keep.max(1)).collect();
            encode_fields(&fields).to_vec()
        })
        .boxed()
}

fn enc(ty: &CqlType, v: &[u8], desc: bool) -> Vec<u8> {
    let mut out = Vec::new();
    encode_component(ty, v, desc, &mut out).expect("valid value encodes");
    out
}

fn typed_pair() -> impl Strategy<Value = (CqlType, Vec<u8>, Vec<u8>)> {
    clustering_type().prop_flat_map(|t| {
        let a = value_of(&t);
        let b = value_of(&t);
        (Just(t), a, b)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn order_matches_compare((ty, a, b) in typed_pair()) {
        let expected = compare(&ty, &a, &b);
        let (ea, eb) = (enc(&ty, &a, false), enc(&ty, &b, false));
        prop_assert_eq!(ea.cmp(&eb), expected, "asc {:?} {:02x?} {:02x?}", ty, ea, eb);
        let (da, db) = (enc(&ty, &a, true), enc(&ty, &b, true));
        prop_assert_eq!(da.cmp(&db), expected.reverse(), "desc");
        // Prefix-free: distinct encodings never prefix one another.
        if ea != eb {
            prop_assert!(!ea.starts_with(&eb) && !eb.starts_with(&ea));
            prop_assert!(!da.starts_with(&db) && !db.starts_with(&da));
        }
    }

    #[test]
    fn round_trip((ty, a, _b) in typed_pair(), desc in any::<bool>()) {
        let e = enc(&ty, &a, desc);
        let back = decode_components(&[(ty.clone(), desc)], &e).unwrap();
        prop_assert_eq!(back.len(), 1);
        prop_assert!(decode(&ty, &back[0]).is_ok());
        prop_assert_eq!(compare(&ty, &back[0], &a), Ordering::Equal);
        prop_assert_eq!(enc(&ty, &back[0], desc), e);
    }

    #[test]
    fn keys_extend_prefixes(
        cols in vec((clustering_type(), any::<bool>()), 1..4)
            .prop_flat_map(|cols| {
                let vals: Vec<_> = cols.iter().map(|(t, _)| value_of(t)).collect();
                (Just(cols), vals)
            })
    ) {
        let (types, values) = cols;
        let mut key = Vec::new();
        let mut prefixes = vec![0];
        for ((t, d), v) in types.iter().zip(&values) {
            encode_component(t, v, *d, &mut key).unwrap();
            prefixes.push(key.len());
        }
        for (n, end) in prefixes.iter().enumerate() {
            let mut p = Vec::new();
            for ((t, d), v) in types.iter().zip(&values).take(n) {
                encode_component(t, v, *d, &mut p).unwrap();
            }
            prop_assert_eq!(&key[..*end], &p[..]);
            let parts = decode_components(&types, &p).unwrap();
            prop_assert_eq!(parts.len(), n);
            for ((t, _), (got, want)) in types.iter().zip(parts.iter().zip(&values)) {
                prop_assert_eq!(compare(t, got, want), Ordering::Equal);
            }
        }
    }

    #[test]
    fn multi_component_order(
        (t1, a1, b1) in typed_pair(),
        (t2, a2, b2) in typed_pair(),
        d1 in any::<bool>(),
        d2 in any::<bool>(),
    ) {
        let key = |x: &[u8], y: &[u8]| {
            let mut k = enc(&t1, x, d1);
            k.extend(enc(&t2, y, d2));
            k
        };
        let dir = |o: Ordering, d: bool| if d { o.reverse() } else { o };
        let expected = dir(compare(&t1, &a1, &b1), d1).then(dir(compare(&t2, &a2, &b2), d2));
        prop_assert_eq!(key(&a1, &a2).cmp(&key(&b1, &b2)), expected);
    }

    #[test]
    fn decoding_garbage_never_panics(ty in clustering_type(), bytes in vec(any::<u8>(), 0..40)) {
        let _ = decode(&ty, &bytes);
        let _ = compare(&ty, &bytes, &bytes[bytes.len() / 2..]);
        let _ = decode_components(&[(ty.clone(), false), (ty.clone(), true)], &bytes);
        let _ = super::literal::to_cql_literal(&ty, &bytes);
        let mut out = Vec::new();
        let _ = encode_component(&ty, &bytes, false, &mut out);
    }

    #[test]
    fn decode_encode_round_trip((ty, a, _b) in typed_pair()) {
        let v = decode(&ty, &a).unwrap();
        prop_assert_eq!(compare(&ty, &codec::encode(&v), &a), Ordering::Equal);
    }
}

#[test]
fn duration_and_vector_garbage() {
    let types = [
        CqlType::Duration,
        CqlType::Vector {
            elem: Box::new(CqlType::Text),
            dimension: 3,
        },
        CqlType::Vector {
            elem: Box::new(CqlType::Vector {
                elem: Box::new(CqlType::Int),
                dimension: u32::MAX,
            }),
            dimension: u32::MAX,
        },
    ];
    for t in &types {
        for b in [&[][..], &[0xff; 9], &[0x80, 1, 2], &[3, 0xc0, 0, 0, 0]] {
            let _ = decode(t, b);
            let _ = compare(t, b, &[1]);
        }
    }
}
