//! The notation of the native protocol spec (v4/v5 §3): a bounds-checked reader over a
//! body and writers appending to a `BytesMut`. Readers never panic: every short read or
//! malformed value is a `CqlError::Protocol` naming what was being read.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};

use super::BoundValue;
use crate::error::{Consistency, CqlError};

type Result<T> = std::result::Result<T, CqlError>;

fn short_read(what: &str, need: usize, have: usize) -> CqlError {
    CqlError::protocol(format!(
        "not enough bytes to read {what}: need {need}, have {have}"
    ))
}

/// A cursor over one envelope body. Slices share the body's allocation.
#[derive(Clone, Debug)]
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next `n` bytes, without copying.
    pub fn take(&mut self, n: usize, what: &str) -> Result<Bytes> {
        if self.remaining() < n {
            return Err(short_read(what, n, self.remaining()));
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        if self.remaining() < N {
            return Err(short_read(what, N, self.remaining()));
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        Ok(out)
    }

    /// [byte]
    pub fn byte(&mut self) -> Result<u8> {
        Ok(self.array::<1>("[byte]")?[0])
    }

    /// [short] (unsigned)
    pub fn short(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array("[short]")?))
    }

    /// [int]
    pub fn int(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array("[int]")?))
    }

    /// [long]
    pub fn long(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array("[long]")?))
    }

    /// [uuid]
    pub fn uuid(&mut self) -> Result<[u8; 16]> {
        self.array("[uuid]")
    }

    fn utf8(bytes: Bytes, what: &str) -> Result<String> {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| CqlError::protocol(format!("{what} is not valid UTF-8")))
    }

    /// [string]
    pub fn string(&mut self) -> Result<String> {
        let n = self.short()? as usize;
        let b = self.take(n, "[string]")?;
        Self::utf8(b, "[string]")
    }

    /// [long string]
    pub fn long_string(&mut self) -> Result<String> {
        let n = self.int()?;
        if n < 0 {
            return Err(CqlError::protocol(format!(
                "negative [long string] length {n}"
            )));
        }
        let b = self.take(n as usize, "[long string]")?;
        Self::utf8(b, "[long string]")
    }

    /// [string list]
    pub fn string_list(&mut self) -> Result<Vec<String>> {
        let n = self.short()? as usize;
        // Each element needs at least its 2-byte length: don't trust `n` for capacity.
        let mut out = Vec::with_capacity(n.min(self.remaining() / 2));
        for _ in 0..n {
            out.push(self.string()?);
        }
        Ok(out)
    }

    /// [bytes]; a negative length is null.
    pub fn bytes(&mut self) -> Result<Option<Bytes>> {
        let n = self.int()?;
        if n < 0 {
            return Ok(None);
        }
        self.take(n as usize, "[bytes]").map(Some)
    }

    /// [value]: −1 null, −2 unset (v4+), anything below is invalid. In v3 values are
    /// plain [bytes], where every negative length means null.
    pub fn value(&mut self, version: u8) -> Result<BoundValue> {
        let n = self.int()?;
        match n {
            0.. => Ok(BoundValue::Value(self.take(n as usize, "[value]")?)),
            _ if version < 4 => Ok(BoundValue::Null),
            -1 => Ok(BoundValue::Null),
            -2 => Ok(BoundValue::Unset),
            _ => Err(CqlError::protocol(format!("invalid [value] length {n}"))),
        }
    }

    /// [short bytes]
    pub fn short_bytes(&mut self) -> Result<Bytes> {
        let n = self.short()? as usize;
        self.take(n, "[short bytes]")
    }

    /// [inetaddr]
    pub fn inetaddr(&mut self) -> Result<IpAddr> {
        match self.byte()? {
            4 => Ok(IpAddr::V4(Ipv4Addr::from(self.array::<4>("[inetaddr]")?))),
            16 => Ok(IpAddr::V6(Ipv6Addr::from(self.array::<16>("[inetaddr]")?))),
            n => Err(CqlError::protocol(format!(
                "invalid [inetaddr] size {n} (expected 4 or 16)"
            ))),
        }
    }

    /// [inet]
    pub fn inet(&mut self) -> Result<SocketAddr> {
        let ip = self.inetaddr()?;
        let port = self.int()?;
        let port = u16::try_from(port)
            .map_err(|_| CqlError::protocol(format!("invalid [inet] port {port}")))?;
        Ok(SocketAddr::new(ip, port))
    }

    /// [consistency]
    pub fn consistency(&mut self) -> Result<Consistency> {
        let v = self.short()?;
        Consistency::from_u16(v)
            .ok_or_else(|| CqlError::protocol(format!("unknown consistency level 0x{v:04x}")))
    }

    /// [string map]. Later duplicates win, as in Cassandra's HashMap.
    pub fn string_map(&mut self) -> Result<HashMap<String, String>> {
        let n = self.short()? as usize;
        let mut out = HashMap::with_capacity(n.min(self.remaining() / 4));
        for _ in 0..n {
            let k = self.string()?;
            let v = self.string()?;
            out.insert(k, v);
        }
        Ok(out)
    }

    /// [string multimap], in wire order.
    pub fn string_multimap(&mut self) -> Result<Vec<(String, Vec<String>)>> {
        let n = self.short()? as usize;
        let mut out = Vec::with_capacity(n.min(self.remaining() / 4));
        for _ in 0..n {
            let k = self.string()?;
            let v = self.string_list()?;
            out.push((k, v));
        }
        Ok(out)
    }

    /// [bytes map], in wire order; null values are kept as `None`.
    pub fn bytes_map(&mut self) -> Result<Vec<(String, Option<Bytes>)>> {
        let n = self.short()? as usize;
        let mut out = Vec::with_capacity(n.min(self.remaining() / 6));
        for _ in 0..n {
            let k = self.string()?;
            let v = self.bytes()?;
            out.push((k, v));
        }
        Ok(out)
    }

    /// [unsigned vint]
    pub fn unsigned_vint(&mut self) -> Result<u64> {
        let first = self.byte()?;
        let extra = first.leading_ones() as usize;
        if extra == 0 {
            return Ok(first as u64);
        }
        // With 8 extra bytes the first byte carries no value bits.
        let mut v = if extra >= 8 {
            0
        } else {
            (first & (0xFF >> extra)) as u64
        };
        let rest = self.take(extra, "[unsigned vint]")?;
        for b in rest.iter() {
            v = (v << 8) | *b as u64;
        }
        Ok(v)
    }

    /// [vint] (zig-zag)
    pub fn vint(&mut self) -> Result<i64> {
        let n = self.unsigned_vint()?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }
}

/// [byte]
pub fn write_byte(out: &mut BytesMut, v: u8) {
    out.put_u8(v);
}

/// [short]
pub fn write_short(out: &mut BytesMut, v: u16) {
    out.put_u16(v);
}

/// [int]
pub fn write_int(out: &mut BytesMut, v: i32) {
    out.put_i32(v);
}

/// [long]
pub fn write_long(out: &mut BytesMut, v: i64) {
    out.put_i64(v);
}

/// [uuid]
pub fn write_uuid(out: &mut BytesMut, v: &[u8; 16]) {
    out.put_slice(v);
}

/// Saturates at u16::MAX so an oversized caller bug yields a short value, not a panic or
/// a desynchronised stream.
fn short_len(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

fn int_len(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// [string]. Strings longer than 65535 bytes are truncated at a char boundary.
pub fn write_string(out: &mut BytesMut, s: &str) {
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u16(end as u16);
    out.put_slice(&s.as_bytes()[..end]);
}

/// [long string]
pub fn write_long_string(out: &mut BytesMut, s: &str) {
    out.put_i32(int_len(s.len()));
    out.put_slice(s.as_bytes());
}

/// [string list]
pub fn write_string_list<S: AsRef<str>>(out: &mut BytesMut, list: &[S]) {
    out.put_u16(short_len(list.len()));
    for s in list.iter().take(u16::MAX as usize) {
        write_string(out, s.as_ref());
    }
}

/// [bytes]; `None` is null (−1).
pub fn write_bytes(out: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => out.put_i32(-1),
        Some(b) => {
            out.put_i32(int_len(b.len()));
            out.put_slice(b);
        }
    }
}

/// [value]
pub fn write_value(out: &mut BytesMut, v: &BoundValue) {
    match v {
        BoundValue::Null => out.put_i32(-1),
        BoundValue::Unset => out.put_i32(-2),
        BoundValue::Value(b) => write_bytes(out, Some(b)),
    }
}

/// [short bytes]
pub fn write_short_bytes(out: &mut BytesMut, b: &[u8]) {
    let n = short_len(b.len());
    out.put_u16(n);
    out.put_slice(&b[..n as usize]);
}

/// [inetaddr]
pub fn write_inetaddr(out: &mut BytesMut, ip: &IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            out.put_u8(4);
            out.put_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.put_u8(16);
            out.put_slice(&a.octets());
        }
    }
}

/// [inet]
pub fn write_inet(out: &mut BytesMut, addr: &SocketAddr) {
    write_inetaddr(out, &addr.ip());
    out.put_i32(addr.port() as i32);
}

/// [consistency]
pub fn write_consistency(out: &mut BytesMut, c: Consistency) {
    out.put_u16(c as u16);
}

/// [string map]
pub fn write_string_map<K: AsRef<str>, V: AsRef<str>>(out: &mut BytesMut, map: &[(K, V)]) {
    out.put_u16(short_len(map.len()));
    for (k, v) in map.iter().take(u16::MAX as usize) {
        write_string(out, k.as_ref());
        write_string(out, v.as_ref());
    }
}

/// [string multimap]
pub fn write_string_multimap(out: &mut BytesMut, map: &[(String, Vec<String>)]) {
    out.put_u16(short_len(map.len()));
    for (k, v) in map.iter().take(u16::MAX as usize) {
        write_string(out, k);
        write_string_list(out, v);
    }
}

/// [bytes map]
pub fn write_bytes_map(out: &mut BytesMut, map: &[(String, Bytes)]) {
    out.put_u16(short_len(map.len()));
    for (k, v) in map.iter().take(u16::MAX as usize) {
        write_string(out, k);
        write_bytes(out, Some(v));
    }
}

/// [unsigned vint]
pub fn write_unsigned_vint(out: &mut BytesMut, v: u64) {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    // Each extra byte adds 8 value bits but costs one marker bit in the first byte.
    let extra = if bits <= 7 {
        0
    } else {
        ((bits - 1) / 7).min(8)
    };
    if extra == 0 {
        out.put_u8(v as u8);
        return;
    }
    let mut buf = [0u8; 9];
    let mut x = v;
    for i in (1..=extra).rev() {
        buf[i] = x as u8;
        x >>= 8;
    }
    let marker = if extra >= 8 { 0xFF } else { !(0xFFu8 >> extra) };
    buf[0] = marker | x as u8;
    out.put_slice(&buf[..=extra]);
}

/// [vint] (zig-zag)
pub fn write_vint(out: &mut BytesMut, v: i64) {
    write_unsigned_vint(out, ((v >> 63) ^ (v << 1)) as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(b: &[u8]) -> Reader {
        Reader::new(Bytes::copy_from_slice(b))
    }

    fn is_protocol<T: std::fmt::Debug>(r: Result<T>) -> bool {
        matches!(r, Err(CqlError::Protocol(_)))
    }

    #[test]
    fn fixed_width_integers() {
        let mut r = reader(&[
            0xAB, 0x01, 0x02, 0xFF, 0xFF, 0xFF, 0xFE, 0, 0, 0, 0, 0, 0, 0, 7,
        ]);
        assert_eq!(r.byte().unwrap(), 0xAB);
        assert_eq!(r.short().unwrap(), 0x0102);
        assert_eq!(r.int().unwrap(), -2);
        assert_eq!(r.long().unwrap(), 7);
        assert!(r.is_empty());
        assert!(is_protocol(r.byte()));
        assert!(is_protocol(reader(&[1]).short()));
        assert!(is_protocol(reader(&[1, 2, 3]).int()));
        assert!(is_protocol(reader(&[1; 7]).long()));

        let mut out = BytesMut::new();
        write_byte(&mut out, 0xAB);
        write_short(&mut out, 0x0102);
        write_int(&mut out, -2);
        write_long(&mut out, 7);
        assert_eq!(
            &out[..],
            &[
                0xAB, 0x01, 0x02, 0xFF, 0xFF, 0xFF, 0xFE, 0, 0, 0, 0, 0, 0, 0, 7
            ]
        );
    }

    #[test]
    fn strings() {
        let mut out = BytesMut::new();
        write_string(&mut out, "héllo");
        write_long_string(&mut out, "SELECT 1");
        write_string_list(&mut out, &["a", "bc"]);
        assert_eq!(&out[..7], &[0, 6, b'h', 0xC3, 0xA9, b'l', b'l']);
        let mut r = Reader::new(out.freeze());
        assert_eq!(r.string().unwrap(), "héllo");
        assert_eq!(r.long_string().unwrap(), "SELECT 1");
        assert_eq!(r.string_list().unwrap(), vec!["a", "bc"]);
        assert!(r.is_empty());

        assert!(is_protocol(reader(&[0, 5, b'a']).string()));
        assert!(is_protocol(reader(&[0, 1, 0xFF]).string()));
        assert!(is_protocol(reader(&[0xFF, 0xFF, 0xFF, 0xFF]).long_string()));
        assert!(is_protocol(reader(&[0x7F, 0xFF, 0xFF, 0xFF]).long_string()));
        // A huge list count with no elements behind it fails without allocating.
        assert!(is_protocol(reader(&[0xFF, 0xFF]).string_list()));
    }

    #[test]
    fn long_string_is_truncated_at_char_boundary() {
        let s = "é".repeat(40_000);
        let mut out = BytesMut::new();
        write_string(&mut out, &s);
        let mut r = Reader::new(out.freeze());
        let back = r.string().unwrap();
        assert_eq!(back.len(), 65534);
    }

    #[test]
    fn bytes_and_values() {
        let mut out = BytesMut::new();
        write_bytes(&mut out, Some(b"xy"));
        write_bytes(&mut out, None);
        write_value(&mut out, &BoundValue::Unset);
        write_value(&mut out, &BoundValue::Null);
        write_value(&mut out, &BoundValue::Value(Bytes::from_static(b"z")));
        write_short_bytes(&mut out, b"id");
        let b = out.freeze();
        assert_eq!(&b[..6], &[0, 0, 0, 2, b'x', b'y']);
        let mut r = Reader::new(b.clone());
        assert_eq!(r.bytes().unwrap().as_deref(), Some(&b"xy"[..]));
        assert_eq!(r.bytes().unwrap(), None);
        assert_eq!(r.value(4).unwrap(), BoundValue::Unset);
        assert_eq!(r.value(4).unwrap(), BoundValue::Null);
        assert_eq!(
            r.value(4).unwrap(),
            BoundValue::Value(Bytes::from_static(b"z"))
        );
        assert_eq!(&r.short_bytes().unwrap()[..], b"id");
        assert!(r.is_empty());

        // v3 has no unset: every negative length is null.
        assert_eq!(
            reader(&[0xFF, 0xFF, 0xFF, 0xFE]).value(3).unwrap(),
            BoundValue::Null
        );
        assert_eq!(
            reader(&[0xFF, 0xFF, 0xFF, 0xF0]).value(3).unwrap(),
            BoundValue::Null
        );
        assert!(is_protocol(reader(&[0xFF, 0xFF, 0xFF, 0xFD]).value(4)));
        assert!(is_protocol(reader(&[0, 0, 0, 3, 1]).value(5)));
        assert!(is_protocol(reader(&[0, 0, 0, 3, 1]).bytes()));
        assert!(is_protocol(reader(&[0, 2, 1]).short_bytes()));
    }

    #[test]
    fn inet_and_consistency() {
        let v4: SocketAddr = "127.0.0.2:9042".parse().unwrap();
        let v6: SocketAddr = "[::1]:7000".parse().unwrap();
        let mut out = BytesMut::new();
        write_inet(&mut out, &v4);
        write_inet(&mut out, &v6);
        write_inetaddr(&mut out, &v4.ip());
        write_consistency(&mut out, Consistency::LocalQuorum);
        let b = out.freeze();
        assert_eq!(&b[..9], &[4, 127, 0, 0, 2, 0, 0, 0x23, 0x52]);
        let mut r = Reader::new(b);
        assert_eq!(r.inet().unwrap(), v4);
        assert_eq!(r.inet().unwrap(), v6);
        assert_eq!(r.inetaddr().unwrap(), v4.ip());
        assert_eq!(r.consistency().unwrap(), Consistency::LocalQuorum);
        assert!(r.is_empty());

        assert!(is_protocol(reader(&[5, 1, 2, 3, 4, 5]).inetaddr()));
        assert!(is_protocol(reader(&[4, 1, 2, 3]).inetaddr()));
        assert!(is_protocol(reader(&[4, 1, 2, 3, 4, 0, 1, 0, 0]).inet()));
        assert!(is_protocol(reader(&[0, 0x0B]).consistency()));
    }

    #[test]
    fn maps() {
        let mut out = BytesMut::new();
        write_string_map(&mut out, &[("CQL_VERSION", "3.0.0")]);
        write_string_multimap(
            &mut out,
            &[
                (
                    "COMPRESSION".to_string(),
                    vec!["lz4".into(), "snappy".into()],
                ),
                ("CQL_VERSION".to_string(), vec!["3.4.7".into()]),
            ],
        );
        write_bytes_map(&mut out, &[("k".to_string(), Bytes::from_static(b"v"))]);
        let mut r = Reader::new(out.freeze());
        let m = r.string_map().unwrap();
        assert_eq!(m.get("CQL_VERSION").map(String::as_str), Some("3.0.0"));
        let mm = r.string_multimap().unwrap();
        assert_eq!(mm[0].1, vec!["lz4", "snappy"]);
        assert_eq!(mm[1].0, "CQL_VERSION");
        let bm = r.bytes_map().unwrap();
        assert_eq!(bm, vec![("k".to_string(), Some(Bytes::from_static(b"v")))]);
        assert!(r.is_empty());
        assert!(is_protocol(reader(&[0, 1, 0, 1, b'k']).string_map()));
        assert!(is_protocol(
            reader(&[0, 1, 0, 1, b'k', 0]).string_multimap()
        ));
        assert!(is_protocol(reader(&[0, 1, 0, 1, b'k', 0, 0]).bytes_map()));
    }

    #[test]
    fn vints_match_the_spec_example_and_round_trip() {
        // Spec §3: 256 000 is [110]00011 11101000 00000000.
        let mut out = BytesMut::new();
        write_unsigned_vint(&mut out, 256_000);
        assert_eq!(&out[..], &[0b1100_0011, 0b1110_1000, 0]);
        assert_eq!(reader(&out).unsigned_vint().unwrap(), 256_000);

        let mut out = BytesMut::new();
        write_unsigned_vint(&mut out, u64::MAX);
        assert_eq!(&out[..], &[0xFF; 9]);

        for v in [
            0u64,
            1,
            127,
            128,
            16383,
            16384,
            1 << 20,
            1 << 35,
            1 << 55,
            (1 << 56) - 1,
            1 << 56,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = BytesMut::new();
            write_unsigned_vint(&mut out, v);
            let mut r = reader(&out);
            assert_eq!(r.unsigned_vint().unwrap(), v, "{v}");
            assert!(r.is_empty());
        }
        for v in [0i64, -1, 1, -2, 2, 63, -64, 64, i64::MIN, i64::MAX] {
            let mut out = BytesMut::new();
            write_vint(&mut out, v);
            assert_eq!(reader(&out).vint().unwrap(), v, "{v}");
        }
        let mut out = BytesMut::new();
        write_vint(&mut out, -3);
        assert_eq!(&out[..], &[5]);
        assert!(is_protocol(reader(&[0xC0, 1]).unsigned_vint()));
        assert!(is_protocol(reader(&[]).vint()));
    }
}
