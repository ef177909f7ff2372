//! Cassandra's `Murmur3Partitioner`: the token of a partition key.
//!
//! This is MurmurHash3 x64_128 with seed 0, taking the first 64-bit half, with two of
//! Cassandra's quirks that textbook implementations (and the `murmur3` crate) lack:
//! tail bytes are sign-extended (`as i8 as i64`) before being shifted in, and a hash of
//! `i64::MIN` is normalised to `i64::MAX` because `MIN` is the ring's minimum token.
//! Drivers (python, scylla) reproduce both, so token-aware routing depends on them.

/// The smallest token, which no key maps to; also the token of the empty key.
pub const MIN_TOKEN: i64 = i64::MIN;

const C1: u64 = 0x87c3_7b91_1142_53d5;
const C2: u64 = 0x4cf5_ad43_2745_937f;

#[inline]
fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The first half of Cassandra's MurmurHash3 x64_128 of `data` (seed 0).
pub fn murmur3_h1(data: &[u8]) -> i64 {
    let len = data.len();
    let nblocks = len / 16;
    let mut h1: u64 = 0;
    let mut h2: u64 = 0;

    for block in data.chunks_exact(16).take(nblocks) {
        let mut k1 = u64::from_le_bytes(block[0..8].try_into().expect("8 bytes"));
        let mut k2 = u64::from_le_bytes(block[8..16].try_into().expect("8 bytes"));

        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);

        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }

    let tail = &data[nblocks * 16..];
    // Cassandra reads each tail byte as a signed Java byte and sign-extends it.
    let byte = |i: usize| tail[i] as i8 as i64 as u64;
    let mut k1: u64 = 0;
    let mut k2: u64 = 0;
    let rem = tail.len();
    if rem > 8 {
        for i in (8..rem).rev() {
            k2 ^= byte(i) << ((i - 8) * 8);
        }
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
    }
    if rem > 0 {
        for i in (0..rem.min(8)).rev() {
            k1 ^= byte(i) << (i * 8);
        }
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
    }

    h1 ^= len as u64;
    h2 ^= len as u64;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = h1.wrapping_add(h2);
    h1 as i64
}

/// The token of a serialized partition key, exactly as Cassandra computes it.
pub fn token(key: &[u8]) -> i64 {
    if key.is_empty() {
        return MIN_TOKEN;
    }
    let h = murmur3_h1(key);
    if h == i64::MIN { i64::MAX } else { h }
}

/// Serializes a composite partition key the way Cassandra hashes it: for each component,
/// a big-endian u16 length, the bytes, and a 0 byte. A single-column key is its raw bytes.
pub fn compose_key(components: &[&[u8]]) -> Vec<u8> {
    if components.len() == 1 {
        return components[0].to_vec();
    }
    let mut out = Vec::with_capacity(components.iter().map(|c| c.len() + 3).sum());
    for c in components {
        out.extend_from_slice(&(c.len() as u16).to_be_bytes());
        out.extend_from_slice(c);
        out.push(0);
    }
    out
}

/// Splits a composite key built by [`compose_key`] back into components; `None` if malformed.
pub fn split_key(key: &[u8], n: usize) -> Option<Vec<&[u8]>> {
    if n == 1 {
        return Some(vec![key]);
    }
    let mut out = Vec::with_capacity(n);
    let mut rest = key;
    for _ in 0..n {
        if rest.len() < 2 {
            return None;
        }
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let end = 2usize.checked_add(len)?;
        if rest.len() < end + 1 {
            return None;
        }
        out.push(&rest[2..end]);
        rest = &rest[end + 1..];
    }
    if rest.is_empty() { Some(out) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Golden vectors from the python driver's tests, the scylla driver's tests and values
    /// computed with cassandra-driver 3.30.1 (../shared/cql-conformance.md §4.3).
    #[test]
    fn golden_tokens() {
        let cases: Vec<(Vec<u8>, i64)> = vec![
            (b"123".to_vec(), -7468325962851647638),
            (hex(&"00ff10fa99".repeat(10)), 5837342703291459765),
            (hex(&"fe".repeat(8)), -8927430733708461935),
            (hex(&"10".repeat(8)), 1446172840243228796),
            (b"9223372036854775807".to_vec(), 7162290910810015547),
            (b"test".to_vec(), -6017608668500074083),
            (b"xd".to_vec(), 4507812186440344727),
            (b"primary_key".to_vec(), -1632642444691073360),
            ("kremówki".as_bytes().to_vec(), 4354931215268080151),
            (hex("00000001"), -4069959284402364209),
            (hex("00000000"), -3485513579396041028),
            (hex("0000000000000001"), 6292367497774912474),
            (hex("80"), -5284281814142962636),
            (hex("ffffff"), -9154616442117352147),
        ];
        for (key, expected) in cases {
            assert_eq!(token(&key), expected, "key {key:02x?}");
        }
    }

    #[test]
    fn composite_key_token() {
        let key = compose_key(&[&hex("00000001"), b"a"]);
        assert_eq!(
            key,
            hex("00040000000100000161 00".replace(' ', "").as_str())
        );
        assert_eq!(token(&key), 6516349416904725244);
        assert_eq!(
            split_key(&key, 2).unwrap(),
            vec![&hex("00000001")[..], b"a"]
        );
    }

    #[test]
    fn empty_key_is_min_token() {
        assert_eq!(token(b""), MIN_TOKEN);
    }

    /// Where no tail byte is >= 0x80 the result must equal textbook MurmurHash3; where one
    /// is, it must differ (that is Cassandra's quirk, which the `murmur3` crate lacks).
    #[test]
    fn matches_reference_murmur3_without_high_tail_bytes() {
        let reference = |d: &[u8]| {
            let h = murmur3::murmur3_x64_128(&mut std::io::Cursor::new(d), 0).unwrap();
            (h as u64) as i64
        };
        for d in [&b"hello world"[..], b"abcdefghijklmnopq", b"", b"\x7f\x7f"] {
            assert_eq!(murmur3_h1(d), reference(d));
        }
        assert_ne!(murmur3_h1(&[0x80]), reference(&[0x80]));
    }

    proptest::proptest! {
        #[test]
        fn split_inverts_compose(parts in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..40), 2..5)) {
            let refs: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
            let key = compose_key(&refs);
            proptest::prop_assert_eq!(split_key(&key, refs.len()).unwrap(), refs);
        }
    }
}
