//! JSON forms of CQL values as Cassandra writes them (`SELECT JSON`, `toJson()`) and reads
//! them (`INSERT JSON`, `fromJson()`): the text of `AbstractType.toJSONString` and the
//! conversions of `AbstractType.fromJSONObject`, including their error texts.

use std::cmp::Ordering;

use bytes::Bytes;
use num_bigint::BigInt;
use num_traits::Signed;
use serde_json::Value as Json;

use super::{CqlType, Value, codec, compare, literal, temporal};
use crate::error::{CqlError, CqlResult};

/// `AbstractType.toJSONString` of serialized `bytes` of type `ty`.
pub fn to_json(ty: &CqlType, bytes: &[u8]) -> String {
    match ty {
        CqlType::Ascii | CqlType::Text => {
            return quote(&String::from_utf8_lossy(bytes));
        }
        CqlType::Blob | CqlType::Custom(_) => return format!("\"0x{}\"", hex(bytes)),
        _ => {}
    }
    if bytes.is_empty() {
        // Cassandra's serializers read an empty value of a fixed-size type as null.
        return "null".into();
    }
    let Ok(v) = codec::decode(ty, bytes) else {
        return format!("\"0x{}\"", hex(bytes));
    };
    match (ty, v) {
        (_, Value::Boolean(b)) => b.to_string(),
        (_, Value::Tinyint(x)) => x.to_string(),
        (_, Value::Smallint(x)) => x.to_string(),
        (_, Value::Int(x)) => x.to_string(),
        (_, Value::Bigint(x) | Value::Counter(x)) => x.to_string(),
        (_, Value::Varint(x)) => x.to_string(),
        (_, Value::Decimal { unscaled, scale }) => java_big_decimal(&unscaled, scale),
        (_, Value::Float(f)) => {
            if f.is_finite() {
                java_float(format!("{f:?}"), format!("{f:e}"), f.abs() as f64)
            } else {
                "null".into()
            }
        }
        (_, Value::Double(f)) => {
            if f.is_finite() {
                java_float(format!("{f:?}"), format!("{f:e}"), f.abs())
            } else {
                "null".into()
            }
        }
        (_, Value::Timestamp(ms)) => {
            format!(
                "\"{}\"",
                temporal::format_timestamp(ms).replacen('T', " ", 1)
            )
        }
        (_, Value::Date(d)) => format!("\"{}\"", temporal::format_date(d)),
        (_, Value::Time(t)) => format!("\"{}\"", temporal::format_time(t)),
        (_, Value::Uuid(u) | Value::Timeuuid(u)) => format!("\"{}\"", u.hyphenated()),
        (_, Value::Inet(a)) => format!("\"{a}\""),
        (
            _,
            Value::Duration {
                months,
                days,
                nanos,
            },
        ) => format!("\"{}\"", temporal::format_duration(months, days, nanos)),
        (CqlType::List { elem, .. } | CqlType::Set { elem, .. }, _) => {
            let parts = codec::collection_elements(bytes, 1).unwrap_or_default();
            let items: Vec<String> = parts.iter().map(|p| to_json(elem, p)).collect();
            format!("[{}]", items.join(", "))
        }
        (CqlType::Vector { elem, dimension }, _) => {
            let parts = codec::split_vector(elem, *dimension, bytes).unwrap_or_default();
            let items: Vec<String> = parts.iter().map(|p| to_json(elem, p)).collect();
            format!("[{}]", items.join(", "))
        }
        (CqlType::Map { key, value, .. }, _) => {
            let parts = codec::collection_elements(bytes, 2).unwrap_or_default();
            let entries: Vec<String> = parts
                .chunks(2)
                .map(|kv| {
                    // JSON object keys must be strings: non-string keys are quoted.
                    let k = to_json(key, kv[0]);
                    let k = if k.starts_with('"') { k } else { quote(&k) };
                    format!("{k}: {}", to_json(value, kv[1]))
                })
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        (CqlType::Tuple(types), _) => {
            let fields = codec::decode_fields(bytes, types.len(), "Tuple").unwrap_or_default();
            let items: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(i, t)| match fields.get(i).copied().flatten() {
                    Some(b) => to_json(t, b),
                    None => "null".into(),
                })
                .collect();
            format!("[{}]", items.join(", "))
        }
        (CqlType::Udt { def, .. }, _) => {
            let fields = codec::decode_fields(bytes, def.fields.len(), "UDT").unwrap_or_default();
            let items: Vec<String> = def
                .fields
                .iter()
                .enumerate()
                .map(|(i, (name, t))| {
                    let v = match fields.get(i).copied().flatten() {
                        Some(b) => to_json(t, b),
                        None => "null".into(),
                    };
                    format!("{}: {v}", quote(&json_name(name)))
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        _ => format!("\"0x{}\"", hex(bytes)),
    }
}

/// A column or field name as a JSON key: names that are not lower case keep their quotes
/// so that INSERT JSON reads them back case-sensitively.
pub fn json_name(name: &str) -> String {
    if name == name.to_lowercase() {
        name.to_string()
    } else {
        format!("\"{name}\"")
    }
}

/// A JSON string literal (`Json.quoteAsJsonString` between quotes).
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Java's `Double.toString`/`Float.toString`: plain between 10^-3 and 10^7, otherwise
/// `d.dddE±n`; always with a fractional digit.
fn java_float(debug: String, sci: String, abs: f64) -> String {
    if abs == 0.0 || (1e-3..1e7).contains(&abs) {
        return debug;
    }
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exp}")
}

/// `BigDecimal.toString`: plain unless the scale is negative or the adjusted exponent is
/// below -6, then scientific (`1E+3`, `1.23E-8`).
fn java_big_decimal(unscaled: &BigInt, scale: i32) -> String {
    let digits = unscaled.abs().to_string();
    let adjusted = -(scale as i64) + digits.len() as i64 - 1;
    if scale >= 0 && adjusted >= -6 {
        return literal::format_decimal(unscaled, scale);
    }
    let sign = if unscaled.is_negative() { "-" } else { "" };
    let mut out = format!("{sign}{}", &digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    out.push('E');
    if adjusted >= 0 {
        out.push('+');
    }
    out.push_str(&adjusted.to_string());
    out
}

/// The name Java gives the class of a parsed JSON value, for Cassandra's error texts.
fn java_class(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "Boolean",
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                if i32::try_from(i).is_ok() {
                    "Integer"
                } else {
                    "Long"
                }
            } else if n.is_u64() {
                "BigInteger"
            } else {
                "Double"
            }
        }
        Json::String(_) => "String",
        Json::Array(_) => "ArrayList",
        Json::Object(_) => "LinkedHashMap",
    }
}

/// Java's `toString` of a parsed JSON value, for error texts.
fn java_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn marshal(msg: String) -> CqlError {
    CqlError::invalid(msg)
}

fn expected(what: &str, v: &Json) -> CqlError {
    marshal(format!(
        "Expected {what}, but got a {}: {}",
        java_class(v),
        java_text(v)
    ))
}

/// Parses JSON text as Cassandra's `Json.decodeJson` does.
pub fn parse(text: &str) -> CqlResult<Json> {
    serde_json::from_str(text)
        .map_err(|e| CqlError::invalid(format!("Could not decode JSON string '{text}': {e}")))
}

/// `fromJson(text)` for a receiver of type `ty`: `None` for a JSON null.
pub fn from_json_text(ty: &CqlType, text: &str) -> CqlResult<Option<Bytes>> {
    let v = parse(text)?;
    from_json(ty, &v)
}

/// `AbstractType.fromJSONObject`: the serialized value of `v` as type `ty`, `None` for null.
pub fn from_json(ty: &CqlType, v: &Json) -> CqlResult<Option<Bytes>> {
    if v.is_null() {
        return Ok(None);
    }
    let string = |v: &Json| v.as_str().map(str::to_owned);
    let b = match ty {
        CqlType::Ascii | CqlType::Text => {
            let Some(s) = string(v) else {
                return Err(expected(
                    if *ty == CqlType::Ascii {
                        "an ascii string"
                    } else {
                        "a UTF-8 string"
                    },
                    v,
                ));
            };
            literal::from_string(ty, &s)?
        }
        CqlType::Tinyint
        | CqlType::Smallint
        | CqlType::Int
        | CqlType::Bigint
        | CqlType::Counter => {
            if let Some(s) = string(v) {
                literal::from_string(ty, &s)?
            } else {
                let what = match ty {
                    CqlType::Tinyint => "a byte value",
                    CqlType::Smallint => "a short value",
                    CqlType::Int => "an int value",
                    _ => "a bigint value",
                };
                let n = v.as_i64().ok_or_else(|| expected(what, v))?;
                let fits = match ty {
                    CqlType::Tinyint => i8::try_from(n).is_ok(),
                    CqlType::Smallint => i16::try_from(n).is_ok(),
                    CqlType::Int => i32::try_from(n).is_ok(),
                    _ => true,
                };
                if !fits {
                    return Err(expected(what, v));
                }
                literal::from_string(ty, &n.to_string())?
            }
        }
        CqlType::Varint => match v {
            Json::String(s) => literal::from_string(ty, s)?,
            Json::Number(n) if n.is_i64() || n.is_u64() => {
                literal::from_string(ty, &n.to_string())?
            }
            _ => return Err(expected("an integer value", v)),
        },
        CqlType::Decimal | CqlType::Float | CqlType::Double => match v {
            Json::String(s) => literal::from_string(ty, s)?,
            Json::Number(n) => literal::from_string(ty, &n.to_string())?,
            _ => {
                return Err(marshal(format!(
                    "Value '{}' is not a valid representation of a {} value",
                    java_text(v),
                    ty.cql_name()
                )));
            }
        },
        CqlType::Boolean => match v {
            Json::Bool(b) => Bytes::from(vec![u8::from(*b)]),
            Json::String(s) => literal::from_string(ty, s)?,
            _ => return Err(expected("a boolean value", v)),
        },
        CqlType::Blob | CqlType::Custom(_) => {
            let Some(s) = string(v) else {
                return Err(marshal(format!(
                    "Value '{}' is not a valid blob representation: String representation of blob is missing 0x prefix: {}",
                    java_text(v),
                    java_text(v)
                )));
            };
            let Some(hexpart) = s.strip_prefix("0x") else {
                return Err(marshal(format!(
                    "Value '{s}' is not a valid blob representation: String representation of blob is missing 0x prefix: {s}"
                )));
            };
            literal::from_string(ty, hexpart)?
        }
        CqlType::Timestamp | CqlType::Date | CqlType::Time => match v {
            Json::String(s) => literal::from_string(ty, s)?,
            Json::Number(n) if n.is_i64() => {
                let x = n.as_i64().unwrap_or(0);
                match ty {
                    CqlType::Timestamp => Bytes::copy_from_slice(&x.to_be_bytes()),
                    CqlType::Time => Bytes::copy_from_slice(&x.to_be_bytes()),
                    _ => Bytes::copy_from_slice(&(x as u32).to_be_bytes()),
                }
            }
            _ => {
                return Err(expected(
                    match ty {
                        CqlType::Timestamp => {
                            "a long or a datestring representation of a timestamp value"
                        }
                        CqlType::Date => "a long or a datestring representation of a date value",
                        _ => "a long or a timestring representation of a time value",
                    },
                    v,
                ));
            }
        },
        CqlType::Uuid | CqlType::Timeuuid | CqlType::Inet | CqlType::Duration => {
            let Some(s) = string(v) else {
                return Err(expected("a string representation of a value", v));
            };
            literal::from_string(ty, &s)?
        }
        CqlType::List { elem, .. } | CqlType::Set { elem, .. } => {
            let Json::Array(items) = v else {
                return Err(expected("a list", v));
            };
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                parts.push(
                    from_json(elem, item)?
                        .ok_or_else(|| CqlError::invalid("Invalid null value in collection"))?,
                );
            }
            if matches!(ty, CqlType::Set { .. }) {
                parts.sort_by(|a, b| compare::compare(elem, a, b));
                parts.dedup_by(|a, b| compare::compare(elem, a, b) == Ordering::Equal);
            }
            collection(parts.iter().map(|p| vec![p.clone()]).collect())
        }
        CqlType::Vector { elem, dimension } => {
            let Json::Array(items) = v else {
                return Err(expected("a list", v));
            };
            if items.len() != *dimension as usize {
                return Err(marshal(format!(
                    "Expected {dimension} elements, but got {}",
                    items.len()
                )));
            }
            let mut values = Vec::new();
            for item in items {
                let b = from_json(elem, item)?
                    .ok_or_else(|| CqlError::invalid("Invalid null value in vector"))?;
                values.push(codec::decode(elem, &b)?);
            }
            codec::encode(&Value::Vector(values))
        }
        CqlType::Map { key, value, .. } => {
            let Json::Object(entries) = v else {
                return Err(expected("a map", v));
            };
            let mut pairs: Vec<(Bytes, Bytes)> = Vec::with_capacity(entries.len());
            for (k, val) in entries {
                let kb = match &**key {
                    CqlType::Ascii | CqlType::Text => literal::from_string(key, k)?,
                    // Non-string keys were written as their JSON text inside a string.
                    _ => {
                        let parsed = serde_json::from_str::<Json>(k)
                            .unwrap_or_else(|_| Json::String(k.clone()));
                        from_json(key, &parsed)?
                            .ok_or_else(|| CqlError::invalid("Invalid null key in map"))?
                    }
                };
                let vb = from_json(value, val)?
                    .ok_or_else(|| CqlError::invalid("Invalid null value in map"))?;
                pairs.push((kb, vb));
            }
            pairs.sort_by(|a, b| compare::compare(key, &a.0, &b.0));
            pairs.dedup_by(|a, b| compare::compare(key, &a.0, &b.0) == Ordering::Equal);
            collection(pairs.into_iter().map(|(k, v)| vec![k, v]).collect())
        }
        CqlType::Tuple(types) => {
            let Json::Array(items) = v else {
                return Err(expected("a list representation of a tuple", v));
            };
            if items.len() > types.len() {
                return Err(marshal(format!(
                    "Tuple contains extra items (expected {}): {}",
                    types.len(),
                    v
                )));
            }
            let mut fields = Vec::new();
            for (t, item) in types.iter().zip(items) {
                fields.push(from_json(t, item)?);
            }
            fields_bytes(&fields)
        }
        CqlType::Udt { def, .. } => {
            let Json::Object(entries) = v else {
                return Err(expected("a map", v));
            };
            let mut fields: Vec<Option<Bytes>> = vec![None; def.fields.len()];
            for (k, val) in entries {
                let name = match k.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    Some(quoted) => quoted.to_string(),
                    None => k.to_lowercase(),
                };
                let i = def
                    .fields
                    .iter()
                    .position(|(f, _)| *f == name)
                    .ok_or_else(|| {
                        marshal(format!(
                            "Unknown field '{name}' in value of user defined type {}",
                            def.name
                        ))
                    })?;
                fields[i] = from_json(&def.fields[i].1, val)?;
            }
            fields_bytes(&fields)
        }
        CqlType::Empty => Bytes::new(),
    };
    Ok(Some(b))
}

/// A collection's serialized form from its elements (each one or two components).
fn collection(elements: Vec<Vec<Bytes>>) -> Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(&(elements.len() as i32).to_be_bytes());
    for e in elements {
        for part in e {
            out.extend_from_slice(&(part.len() as i32).to_be_bytes());
            out.extend_from_slice(&part);
        }
    }
    Bytes::from(out)
}

/// A tuple's or UDT's serialized form from its fields.
fn fields_bytes(fields: &[Option<Bytes>]) -> Bytes {
    let mut out = Vec::new();
    for f in fields {
        match f {
            Some(b) => {
                out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                out.extend_from_slice(b);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    Bytes::from(out)
}

/// A JSON object's keys as column names: quoted keys keep their case, others are folded to
/// lower case (`Json.handleCaseSensitivity`).
pub fn column_key(k: &str) -> String {
    match k.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(quoted) => quoted.to_string(),
        None => k.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_number_forms() {
        assert_eq!(to_json(&CqlType::Double, &1.0f64.to_be_bytes()), "1.0");
        assert_eq!(to_json(&CqlType::Double, &1e10f64.to_be_bytes()), "1.0E10");
        assert_eq!(
            to_json(&CqlType::Double, &1.5e-5f64.to_be_bytes()),
            "1.5E-5"
        );
        assert_eq!(to_json(&CqlType::Float, &2.5f32.to_be_bytes()), "2.5");
        assert_eq!(java_big_decimal(&BigInt::from(1), -3), "1E+3");
        assert_eq!(java_big_decimal(&BigInt::from(123), 2), "1.23");
        assert_eq!(java_big_decimal(&BigInt::from(123), 10), "1.23E-8");
    }

    #[test]
    fn round_trips() {
        let m = CqlType::Map {
            key: Box::new(CqlType::Int),
            value: Box::new(CqlType::Text),
            frozen: false,
        };
        let b = from_json_text(&m, r#"{"2": "b", "1": "a"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(to_json(&m, &b), r#"{"1": "a", "2": "b"}"#);
        let ts = from_json_text(&CqlType::Timestamp, r#""2024-01-01 00:00:00Z""#)
            .unwrap()
            .unwrap();
        assert_eq!(
            to_json(&CqlType::Timestamp, &ts),
            "\"2024-01-01 00:00:00.000Z\""
        );
        let blob = from_json_text(&CqlType::Blob, r#""0x0102""#)
            .unwrap()
            .unwrap();
        assert_eq!(to_json(&CqlType::Blob, &blob), "\"0x0102\"");
    }
}
