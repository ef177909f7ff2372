//! Every scalar CQL type round-trips through the scylla driver, both as bound values of
//! prepared statements and as literals in unprepared INSERTs, including edge values.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use num_bigint::BigInt;
use scylla::client::session::Session;
use scylla::value::{
    CqlDate, CqlDecimal, CqlDuration, CqlTime, CqlTimestamp, CqlTimeuuid, CqlVarint,
};
use scylla::{DeserializeRow, SerializeRow};
use shoal_tests::Node;
use uuid::Uuid;

const COLUMNS: &str = "k, a, t, i, bi, si, ti, vi, f, d, dec, b, u, tu, ts, dt, tm, bl, ip, du";

#[derive(Debug, Clone, Default, SerializeRow, DeserializeRow)]
struct Scalars {
    k: i32,
    a: Option<String>,
    t: Option<String>,
    i: Option<i32>,
    bi: Option<i64>,
    si: Option<i16>,
    ti: Option<i8>,
    vi: Option<CqlVarint>,
    f: Option<f32>,
    d: Option<f64>,
    dec: Option<CqlDecimal>,
    b: Option<bool>,
    u: Option<Uuid>,
    tu: Option<CqlTimeuuid>,
    ts: Option<CqlTimestamp>,
    dt: Option<CqlDate>,
    tm: Option<CqlTime>,
    bl: Option<Vec<u8>>,
    ip: Option<IpAddr>,
    du: Option<CqlDuration>,
}

fn varint(s: &str) -> CqlVarint {
    CqlVarint::from_signed_bytes_be(BigInt::from_str(s).unwrap().to_signed_bytes_be())
}

/// Decimal from its plain string form: unscaled value and scale as Cassandra's BigDecimal
/// keeps them (scale = digits after the point, no normalisation).
fn decimal(s: &str) -> CqlDecimal {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let unscaled = BigInt::from_str(&format!("{int}{frac}")).unwrap();
    CqlDecimal::from_signed_be_bytes_and_exponent(unscaled.to_signed_bytes_be(), frac.len() as i32)
}

fn timeuuid(s: &str) -> CqlTimeuuid {
    CqlTimeuuid::from(Uuid::parse_str(s).unwrap())
}

/// Days since 1970-01-01 in CQL's unsigned encoding (epoch at 2^31).
fn date_from_epoch_days(days: i64) -> CqlDate {
    CqlDate((days + (1 << 31)) as u32)
}

const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// Rows as (values, the same values written as CQL literals in column order after k).
fn cases() -> Vec<(Scalars, String)> {
    let huge = "1606938044258990275541962092341162602522202993782792835301376"; // 2^200
    let unicode = "héllo wörld ✓ 日本語 🦀 \u{0}nul";
    vec![
        (
            Scalars {
                k: 1,
                a: Some("plain ascii ~!".into()),
                t: Some("text".into()),
                i: Some(42),
                bi: Some(1_234_567_890_123),
                si: Some(-1234),
                ti: Some(7),
                vi: Some(varint("123456789")),
                f: Some(3.5),
                d: Some(-2.25),
                dec: Some(decimal("12345.678")),
                b: Some(true),
                u: Some(Uuid::parse_str("550e8400-e29b-41d4-a716-446655440000").unwrap()),
                tu: Some(timeuuid("50554d6e-29bb-11e5-b345-feff819cdc9f")),
                ts: Some(CqlTimestamp(1_700_000_000_123)),
                dt: Some(date_from_epoch_days(19_782)), // 2024-02-29
                tm: Some(CqlTime(((13 * 60 + 14) * 60 + 15) * 1_000_000_000 + 123_456_789)),
                bl: Some(vec![0xde, 0xad, 0xbe, 0xef]),
                ip: Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20))),
                du: Some(CqlDuration {
                    months: 14,
                    days: 25,
                    nanoseconds: 18_367_008_009_010,
                }),
            },
            "'plain ascii ~!', 'text', 42, 1234567890123, -1234, 7, 123456789, 3.5, -2.25, \
             12345.678, true, 550e8400-e29b-41d4-a716-446655440000, \
             50554d6e-29bb-11e5-b345-feff819cdc9f, 1700000000123, '2024-02-29', \
             '13:14:15.123456789', 0xdeadbeef, '192.168.1.20', 1y2mo3w4d5h6m7s8ms9us10ns"
                .into(),
        ),
        (
            Scalars {
                k: 2,
                a: Some(String::new()),
                t: Some(unicode.into()),
                i: Some(i32::MIN),
                bi: Some(i64::MIN),
                si: Some(i16::MIN),
                ti: Some(i8::MIN),
                vi: Some(varint("-1")),
                f: Some(f32::NAN),
                d: Some(f64::NEG_INFINITY),
                dec: Some(decimal("1.000000000000000000000000000001")),
                b: Some(false),
                u: Some(Uuid::nil()),
                tu: Some(timeuuid("00000000-0000-1000-8080-808080808080")),
                // 1969-07-20 20:17:40.123 UTC: before the epoch.
                ts: Some(CqlTimestamp(-14_182_939_877)),
                dt: Some(CqlDate(0)),
                tm: Some(CqlTime(0)),
                bl: Some(Vec::new()),
                ip: Some(IpAddr::V6(Ipv6Addr::new(
                    0x2001, 0xdb8, 0, 0, 0, 0xff00, 0x42, 0x8329,
                ))),
                du: Some(CqlDuration {
                    months: -1,
                    days: -2,
                    nanoseconds: -3_000,
                }),
            },
            "'', 'héllo wörld ✓ 日本語 🦀 \u{0}nul', -2147483648, -9223372036854775808, -32768, -128, -1, NaN, \
             -Infinity, 1.000000000000000000000000000001, false, \
             00000000-0000-0000-0000-000000000000, 00000000-0000-1000-8080-808080808080, \
             '1969-07-20 20:17:40.123+0000', '0', '00:00:00', 0x, \
             '2001:db8::ff00:42:8329', -1mo2d3us"
                .into(),
        ),
        (
            Scalars {
                k: 3,
                a: Some("z".repeat(300)),
                t: Some(String::new()),
                i: Some(i32::MAX),
                bi: Some(i64::MAX),
                si: Some(i16::MAX),
                ti: Some(i8::MAX),
                vi: Some(varint(huge)),
                f: Some(f32::INFINITY),
                d: Some(f64::NAN),
                dec: Some(decimal("-98765432109876543210.0000000001")),
                b: Some(true),
                u: Some(Uuid::parse_str("ffffffff-ffff-4fff-bfff-ffffffffffff").unwrap()),
                tu: Some(timeuuid("ffffffff-ffff-1fff-bfff-ffffffffffff")),
                ts: Some(CqlTimestamp(-2_208_988_800_000)), // 1900-01-01
                dt: Some(CqlDate(u32::MAX)),
                tm: Some(CqlTime(NANOS_PER_DAY - 1)),
                bl: Some((0..=255u8).collect()),
                ip: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                du: Some(CqlDuration {
                    months: 0,
                    days: 0,
                    nanoseconds: 1,
                }),
            },
            format!(
                "'{}', '', 2147483647, 9223372036854775807, 32767, 127, {huge}, Infinity, NaN, \
                 -98765432109876543210.0000000001, true, ffffffff-ffff-4fff-bfff-ffffffffffff, \
                 ffffffff-ffff-1fff-bfff-ffffffffffff, -2208988800000, '4294967295', \
                 '23:59:59.999999999', 0x{}, '::1', 1ns",
                "z".repeat(300),
                (0..=255u8).map(|b| format!("{b:02x}")).collect::<String>()
            ),
        ),
        (
            Scalars {
                k: 4,
                a: Some("x".into()),
                t: Some("'quoted' text".into()),
                i: Some(0),
                bi: Some(0),
                si: Some(0),
                ti: Some(0),
                vi: Some(varint("-170141183460469231731687303715884118073")),
                f: Some(-1.0e-38),
                d: Some(-0.0),
                dec: Some(decimal("-0.001")),
                b: Some(false),
                u: Some(Uuid::parse_str("01234567-89ab-cdef-0123-456789abcdef").unwrap()),
                tu: Some(timeuuid("d2177dd0-eaa2-11de-a572-001b779c76e3")),
                ts: Some(CqlTimestamp(0)),
                dt: Some(date_from_epoch_days(-1)), // 1969-12-31
                tm: Some(CqlTime(1)),
                bl: Some(vec![0]),
                ip: Some(IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0))),
                du: Some(CqlDuration {
                    months: 0,
                    days: 0,
                    nanoseconds: 0,
                }),
            },
            "'x', '''quoted'' text', 0, 0, 0, 0, -170141183460469231731687303715884118073, \
             -1.0E-38, -0.0, -0.001, false, 01234567-89ab-cdef-0123-456789abcdef, \
             d2177dd0-eaa2-11de-a572-001b779c76e3, '1970-01-01 00:00:00+0000', '1969-12-31', \
             '00:00:00.000000001', 0x00, '0.0.0.0', 0s"
                .into(),
        ),
        (
            // Only the key: every other column must read back as null.
            Scalars {
                k: 5,
                ..Default::default()
            },
            "null, null, null, null, null, null, null, null, null, null, null, null, null, \
             null, null, null, null, null, null"
                .into(),
        ),
    ]
}

/// `{:?}` tells NaN from NaN only by being NaN and keeps the sign of -0.0, which is the
/// equality a round trip needs for floats; every other field compares exactly.
fn assert_same(got: &Scalars, want: &Scalars, how: &str) {
    let (g, w) = (format!("{got:#?}"), format!("{want:#?}"));
    assert_eq!(g, w, "{how}: row k={} differs", want.k);
}

async fn setup(node: &Node) -> (Session, String) {
    let session = common::connect(node).await;
    let ks = common::create_keyspace(&session).await;
    common::exec(
        &session,
        format!(
            "CREATE TABLE {ks}.scalars (k int PRIMARY KEY, a ascii, t text, i int, bi bigint, \
             si smallint, ti tinyint, vi varint, f float, d double, dec decimal, b boolean, \
             u uuid, tu timeuuid, ts timestamp, dt date, tm time, bl blob, ip inet, du duration)"
        ),
    )
    .await;
    (session, ks)
}

async fn read_back(session: &Session, ks: &str, k: i32) -> Scalars {
    let select = session
        .prepare(format!("SELECT {COLUMNS} FROM {ks}.scalars WHERE k = ?"))
        .await
        .expect("prepare select");
    session
        .execute_unpaged(&select, (k,))
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .single_row::<Scalars>()
        .unwrap_or_else(|e| panic!("row k={k}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_round_trip_of_every_scalar_type() {
    let node = Node::start_default();
    let (session, ks) = setup(&node).await;
    let insert = session
        .prepare(format!(
            "INSERT INTO {ks}.scalars ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .await
        .expect("prepare insert");
    for (row, _) in cases() {
        session
            .execute_unpaged(&insert, &row)
            .await
            .unwrap_or_else(|e| panic!("insert k={}: {e}", row.k));
    }
    for (want, _) in cases() {
        let got = read_back(&session, &ks, want.k).await;
        assert_same(&got, &want, "prepared insert");
    }
    common::cleanup(&node, &session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_round_trip_of_every_scalar_type() {
    let node = Node::start_default();
    let (session, ks) = setup(&node).await;
    for (want, literals) in cases() {
        let cql = format!(
            "INSERT INTO {ks}.scalars ({COLUMNS}) VALUES ({}, {literals})",
            want.k
        );
        common::exec(&session, &cql).await;
        let got = read_back(&session, &ks, want.k).await;
        assert_same(&got, &want, &cql);
    }
    common::cleanup(&node, &session, &ks).await;
}

/// Unprepared SELECT returns the same typed metadata as the prepared path, and a whole-table
/// scan sees every row exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprepared_select_of_every_scalar_type() {
    let node = Node::start_default();
    let (session, ks) = setup(&node).await;
    let insert = session
        .prepare(format!(
            "INSERT INTO {ks}.scalars ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .await
        .expect("prepare insert");
    for (row, _) in cases() {
        session
            .execute_unpaged(&insert, &row)
            .await
            .expect("insert");
    }
    let rows = session
        .query_unpaged(format!("SELECT {COLUMNS} FROM {ks}.scalars"), ())
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows");
    let mut got: Vec<Scalars> = rows
        .rows::<Scalars>()
        .expect("typed rows")
        .map(|r| r.expect("row"))
        .collect();
    got.sort_by_key(|r| r.k);
    let want: Vec<Scalars> = cases().into_iter().map(|(r, _)| r).collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_same(g, w, "unprepared select");
    }
    common::cleanup(&node, &session, &ks).await;
}

/// Values outside a type's range are refused, as Cassandra does, instead of wrapping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_literals_are_rejected() {
    let node = Node::start_default();
    let (session, ks) = setup(&node).await;
    for (col, lit) in [
        ("ti", "128"),
        ("si", "32768"),
        ("i", "2147483648"),
        ("tm", "'24:00:00'"),
        ("u", "'not-a-uuid'"),
        ("tu", "550e8400-e29b-41d4-a716-446655440000"), // a v4 uuid is not a timeuuid
    ] {
        let cql = format!("INSERT INTO {ks}.scalars (k, {col}) VALUES (99, {lit})");
        let err = session
            .query_unpaged(cql.as_str(), ())
            .await
            .expect_err(&cql);
        let (db, msg) = common::db_error(&err).unwrap_or_else(|| panic!("{cql}: {err}"));
        assert!(
            matches!(db, scylla::errors::DbError::Invalid),
            "{cql}: expected Invalid, got {db:?}: {msg}"
        );
    }
    common::cleanup(&node, &session, &ks).await;
}
