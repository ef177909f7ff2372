//! Native scalar functions (`now()`, `uuid()`, `toTimestamp()`, `blobAsInt()`, `intAsBlob()`...).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use uuid::Uuid;

use super::CqlType;
use super::codec;
use super::temporal::{DATE_EPOCH, MILLIS_PER_DAY, NANOS_PER_MILLI, now_millis};
use crate::error::{CqlError, CqlResult};

/// A resolved native function.
#[derive(Clone, Debug)]
pub struct NativeFunction {
    /// Lower-case name as Cassandra prints it in column headers (`system.blobasint`).
    pub name: String,
    pub arg_types: Vec<CqlType>,
    pub return_type: CqlType,
    pub exec: fn(&[Option<Bytes>]) -> CqlResult<Option<Bytes>>,
}

type Exec = fn(&[Option<Bytes>]) -> CqlResult<Option<Bytes>>;

/// Resolves `name` for arguments whose types are known (`None` for untyped literals or
/// markers) and, when known, the receiver's type.
pub fn resolve(
    name: &str,
    arg_types: &[Option<CqlType>],
    receiver: Option<&CqlType>,
) -> CqlResult<NativeFunction> {
    let lower = name.to_ascii_lowercase();
    let short = lower.strip_prefix("system.").unwrap_or(&lower);
    let candidates: Vec<(Vec<CqlType>, CqlType, Exec)> = overloads(short);
    if candidates.is_empty() {
        return Err(CqlError::invalid(format!("Unknown function '{name}'")));
    }
    let arity: Vec<_> = candidates
        .iter()
        .filter(|(args, _, _)| args.len() == arg_types.len())
        .collect();
    if arity.is_empty() {
        let (args, _, _) = &candidates[0];
        return Err(CqlError::invalid(format!(
            "Invalid number of arguments in call to function system.{short}: {} required but {} provided",
            args.len(),
            arg_types.len()
        )));
    }
    let matching: Vec<_> = arity
        .iter()
        .filter(|(args, _, _)| {
            args.iter()
                .zip(arg_types)
                .all(|(want, got)| got.as_ref().is_none_or(|g| same_type(want, g)))
        })
        .collect();
    // Among several candidates, the receiver's type can decide (Cassandra does the same
    // for calls whose arguments are all untyped).
    let chosen = match matching.as_slice() {
        [one] => **one,
        [] => {
            let got: Vec<String> = arg_types
                .iter()
                .map(|t| t.as_ref().map_or("?".to_owned(), |t| t.cql_name()))
                .collect();
            return Err(CqlError::invalid(format!(
                "Type error: system.{short}({}) is not a valid call: no overload matches",
                got.join(", ")
            )));
        }
        many => match many
            .iter()
            .filter(|(_, ret, _)| receiver.is_some_and(|r| same_type(ret, r)))
            .collect::<Vec<_>>()
            .as_slice()
        {
            [one] => ***one,
            _ => {
                let sigs: Vec<String> = many
                    .iter()
                    .map(|(args, ret, _)| {
                        let a: Vec<String> = args.iter().map(|t| t.cql_name()).collect();
                        format!("system.{short} : ({}) -> {}", a.join(", "), ret.cql_name())
                    })
                    .collect();
                return Err(CqlError::invalid(format!(
                    "Ambiguous call to function {short} (can be matched by following signatures: {}): use type casts to disambiguate",
                    sigs.join(", ")
                )));
            }
        },
    };
    let (args, ret, exec) = chosen.clone();
    Ok(NativeFunction {
        name: format!("system.{short}"),
        arg_types: args,
        return_type: ret,
        exec,
    })
}

/// Types equal for overload purposes (`frozen` and varchar/text do not matter).
fn same_type(a: &CqlType, b: &CqlType) -> bool {
    a == b || a.frozen() == b.frozen()
}

/// True if a function named `name` exists (any overload).
pub fn exists(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !overloads(lower.strip_prefix("system.").unwrap_or(&lower)).is_empty()
}

fn overloads(name: &str) -> Vec<(Vec<CqlType>, CqlType, Exec)> {
    use CqlType::*;
    let f = |args: Vec<CqlType>, ret: CqlType, e: Exec| (args, ret, e);
    match name {
        "now" | "currenttimeuuid" | "current_timeuuid" => vec![f(vec![], Timeuuid, now)],
        "uuid" => vec![f(vec![], Uuid, random_uuid)],
        "currenttimestamp" | "current_timestamp" => {
            vec![f(vec![], Timestamp, current_timestamp)]
        }
        "currentdate" | "current_date" => vec![f(vec![], Date, current_date)],
        "currenttime" | "current_time" => vec![f(vec![], Time, current_time)],
        "totimestamp" | "to_timestamp" => vec![
            f(vec![Timeuuid], Timestamp, timeuuid_to_timestamp),
            f(vec![Date], Timestamp, date_to_timestamp),
        ],
        "dateof" => vec![f(vec![Timeuuid], Timestamp, timeuuid_to_timestamp)],
        "todate" | "to_date" => vec![
            f(vec![Timeuuid], Date, timeuuid_to_date),
            f(vec![Timestamp], Date, timestamp_to_date),
        ],
        "tounixtimestamp" | "to_unix_timestamp" => vec![
            f(vec![Timeuuid], Bigint, timeuuid_to_timestamp),
            f(vec![Timestamp], Bigint, identity),
            f(vec![Date], Bigint, date_to_timestamp),
        ],
        "unixtimestampof" => vec![f(vec![Timeuuid], Bigint, timeuuid_to_timestamp)],
        "mintimeuuid" | "min_timeuuid" => vec![f(vec![Timestamp], Timeuuid, min_timeuuid)],
        "maxtimeuuid" | "max_timeuuid" => vec![f(vec![Timestamp], Timeuuid, max_timeuuid)],
        _ => blob_conversion(name).into_iter().collect(),
    }
}

/// `blobAsT` / `blob_as_T` and `TAsBlob` / `T_as_blob` for every native type T.
fn blob_conversion(name: &str) -> Option<(Vec<CqlType>, CqlType, Exec)> {
    if let Some(t) = name
        .strip_prefix("blob_as_")
        .or_else(|| name.strip_prefix("blobas"))
    {
        let ty = CqlType::from_native_name(t).filter(|t| *t != CqlType::Blob)?;
        let exec = from_blob_exec(&ty)?;
        return Some((vec![CqlType::Blob], ty, exec));
    }
    let t = name
        .strip_suffix("_as_blob")
        .or_else(|| name.strip_suffix("asblob"))?;
    let ty = CqlType::from_native_name(t).filter(|t| *t != CqlType::Blob)?;
    Some((vec![ty], CqlType::Blob, identity))
}

macro_rules! from_blob {
    ($($fn_name:ident => $ty:expr),* $(,)?) => {
        $(
            fn $fn_name(args: &[Option<Bytes>]) -> CqlResult<Option<Bytes>> {
                from_blob_checked(&$ty, args)
            }
        )*
        fn from_blob_exec(ty: &CqlType) -> Option<Exec> {
            $( if *ty == $ty { return Some($fn_name as Exec); } )*
            None
        }
    };
}

from_blob! {
    blob_as_ascii => CqlType::Ascii,
    blob_as_bigint => CqlType::Bigint,
    blob_as_boolean => CqlType::Boolean,
    blob_as_counter => CqlType::Counter,
    blob_as_date => CqlType::Date,
    blob_as_decimal => CqlType::Decimal,
    blob_as_double => CqlType::Double,
    blob_as_duration => CqlType::Duration,
    blob_as_float => CqlType::Float,
    blob_as_inet => CqlType::Inet,
    blob_as_int => CqlType::Int,
    blob_as_smallint => CqlType::Smallint,
    blob_as_text => CqlType::Text,
    blob_as_time => CqlType::Time,
    blob_as_timestamp => CqlType::Timestamp,
    blob_as_timeuuid => CqlType::Timeuuid,
    blob_as_tinyint => CqlType::Tinyint,
    blob_as_uuid => CqlType::Uuid,
    blob_as_varint => CqlType::Varint,
}

fn from_blob_checked(ty: &CqlType, args: &[Option<Bytes>]) -> CqlResult<Option<Bytes>> {
    match args.first().cloned().flatten() {
        None => Ok(None),
        Some(b) => {
            codec::validate(ty, &b).map_err(|_| {
                CqlError::invalid(format!(
                    "In call to function system.blobas{}, value 0x{} is not a valid binary representation for type {}",
                    ty.cql_name(),
                    codec::hex(&b),
                    ty.cql_name()
                ))
            })?;
            Ok(Some(b))
        }
    }
}

fn identity(args: &[Option<Bytes>]) -> CqlResult<Option<Bytes>> {
    Ok(args.first().cloned().flatten())
}

/// The first argument if present and non-empty.
fn arg(args: &[Option<Bytes>]) -> Option<&[u8]> {
    args.first()
        .and_then(|a| a.as_deref())
        .filter(|b| !b.is_empty())
}

fn now(_: &[Option<Bytes>]) -> CqlResult<Option<Bytes>> {
    Ok(Some(Bytes::copy_from_slice(timeuuid_now().as_bytes())))
}

fn random_uuid(_: &[Option<Bytes>]) -> CqlResult<Option<Bytes>> {
    Ok(Some(Bytes::copy_from_slice(Uuid::new_v4().as_bytes())))
}

fn current_timestamp(_: &[Option<Bytes>]) -> CqlResult<Option<Bytes>> {
    Ok(Some(Bytes::copy_from_slice(&now_millis().to_be_bytes())))
}

fn current_date(_: &[Option<Bytes>]) -> CqlResult<Option<Bytes>> {
    Ok(Some(date_bytes(now_millis())))
}

fn current_time(_: &[Option<Bytes>]) -> CqlResult<Option<Bytes>> {
    let ns = now_millis().rem_euclid(MILLIS_PER_DAY) * NANOS_PER_MILLI;
    Ok(Some(Bytes::copy_from_slice(&ns.to_be_bytes())))
}

fn date_bytes(ms: i64) -> Bytes {
    let days = (ms.div_euclid(MILLIS_PER_DAY) + DATE_EPOCH) as u32;
    Bytes::copy_from_slice(&days.to_be_bytes())
}

fn timeuuid_to_timestamp(args: &[Option<Bytes>]) -> CqlResult<Option<Bytes>> {
    Ok(arg(args)
        .and_then(timeuuid_millis)
        .map(|ms| Bytes::copy_from_slice(&ms.to_be_bytes())))
}

fn timeuuid_to_date(args: &[Option<Bytes>]) -> CqlResult<Option<Bytes>> {
    Ok(arg(args).and_then(timeuuid_millis).map(date_bytes))
}

fn timestamp_to_date(args: &[Option<Bytes>]) -> CqlResult<Option<Bytes>> {
    Ok(arg(args)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(|b| date_bytes(i64::from_be_bytes(b))))
}

fn date_to_timestamp(args: &[Option<Bytes>]) -> CqlResult<Option<Bytes>> {
    Ok(arg(args)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| {
            let ms = (u32::from_be_bytes(b) as i64 - DATE_EPOCH) * MILLIS_PER_DAY;
            Bytes::copy_from_slice(&ms.to_be_bytes())
        }))
}

fn min_timeuuid(args: &[Option<Bytes>]) -> CqlResult<Option<Bytes>> {
    Ok(arg(args)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(|b| {
            // Cassandra's lsb bounds: timeuuid lsb compare as signed bytes.
            let u = timeuuid_at(i64::from_be_bytes(b), 0, 0x8080_8080_8080_8080);
            Bytes::copy_from_slice(&u)
        }))
}

fn max_timeuuid(args: &[Option<Bytes>]) -> CqlResult<Option<Bytes>> {
    Ok(arg(args)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(|b| {
            let u = timeuuid_at(i64::from_be_bytes(b), 9999, 0x7f7f_7f7f_7f7f_7f7f);
            Bytes::copy_from_slice(&u)
        }))
}

/// 100 ns intervals between 1582-10-15 (the uuid epoch) and 1970-01-01.
const UUID_EPOCH_OFFSET: i64 = 0x01B2_1DD2_1381_4000;

/// The Unix milliseconds of a version-1 uuid.
pub fn timeuuid_millis(b: &[u8]) -> Option<i64> {
    let b: [u8; 16] = b.try_into().ok()?;
    let msb = u64::from_be_bytes(b[..8].try_into().ok()?);
    let ts = (super::compare::reorder_msb(msb) & 0x0fff_ffff_ffff_ffff) as i64;
    Some((ts - UUID_EPOCH_OFFSET).div_euclid(10_000))
}

/// A version-1 uuid for `millis` (+ `extra` 100 ns ticks) with the given clock/node bits.
fn timeuuid_at(millis: i64, extra: i64, lsb: u64) -> [u8; 16] {
    let ts = (millis.wrapping_mul(10_000) + UUID_EPOCH_OFFSET + extra) as u64;
    make_v1(ts, lsb)
}

fn make_v1(ts: u64, lsb: u64) -> [u8; 16] {
    let ts = ts & 0x0fff_ffff_ffff_ffff;
    let msb = (ts << 32) | ((ts >> 16) & 0xffff_0000) | 0x1000 | (ts >> 48);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&msb.to_be_bytes());
    out[8..].copy_from_slice(&lsb.to_be_bytes());
    out
}

/// A fresh version-1 uuid: strictly increasing timestamps within this process (so the
/// order of `now()` calls is the timeuuid order), a random clock sequence and node chosen
/// once per process with the multicast bit set as RFC 4122 asks for random nodes.
pub fn timeuuid_now() -> Uuid {
    static LAST: AtomicU64 = AtomicU64::new(0);
    static LSB: OnceLock<u64> = OnceLock::new();
    let lsb = *LSB.get_or_init(|| {
        let r: u64 = rand::random();
        // variant 10xx in the clock sequence, multicast bit in the node.
        (r & 0x3fff_ffff_ffff_ffff | 0x8000_0000_0000_0000) | 0x0000_0100_0000_0000
    });
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_nanos() / 100) as u64)
        .unwrap_or(0)
        + UUID_EPOCH_OFFSET as u64;
    let mut prev = LAST.load(Ordering::Relaxed);
    let ts = loop {
        let next = wall.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(p) => prev = p,
        }
    };
    Uuid::from_bytes(make_v1(ts, lsb))
}
