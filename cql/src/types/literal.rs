//! From CQL terms to serialized values: literals of every type, collection/tuple/UDT
//! literals, bind markers, casts and native scalar function calls; and from values back to
//! CQL literal text (DESCRIBE, casts to text).

use std::cmp::Ordering;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use num_bigint::BigInt;
use num_traits::{Signed, Zero};
use uuid::Uuid;

use super::codec::{self, hex};
use super::compare::compare;
use super::names::quote_identifier;
use super::temporal;
use super::{CqlType, UdtDef, functions};
use crate::error::{CqlError, CqlResult};
use crate::parser::ast::{BindMarker, Literal, QualifiedName, Term, TypeExpr};

/// The outcome of evaluating a term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evaluated {
    Null,
    Unset,
    Value(Bytes),
}

/// Where bind marker values come from. The executor validates them against the marker's
/// type before handing them over.
pub trait BindSource {
    fn bound(&self, marker: &BindMarker) -> CqlResult<Evaluated>;
}

/// A [`BindSource`] for statements without markers: any marker is an error.
pub struct NoBinds;

impl BindSource for NoBinds {
    fn bound(&self, marker: &BindMarker) -> CqlResult<Evaluated> {
        Err(CqlError::invalid(format!(
            "No value bound for marker {}",
            marker.name.as_deref().unwrap_or("?")
        )))
    }
}

fn invalid(msg: impl Into<String>) -> CqlError {
    CqlError::invalid(msg)
}

/// Evaluates `term` as a value for a receiver of type `ty` named `receiver` (the name goes
/// into error messages, e.g. `Invalid STRING constant (abc) for "k" of type int`).
pub fn evaluate(
    ty: &CqlType,
    term: &Term,
    receiver: &str,
    binds: &dyn BindSource,
) -> CqlResult<Evaluated> {
    match term {
        Term::Literal(Literal::Null) if *ty == CqlType::Counter => Err(invalid(
            "Invalid null value for counter increment/decrement",
        )),
        Term::Literal(Literal::Null) => Ok(Evaluated::Null),
        Term::Literal(lit) => literal_value(ty, lit, receiver).map(Evaluated::Value),
        Term::Bind(m) => binds.bound(m),
        Term::List(items) => match ty {
            CqlType::List { elem, .. } => {
                let vals = elements(elem, items, &format!("value({receiver})"), binds)?;
                Ok(Evaluated::Value(codec::encode_collection(&vals)))
            }
            CqlType::Vector { elem, dimension } => {
                if items.len() != *dimension as usize {
                    return Err(invalid(format!(
                        "Invalid vector literal for {receiver} of type {}; expected {dimension} elements, but given {}",
                        ty.cql_name(),
                        items.len()
                    )));
                }
                let vals = elements(elem, items, &format!("value({receiver})"), binds)?;
                Ok(Evaluated::Value(codec::encode_vector(elem, &vals)))
            }
            _ => Err(invalid(format!(
                "Invalid list literal for {receiver} of type {}",
                ty.cql_name()
            ))),
        },
        Term::Set(items) => match ty {
            CqlType::Set { elem, .. } => {
                let mut vals = elements(elem, items, &format!("value({receiver})"), binds)?;
                vals.sort_by(|a, b| compare(elem, a, b));
                vals.dedup_by(|a, b| compare(elem, a, b) == Ordering::Equal);
                Ok(Evaluated::Value(codec::encode_collection(&vals)))
            }
            CqlType::Map { .. } if items.is_empty() => {
                Ok(Evaluated::Value(codec::encode_map::<Bytes, Bytes>(&[])))
            }
            _ => Err(invalid(format!(
                "Invalid set literal for {receiver} of type {}",
                ty.cql_name()
            ))),
        },
        Term::Map(entries) => match ty {
            CqlType::Map { key, value, .. } => {
                let mut vals = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let k = element(key, k, &format!("key({receiver})"), binds)?;
                    let v = element(value, v, &format!("value({receiver})"), binds)?;
                    vals.push((k, v));
                }
                // Stable sort, then keep the last of equal keys: the last value wins.
                vals.sort_by(|a, b| compare(key, &a.0, &b.0));
                let mut out: Vec<(Bytes, Bytes)> = Vec::with_capacity(vals.len());
                for (k, v) in vals {
                    match out.last_mut() {
                        Some(last) if compare(key, &last.0, &k) == Ordering::Equal => {
                            *last = (k, v)
                        }
                        _ => out.push((k, v)),
                    }
                }
                Ok(Evaluated::Value(codec::encode_map(&out)))
            }
            CqlType::Set { .. } if entries.is_empty() => {
                Ok(Evaluated::Value(codec::encode_collection::<Bytes>(&[])))
            }
            CqlType::Udt { .. }
                if entries
                    .iter()
                    .all(|(k, _)| matches!(k, Term::Identifier(_))) =>
            {
                let fields: Vec<(String, Term)> = entries
                    .iter()
                    .map(|(k, v)| match k {
                        Term::Identifier(n) => (n.clone(), v.clone()),
                        _ => (String::new(), v.clone()),
                    })
                    .collect();
                udt_literal(ty, &fields, receiver, binds)
            }
            _ => Err(invalid(format!(
                "Invalid map literal for {receiver} of type {}",
                ty.cql_name()
            ))),
        },
        Term::Udt(fields) => udt_literal(ty, fields, receiver, binds),
        Term::Tuple(items) => match ty {
            CqlType::Tuple(types) => {
                if items.len() > types.len() {
                    return Err(invalid(format!(
                        "Invalid tuple literal for {receiver}: too many elements. Type {} expects {} but got {}",
                        ty.cql_name(),
                        types.len(),
                        items.len()
                    )));
                }
                let mut fields = Vec::with_capacity(items.len());
                for (i, (t, item)) in types.iter().zip(items).enumerate() {
                    fields.push(
                        match evaluate(t, item, &format!("{receiver}[{i}]"), binds)? {
                            Evaluated::Value(v) => Some(v),
                            Evaluated::Null => None,
                            Evaluated::Unset => {
                                return Err(invalid(format!(
                                    "Invalid unset value for tuple field number {i}"
                                )));
                            }
                        },
                    );
                }
                Ok(Evaluated::Value(codec::encode_fields(&fields)))
            }
            _ => Err(invalid(format!(
                "Invalid tuple type literal for {receiver} of type {}",
                ty.cql_name()
            ))),
        },
        Term::Identifier(name) => Err(invalid(format!(
            "Invalid identifier {name} for {receiver} of type {}",
            ty.cql_name()
        ))),
        Term::FunctionCall { name, args } => call_function(ty, name, args, receiver, binds),
        Term::Cast { ty: texpr, term } => {
            let cast = type_from_expr(texpr)?;
            if !value_compatible(&cast, ty) {
                return Err(invalid(format!(
                    "Cannot assign value ({}) {} to {receiver} of type {}",
                    cast.cql_name(),
                    term_text(term),
                    ty.cql_name()
                )));
            }
            evaluate(&cast, term, receiver, binds)
        }
        Term::Negate(inner) => match evaluate(ty, inner, receiver, binds)? {
            Evaluated::Value(v) => negate(ty, &v).map(Evaluated::Value),
            other => Ok(other),
        },
    }
}

/// A bind marker found in a term, with the type and receiver name its value must have
/// (what PREPARED metadata reports for it).
#[derive(Clone, Debug, PartialEq)]
pub struct MarkerSpec {
    pub marker: BindMarker,
    pub ty: CqlType,
    /// `k`, `value(l)`, `key(m)`, `t[0]`, `u.f`, `arg0`... as Cassandra names them.
    pub receiver: String,
}

/// Lists the bind markers of `term` for a receiver of type `ty`, in term order, typed the
/// way [`evaluate`] would type them.
pub fn marker_specs(ty: &CqlType, term: &Term, receiver: &str) -> CqlResult<Vec<MarkerSpec>> {
    let mut out = Vec::new();
    collect_markers(ty, term, receiver, &mut out)?;
    Ok(out)
}

fn collect_markers(
    ty: &CqlType,
    term: &Term,
    receiver: &str,
    out: &mut Vec<MarkerSpec>,
) -> CqlResult<()> {
    match (term, ty) {
        (Term::Bind(m), _) => out.push(MarkerSpec {
            marker: m.clone(),
            ty: ty.clone(),
            receiver: receiver.to_owned(),
        }),
        (Term::List(items), CqlType::List { elem, .. } | CqlType::Vector { elem, .. })
        | (Term::Set(items), CqlType::Set { elem, .. }) => {
            for t in items {
                collect_markers(elem, t, &format!("value({receiver})"), out)?;
            }
        }
        (Term::Map(entries), CqlType::Map { key, value, .. }) => {
            for (k, v) in entries {
                collect_markers(key, k, &format!("key({receiver})"), out)?;
                collect_markers(value, v, &format!("value({receiver})"), out)?;
            }
        }
        (Term::Map(entries), CqlType::Udt { def, .. }) => {
            for (k, v) in entries {
                if let Term::Identifier(name) = k
                    && let Some((_, fty)) = def.fields.iter().find(|(f, _)| f == name)
                {
                    collect_markers(fty, v, &format!("{receiver}.{name}"), out)?;
                }
            }
        }
        (Term::Udt(fields), CqlType::Udt { def, .. }) => {
            for (name, v) in fields {
                if let Some((_, fty)) = def.fields.iter().find(|(f, _)| f == name) {
                    collect_markers(fty, v, &format!("{receiver}.{name}"), out)?;
                }
            }
        }
        (Term::Tuple(items), CqlType::Tuple(types)) => {
            for (i, (t, item)) in types.iter().zip(items).enumerate() {
                collect_markers(t, item, &format!("{receiver}[{i}]"), out)?;
            }
        }
        (Term::FunctionCall { name, args }, _) if is_from_json(&name.name) && args.len() == 1 => {
            collect_markers(&CqlType::Text, &args[0], "arg0", out)?;
        }
        (Term::FunctionCall { name, args }, _) => {
            let arg_types: Vec<Option<CqlType>> = args.iter().map(static_type).collect();
            let f = functions::resolve(&name.name, &arg_types, Some(ty))?;
            for (i, (arg, aty)) in args.iter().zip(&f.arg_types).enumerate() {
                collect_markers(aty, arg, &format!("arg{i}"), out)?;
            }
        }
        (Term::Cast { ty: texpr, term }, _) => {
            collect_markers(&type_from_expr(texpr)?, term, receiver, out)?;
        }
        (Term::Negate(inner), _) => collect_markers(ty, inner, receiver, out)?,
        _ => {}
    }
    Ok(())
}

/// Evaluates collection elements: no nulls, no unset.
fn elements(
    ty: &CqlType,
    items: &[Term],
    receiver: &str,
    binds: &dyn BindSource,
) -> CqlResult<Vec<Bytes>> {
    items
        .iter()
        .map(|t| element(ty, t, receiver, binds))
        .collect()
}

fn element(ty: &CqlType, term: &Term, receiver: &str, binds: &dyn BindSource) -> CqlResult<Bytes> {
    match evaluate(ty, term, receiver, binds)? {
        Evaluated::Value(v) => Ok(v),
        Evaluated::Null => Err(invalid("null is not supported inside collections")),
        Evaluated::Unset => Err(invalid("unset value is not supported inside collections")),
    }
}

fn udt_literal(
    ty: &CqlType,
    fields: &[(String, Term)],
    receiver: &str,
    binds: &dyn BindSource,
) -> CqlResult<Evaluated> {
    let CqlType::Udt { def, .. } = ty else {
        return Err(invalid(format!(
            "Invalid user type literal for {receiver} of type {}",
            ty.cql_name()
        )));
    };
    for (name, _) in fields {
        if !def.fields.iter().any(|(f, _)| f == name) {
            return Err(invalid(format!(
                "Unknown field '{name}' in value of user defined type {}",
                def.name
            )));
        }
    }
    let mut out = Vec::with_capacity(def.fields.len());
    for (fname, fty) in &def.fields {
        let v = match fields.iter().rev().find(|(n, _)| n == fname) {
            None => None,
            Some((_, term)) => match evaluate(fty, term, &format!("{receiver}.{fname}"), binds)? {
                Evaluated::Value(v) => Some(v),
                Evaluated::Null => None,
                Evaluated::Unset => {
                    return Err(invalid(format!(
                        "Invalid unset value for field '{fname}' of user defined type {}",
                        def.name
                    )));
                }
            },
        };
        out.push(v);
    }
    Ok(Evaluated::Value(codec::encode_fields(&out)))
}

fn is_from_json(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    matches!(
        lower.strip_prefix("system.").unwrap_or(&lower),
        "fromjson" | "from_json"
    )
}

/// `fromJson(text)`: its return type is the receiver's, which no native overload can express.
fn from_json_call(ty: &CqlType, args: &[Term], binds: &dyn BindSource) -> CqlResult<Evaluated> {
    if args.len() != 1 {
        return Err(invalid(format!(
            "Invalid number of arguments in call to function system.fromjson: 1 required but {} provided",
            args.len()
        )));
    }
    match evaluate(&CqlType::Text, &args[0], "arg0", binds)? {
        Evaluated::Value(text) => {
            let text = String::from_utf8_lossy(&text);
            Ok(match super::json::from_json_text(ty, &text)? {
                Some(b) => Evaluated::Value(b),
                None => Evaluated::Null,
            })
        }
        _ => Ok(Evaluated::Null),
    }
}

fn call_function(
    ty: &CqlType,
    name: &QualifiedName,
    args: &[Term],
    receiver: &str,
    binds: &dyn BindSource,
) -> CqlResult<Evaluated> {
    let full = match &name.keyspace {
        Some(ks) if ks != "system" => {
            return Err(invalid(format!("Unknown function {ks}.{}", name.name)));
        }
        _ => name.name.clone(),
    };
    if is_from_json(&full) {
        return from_json_call(ty, args, binds);
    }
    let arg_types: Vec<Option<CqlType>> = args.iter().map(static_type).collect();
    let f = functions::resolve(&full, &arg_types, Some(ty))?;
    if !value_compatible(&f.return_type, ty) {
        return Err(invalid(format!(
            "Type error: cannot assign result of function {} (type {}) to {receiver} (type {})",
            f.name,
            f.return_type.cql_name(),
            ty.cql_name()
        )));
    }
    let mut values = Vec::with_capacity(args.len());
    for (i, (arg, aty)) in args.iter().zip(&f.arg_types).enumerate() {
        values.push(match evaluate(aty, arg, &format!("arg{i}"), binds)? {
            Evaluated::Value(v) => Some(v),
            Evaluated::Null => None,
            Evaluated::Unset => {
                return Err(invalid(format!(
                    "Invalid unset value for argument in call to function {}",
                    f.name
                )));
            }
        });
    }
    Ok(match (f.exec)(&values)? {
        Some(v) => Evaluated::Value(v),
        None => Evaluated::Null,
    })
}

/// The type a term has regardless of its receiver (casts and function calls), used to
/// pick function overloads.
fn static_type(term: &Term) -> Option<CqlType> {
    match term {
        Term::Cast { ty, .. } => type_from_expr(ty).ok(),
        Term::FunctionCall { name, args } => {
            let arg_types: Vec<Option<CqlType>> = args.iter().map(static_type).collect();
            functions::resolve(&name.name, &arg_types, None)
                .ok()
                .map(|f| f.return_type)
        }
        _ => None,
    }
}

/// Whether a value serialized as `from` may be stored in a `to` receiver (same type up to
/// freezing, ascii into text, anything into blob).
fn value_compatible(from: &CqlType, to: &CqlType) -> bool {
    from.frozen() == to.frozen()
        || *to == CqlType::Blob
        || (*from == CqlType::Ascii && *to == CqlType::Text)
        || (*from == CqlType::Bigint && *to == CqlType::Counter)
        || matches!(to, CqlType::Custom(_))
}

/// A type written in a cast or DDL; user-defined types need [`type_from_expr_with`].
pub fn type_from_expr(expr: &TypeExpr) -> CqlResult<CqlType> {
    type_from_expr_with(expr, &|name: &QualifiedName| {
        Err(invalid(format!("Unknown type {}", name.name)))
    })
}

/// A type written in a cast or DDL, resolving user-defined type names with `udt`.
pub fn type_from_expr_with(
    expr: &TypeExpr,
    udt: &dyn Fn(&QualifiedName) -> CqlResult<Arc<UdtDef>>,
) -> CqlResult<CqlType> {
    Ok(match expr {
        TypeExpr::Native(n) => {
            CqlType::from_native_name(n).ok_or_else(|| invalid(format!("Unknown type {n}")))?
        }
        TypeExpr::List(e) => CqlType::List {
            elem: Box::new(type_from_expr_with(e, udt)?.frozen()),
            frozen: false,
        },
        TypeExpr::Set(e) => CqlType::Set {
            elem: Box::new(type_from_expr_with(e, udt)?.frozen()),
            frozen: false,
        },
        TypeExpr::Map(k, v) => CqlType::Map {
            key: Box::new(type_from_expr_with(k, udt)?.frozen()),
            value: Box::new(type_from_expr_with(v, udt)?.frozen()),
            frozen: false,
        },
        TypeExpr::Tuple(ts) => CqlType::Tuple(
            ts.iter()
                .map(|t| type_from_expr_with(t, udt).map(|t| t.frozen()))
                .collect::<CqlResult<_>>()?,
        ),
        TypeExpr::Frozen(inner) => type_from_expr_with(inner, udt)?.frozen(),
        TypeExpr::Vector(e, n) => CqlType::Vector {
            elem: Box::new(type_from_expr_with(e, udt)?.frozen()),
            dimension: *n,
        },
        TypeExpr::UserDefined(name) => CqlType::Udt {
            def: udt(name)?,
            frozen: false,
        },
        TypeExpr::Custom(class) => CqlType::Custom(class.clone()),
    })
}

/// A short rendering of a term for error messages.
fn term_text(term: &Term) -> String {
    match term {
        Term::Literal(l) => literal_text(l).1,
        Term::Bind(m) => m.name.as_ref().map_or("?".to_owned(), |n| format!(":{n}")),
        _ => format!("{term:?}"),
    }
}

/// Cassandra's constant kind and text of a literal.
fn literal_text(lit: &Literal) -> (&'static str, String) {
    match lit {
        Literal::String(s) => ("STRING", s.clone()),
        Literal::Integer(s) => ("INTEGER", s.clone()),
        Literal::Float(s) => ("FLOAT", s.clone()),
        Literal::NaN => ("FLOAT", "NaN".into()),
        Literal::Infinity => ("FLOAT", "Infinity".into()),
        Literal::NegInfinity => ("FLOAT", "-Infinity".into()),
        Literal::Boolean(b) => ("BOOLEAN", b.to_string()),
        Literal::Uuid(s) => ("UUID", s.clone()),
        Literal::Blob(s) => ("HEX", format!("0x{s}")),
        Literal::Duration(s) => ("DURATION", s.clone()),
        Literal::Null => ("NULL", "null".into()),
    }
}

/// Constants.Literal.testAssignment: which constant kinds a native type accepts.
fn assignable(lit: &Literal, ty: &CqlType) -> bool {
    use CqlType as T;
    match ty {
        T::Custom(_) => true,
        _ => match lit {
            Literal::String(_) => matches!(
                ty,
                T::Ascii | T::Text | T::Inet | T::Date | T::Time | T::Timestamp
            ),
            Literal::Integer(_) => matches!(
                ty,
                T::Bigint
                    | T::Counter
                    | T::Date
                    | T::Decimal
                    | T::Double
                    | T::Duration
                    | T::Float
                    | T::Int
                    | T::Smallint
                    | T::Time
                    | T::Timestamp
                    | T::Tinyint
                    | T::Varint
            ),
            Literal::Uuid(_) => matches!(ty, T::Uuid | T::Timeuuid),
            Literal::Float(_) | Literal::NaN | Literal::Infinity | Literal::NegInfinity => {
                matches!(ty, T::Decimal | T::Double | T::Float)
            }
            Literal::Boolean(_) => *ty == T::Boolean,
            Literal::Blob(_) => *ty == T::Blob,
            Literal::Duration(_) => *ty == T::Duration,
            Literal::Null => true,
        },
    }
}

/// Serializes one constant for `ty`.
pub fn literal_value(ty: &CqlType, lit: &Literal, receiver: &str) -> CqlResult<Bytes> {
    let (kind, text) = literal_text(lit);
    if !assignable(lit, ty) {
        return Err(invalid(format!(
            "Invalid {kind} constant ({text}) for \"{receiver}\" of type {}",
            ty.cql_name()
        )));
    }
    if let Literal::Blob(h) = lit {
        return parse_hex(h).map(Bytes::from);
    }
    from_string(ty, &text)
}

fn parse_hex(h: &str) -> CqlResult<Vec<u8>> {
    let padded;
    let h = if h.len() % 2 == 1 {
        padded = format!("0{h}");
        &padded
    } else {
        h
    };
    let b = h.as_bytes();
    let mut out = Vec::with_capacity(b.len() / 2);
    for pair in b.chunks(2) {
        let s = std::str::from_utf8(pair).unwrap_or("zz");
        out.push(
            u8::from_str_radix(s, 16)
                .map_err(|_| invalid(format!("cannot parse '{h}' as hex bytes")))?,
        );
    }
    Ok(out)
}

/// The `AbstractType.fromString` of each native type.
pub fn from_string(ty: &CqlType, s: &str) -> CqlResult<Bytes> {
    fn int<T: std::str::FromStr>(s: &str, what: &str) -> CqlResult<T> {
        s.strip_prefix('+')
            .unwrap_or(s)
            .parse::<T>()
            .map_err(|_| invalid(format!("Unable to make {what} from '{s}'")))
    }
    let empty_ok = s.is_empty() && codec::accepts_empty(ty);
    if empty_ok && !matches!(ty, CqlType::Ascii | CqlType::Text) {
        return Ok(Bytes::new());
    }
    let v: Vec<u8> = match ty {
        CqlType::Ascii => {
            if !s.is_ascii() {
                return Err(invalid(format!(
                    "Invalid ASCII character in string literal: {s}"
                )));
            }
            s.as_bytes().to_vec()
        }
        CqlType::Text => s.as_bytes().to_vec(),
        CqlType::Tinyint => int::<i8>(s, "byte")?.to_be_bytes().to_vec(),
        CqlType::Smallint => int::<i16>(s, "short")?.to_be_bytes().to_vec(),
        CqlType::Int => int::<i32>(s, "int")?.to_be_bytes().to_vec(),
        CqlType::Bigint | CqlType::Counter => int::<i64>(s, "long")?.to_be_bytes().to_vec(),
        CqlType::Varint => s
            .strip_prefix('+')
            .unwrap_or(s)
            .parse::<BigInt>()
            .map_err(|_| invalid(format!("unable to make int from '{s}'")))?
            .to_signed_bytes_be(),
        CqlType::Decimal => {
            let (unscaled, scale) = parse_decimal(s)
                .ok_or_else(|| invalid(format!("unable to make BigDecimal from '{s}'")))?;
            let mut out = scale.to_be_bytes().to_vec();
            out.extend_from_slice(&unscaled.to_signed_bytes_be());
            out
        }
        CqlType::Float => parse_java_float(s)
            .map(|f| (f as f32).to_be_bytes().to_vec())
            .ok_or_else(|| invalid(format!("Unable to make float from '{s}'")))?,
        CqlType::Double => parse_java_float(s)
            .map(|f| f.to_be_bytes().to_vec())
            .ok_or_else(|| invalid(format!("Unable to make double from '{s}'")))?,
        CqlType::Boolean => match s.to_ascii_lowercase().as_str() {
            "true" => vec![1],
            "false" => vec![0],
            _ => return Err(invalid(format!("Unable to make boolean from '{s}'"))),
        },
        CqlType::Uuid => Uuid::parse_str(s)
            .map_err(|_| invalid(format!("Unable to make UUID from '{s}'")))?
            .as_bytes()
            .to_vec(),
        CqlType::Timeuuid => {
            let u = Uuid::parse_str(s)
                .map_err(|_| invalid(format!("Unknown timeuuid representation: {s}")))?;
            if u.get_version_num() != 1 {
                return Err(invalid("TimeUUID supports only version 1 UUIDs"));
            }
            u.as_bytes().to_vec()
        }
        CqlType::Timestamp => temporal::parse_timestamp(s)?.to_be_bytes().to_vec(),
        CqlType::Date => temporal::parse_date(s)?.to_be_bytes().to_vec(),
        CqlType::Time => temporal::parse_time(s)?.to_be_bytes().to_vec(),
        CqlType::Duration => {
            let (m, d, n) = temporal::parse_duration(s)?;
            let mut out = Vec::new();
            codec::encode_duration(m, d, n, &mut out);
            out
        }
        CqlType::Inet => match s.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => a.octets().to_vec(),
            Ok(IpAddr::V6(a)) => a.octets().to_vec(),
            Err(_) => {
                return Err(invalid(format!("Unable to make inet address from '{s}'")));
            }
        },
        CqlType::Blob | CqlType::Custom(_) => parse_hex(s.strip_prefix("0x").unwrap_or(s))?,
        other => {
            return Err(invalid(format!(
                "Cannot parse '{s}' as a value of type {}",
                other.cql_name()
            )));
        }
    };
    Ok(Bytes::from(v))
}

/// Java's `Float.parseFloat`/`Double.parseDouble` on CQL float literals.
fn parse_java_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ if s
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            None
        }
        _ => s.parse::<f64>().ok(),
    }
}

/// `BigDecimal(String)`: digits with an optional point and exponent.
pub fn parse_decimal(s: &str) -> Option<(BigInt, i32)> {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (neg, m) = match mantissa.as_bytes().first()? {
        b'-' => (true, &mantissa[1..]),
        b'+' => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (int_part, frac) = m.split_once('.').unwrap_or((m, ""));
    let digits = format!("{int_part}{frac}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut unscaled: BigInt = digits.parse().ok()?;
    if neg {
        unscaled = -unscaled;
    }
    let scale = i32::try_from(frac.len() as i64 - exp).ok()?;
    Some((unscaled, scale))
}

/// Unary minus on a serialized number or duration.
fn negate(ty: &CqlType, v: &[u8]) -> CqlResult<Bytes> {
    let overflow = || invalid(format!("Cannot negate value of type {}", ty.cql_name()));
    if v.is_empty() {
        return Ok(Bytes::new());
    }
    let out: Vec<u8> = match codec::decode(ty, v)? {
        super::Value::Tinyint(x) => x.checked_neg().ok_or_else(overflow)?.to_be_bytes().to_vec(),
        super::Value::Smallint(x) => x.checked_neg().ok_or_else(overflow)?.to_be_bytes().to_vec(),
        super::Value::Int(x) => x.checked_neg().ok_or_else(overflow)?.to_be_bytes().to_vec(),
        super::Value::Bigint(x) | super::Value::Counter(x) => {
            x.checked_neg().ok_or_else(overflow)?.to_be_bytes().to_vec()
        }
        super::Value::Float(x) => (-x).to_be_bytes().to_vec(),
        super::Value::Double(x) => (-x).to_be_bytes().to_vec(),
        super::Value::Varint(x) => (-x).to_signed_bytes_be(),
        super::Value::Decimal { unscaled, scale } => {
            let mut out = scale.to_be_bytes().to_vec();
            out.extend_from_slice(&(-unscaled).to_signed_bytes_be());
            out
        }
        super::Value::Duration {
            months,
            days,
            nanos,
        } => {
            let mut out = Vec::new();
            codec::encode_duration(
                months.checked_neg().ok_or_else(overflow)?,
                days.checked_neg().ok_or_else(overflow)?,
                nanos.checked_neg().ok_or_else(overflow)?,
                &mut out,
            );
            out
        }
        _ => return Err(overflow()),
    };
    Ok(Bytes::from(out))
}

/// Renders a serialized value as a CQL literal (`'it''s'`, `0x0102`, `{1, 2}`).
pub fn to_cql_literal(ty: &CqlType, value: &[u8]) -> String {
    match ty {
        CqlType::Ascii | CqlType::Text => {
            return quote(&String::from_utf8_lossy(value));
        }
        CqlType::Blob | CqlType::Custom(_) => return format!("0x{}", hex(value)),
        _ => {}
    }
    if value.is_empty() {
        return "null".to_owned();
    }
    let Ok(v) = codec::decode(ty, value) else {
        return format!("0x{}", hex(value));
    };
    let lit = |t: &CqlType, b: &[u8]| to_cql_literal(t, b);
    match (ty, v) {
        (_, super::Value::Boolean(b)) => b.to_string(),
        (_, super::Value::Tinyint(x)) => x.to_string(),
        (_, super::Value::Smallint(x)) => x.to_string(),
        (_, super::Value::Int(x)) => x.to_string(),
        (_, super::Value::Bigint(x) | super::Value::Counter(x)) => x.to_string(),
        (_, super::Value::Varint(x)) => x.to_string(),
        (_, super::Value::Decimal { unscaled, scale }) => format_decimal(&unscaled, scale),
        (_, super::Value::Float(f)) => format_float(f as f64, f.is_nan(), f.is_infinite()),
        (_, super::Value::Double(f)) => format_float(f, f.is_nan(), f.is_infinite()),
        (_, super::Value::Timestamp(ms)) => format!("'{}'", temporal::format_timestamp(ms)),
        (_, super::Value::Date(d)) => format!("'{}'", temporal::format_date(d)),
        (_, super::Value::Time(t)) => format!("'{}'", temporal::format_time(t)),
        (_, super::Value::Uuid(u) | super::Value::Timeuuid(u)) => u.hyphenated().to_string(),
        (_, super::Value::Inet(a)) => format!("'{a}'"),
        (
            _,
            super::Value::Duration {
                months,
                days,
                nanos,
            },
        ) => temporal::format_duration(months, days, nanos),
        (CqlType::List { elem, .. } | CqlType::Vector { elem, .. }, _) => {
            let parts = split_list(ty, value);
            format!(
                "[{}]",
                parts
                    .iter()
                    .map(|p| lit(elem, p))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        (CqlType::Set { elem, .. }, _) => {
            let parts = codec::collection_elements(value, 1).unwrap_or_default();
            format!(
                "{{{}}}",
                parts
                    .iter()
                    .map(|p| lit(elem, p))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        (CqlType::Map { key, value: vt, .. }, _) => {
            let parts = codec::collection_elements(value, 2).unwrap_or_default();
            let entries: Vec<String> = parts
                .chunks(2)
                .map(|kv| format!("{}: {}", lit(key, kv[0]), lit(vt, kv[1])))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        (CqlType::Tuple(types), _) => {
            let fields = codec::decode_fields(value, types.len(), "Tuple").unwrap_or_default();
            let parts: Vec<String> = types
                .iter()
                .zip(fields.iter().map(Some).chain(std::iter::repeat(None)))
                .map(|(t, f)| match f.copied().flatten() {
                    Some(b) => lit(t, b),
                    None => "null".to_owned(),
                })
                .collect();
            format!("({})", parts.join(", "))
        }
        (CqlType::Udt { def, .. }, _) => {
            let fields = codec::decode_fields(value, def.fields.len(), "UDT").unwrap_or_default();
            let parts: Vec<String> = def
                .fields
                .iter()
                .enumerate()
                .map(|(i, (name, t))| {
                    let v = match fields.get(i).copied().flatten() {
                        Some(b) => lit(t, b),
                        None => "null".to_owned(),
                    };
                    format!("{}: {v}", quote_identifier(name))
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        _ => format!("0x{}", hex(value)),
    }
}

fn split_list<'a>(ty: &CqlType, value: &'a [u8]) -> Vec<&'a [u8]> {
    match ty {
        CqlType::Vector { elem, dimension } => {
            codec::split_vector(elem, *dimension, value).unwrap_or_default()
        }
        _ => codec::collection_elements(value, 1).unwrap_or_default(),
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn format_float(f: f64, nan: bool, inf: bool) -> String {
    if nan {
        "NaN".to_owned()
    } else if inf {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        // Debug keeps a fractional part or exponent, so the text re-parses as a float.
        format!("{f:?}")
    }
}

/// `BigDecimal.toPlainString`, switching to `<unscaled>E<exp>` for extreme scales so that a
/// tiny value cannot print a billion zeros.
pub fn format_decimal(unscaled: &BigInt, scale: i32) -> String {
    let digits = unscaled.abs().to_string();
    let sign = if unscaled.is_negative() { "-" } else { "" };
    if scale.unsigned_abs() > 100 {
        let exp = -(scale as i64);
        return format!("{sign}{digits}E{}{exp}", if exp >= 0 { "+" } else { "" });
    }
    if scale <= 0 {
        if unscaled.is_zero() {
            return "0".to_owned();
        }
        return format!("{sign}{digits}{}", "0".repeat((-scale) as usize));
    }
    let scale = scale as usize;
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale - digits.len() + 1))
    } else {
        digits
    };
    let (i, f) = padded.split_at(padded.len() - scale);
    format!("{sign}{i}.{f}")
}
