//! The per-connection codec: splits the byte stream into envelopes (unframed, or inside v5
//! frames once framing starts), decompresses bodies, decodes requests and encodes responses.

use bytes::{BufMut, Bytes, BytesMut};

use super::frame;
use super::primitives::{write_bytes_map, write_string_list, write_uuid};
use super::request::decode_request;
use super::response::encode_response;
use super::{MAX_BODY_LEN, MAX_VERSION, MIN_VERSION, Opcode, Request, Response, ResponseExtras};
use crate::error::CqlError;

/// Negotiated body compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Lz4,
    Snappy,
}

impl Compression {
    /// The STARTUP `COMPRESSION` value, case-insensitive as in Cassandra.
    pub fn from_name(name: &str) -> Option<Compression> {
        match name.to_ascii_lowercase().as_str() {
            "lz4" => Some(Compression::Lz4),
            "snappy" => Some(Compression::Snappy),
            _ => None,
        }
    }
}

/// A request envelope's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub flags: u8,
    pub stream: i16,
    pub opcode: u8,
}

/// Envelope header flags (v5 spec §2.2).
pub mod flags {
    pub const COMPRESSION: u8 = 0x01;
    pub const TRACING: u8 = 0x02;
    pub const CUSTOM_PAYLOAD: u8 = 0x04;
    pub const WARNING: u8 = 0x08;
    pub const USE_BETA: u8 = 0x10;
}

/// Envelope header length for v3+.
pub const HEADER_LEN: usize = 9;
/// Header length of protocol v1/v2, whose stream id is a single byte.
const LEGACY_HEADER_LEN: usize = 8;
/// The version used to answer requests whose own version we cannot speak. Every driver
/// reads a v4 header, and gocql takes the header version as its next attempt.
pub const FALLBACK_VERSION: u8 = 4;

/// What one complete envelope decoded to.
#[derive(Debug)]
pub enum Decoded {
    /// A well-formed request.
    Request { header: Header, request: Request },
    /// A complete envelope that cannot be served (bad body, unknown opcode, unsupported
    /// version): answer `error` on `stream` with protocol `version` and keep the connection.
    Refused {
        version: u8,
        stream: i16,
        error: CqlError,
    },
}

/// The stream cannot be parsed any further: answer `error` (stream `stream`, protocol
/// `version`) and close the connection.
#[derive(Debug)]
pub struct Fatal {
    pub version: u8,
    pub stream: i16,
    pub error: CqlError,
}

/// The message drivers look for to step down to an older version (cassandra-driver
/// matches `unsupported protocol version`, others `Invalid or unsupported protocol
/// version`). Same text as Cassandra 4+ `ProtocolVersion.invalidVersionMessage`.
pub fn unsupported_version_message(version: u8) -> String {
    format!(
        "Invalid or unsupported protocol version ({version}); supported versions are (3/v3, 4/v4, 5/v5)"
    )
}

fn is_supported(version: u8) -> bool {
    (MIN_VERSION..=MAX_VERSION).contains(&version)
}

/// Codec state for one connection.
#[derive(Debug, Default)]
pub struct ProtocolCodec {
    /// Fixed by the first accepted request.
    version: Option<u8>,
    compression: Option<Compression>,
    framing: bool,
    /// Envelope bytes taken out of v5 frames and not yet decoded: the rest of a
    /// self-contained frame, or the parts of a large envelope received so far.
    inner: BytesMut,
    /// Whether the frame that filled `inner` was self-contained.
    inner_self_contained: bool,
}

impl ProtocolCodec {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes the next envelope from `buf`, consuming its bytes. `Ok(None)` = need more bytes.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, Fatal> {
        if !self.framing {
            return self.decode_envelope(buf, false);
        }
        loop {
            if !self.inner.is_empty() {
                let mut inner = std::mem::take(&mut self.inner);
                let decoded = self.decode_envelope(&mut inner, true);
                self.inner = inner;
                if let Some(d) = decoded? {
                    return Ok(Some(d));
                }
                if self.inner_self_contained {
                    return Err(
                        self.frame_fatal("self-contained frame ended in the middle of an envelope")
                    );
                }
            }
            let lz4 = self.frame_lz4();
            let frame = match frame::decode_frame(buf, lz4) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(Fatal {
                        version: MAX_VERSION,
                        stream: 0,
                        error: e,
                    });
                }
            };
            if frame.self_contained && !self.inner.is_empty() {
                return Err(
                    self.frame_fatal("self-contained frame while a split envelope is incomplete")
                );
            }
            self.inner_self_contained = frame.self_contained;
            self.inner.extend_from_slice(&frame.payload);
        }
    }

    fn frame_fatal(&self, msg: &str) -> Fatal {
        Fatal {
            version: MAX_VERSION,
            stream: 0,
            error: CqlError::protocol(msg),
        }
    }

    fn frame_lz4(&self) -> bool {
        self.compression == Some(Compression::Lz4)
    }

    /// The version to answer with when the request's own version is not usable.
    fn reply_version(&self, requested: u8) -> u8 {
        if is_supported(requested) {
            requested
        } else {
            self.version.unwrap_or(FALLBACK_VERSION)
        }
    }

    /// Total length of the envelope at the front of `buf` whose header is `header_len`
    /// bytes with the body length in its last 4, or `None` if the header is incomplete.
    fn envelope_len(&self, buf: &BytesMut, header_len: usize) -> Result<Option<usize>, Fatal> {
        if buf.len() < header_len {
            return Ok(None);
        }
        let l = &buf[header_len - 4..header_len];
        let len = i32::from_be_bytes([l[0], l[1], l[2], l[3]]);
        // Checked before any allocation: a header claiming 2 GB must not make us wait
        // for (or reserve) 2 GB.
        if len < 0 || len as u32 > MAX_BODY_LEN {
            return Err(Fatal {
                version: self.reply_version(buf[0]),
                stream: stream_hint(buf),
                error: CqlError::protocol(format!(
                    "envelope body length {len} is outside 0..={MAX_BODY_LEN}"
                )),
            });
        }
        Ok(Some(header_len + len as usize))
    }

    fn decode_envelope(
        &mut self,
        buf: &mut BytesMut,
        framed: bool,
    ) -> Result<Option<Decoded>, Fatal> {
        let Some(&version) = buf.first() else {
            return Ok(None);
        };
        if version & 0x80 != 0 {
            return Err(Fatal {
                version: self.reply_version(version & 0x7F),
                stream: stream_hint(buf),
                error: CqlError::protocol(format!(
                    "received a response envelope (version byte 0x{version:02X}) from a client"
                )),
            });
        }
        let header_len = match version {
            MIN_VERSION..=MAX_VERSION => HEADER_LEN,
            // Real versions we don't speak. Their header layout is known, so the envelope
            // can be skipped and refused while the connection stays usable: drivers
            // downgrade on the message (usually on a new connection, but not always).
            1 | 2 => LEGACY_HEADER_LEN,
            6 | 0x41 | 0x42 => HEADER_LEN,
            // Not a protocol we know (e.g. "GET / HTTP" starts with 0x47): nothing after
            // this byte can be trusted, not even a length.
            _ => {
                return Err(Fatal {
                    version: self.reply_version(version),
                    stream: stream_hint(buf),
                    error: CqlError::protocol(unsupported_version_message(version)),
                });
            }
        };
        let Some(total) = self.envelope_len(buf, header_len)? else {
            return Ok(None);
        };
        if buf.len() < total {
            return Ok(None);
        }
        let envelope = buf.split_to(total).freeze();
        if !is_supported(version) {
            let stream = if header_len == LEGACY_HEADER_LEN {
                envelope[2] as i8 as i16
            } else {
                i16::from_be_bytes([envelope[2], envelope[3]])
            };
            return Ok(Some(Decoded::Refused {
                version: self.reply_version(version),
                stream,
                error: CqlError::protocol(unsupported_version_message(version)),
            }));
        }
        let header = Header {
            version,
            flags: envelope[1],
            stream: i16::from_be_bytes([envelope[2], envelope[3]]),
            opcode: envelope[4],
        };
        let body = envelope.slice(HEADER_LEN..);
        let refuse = |version: u8, error: CqlError| {
            Ok(Some(Decoded::Refused {
                version,
                stream: header.stream,
                error,
            }))
        };
        if let Some(fixed) = self.version.filter(|v| *v != version) {
            return refuse(
                fixed,
                CqlError::protocol(format!(
                    "Invalid message version. Got {version} but previous messages on this connection had version {fixed}"
                )),
            );
        }
        if framed && version != 5 {
            return refuse(
                version,
                CqlError::protocol(format!("protocol v{version} envelope inside a v5 frame")),
            );
        }
        let opcode = match Opcode::from_u8(header.opcode) {
            Some(op) if op.is_request() => op,
            Some(op) => {
                return refuse(
                    version,
                    CqlError::protocol(format!(
                        "{op:?} (opcode 0x{:02X}) is a response opcode and cannot be sent by a client",
                        header.opcode
                    )),
                );
            }
            None => {
                return refuse(
                    version,
                    CqlError::protocol(format!("unknown opcode 0x{:02X}", header.opcode)),
                );
            }
        };
        // In v5 compression moved to the frames and the envelope flag is ignored.
        let body = if version < 5 && header.flags & flags::COMPRESSION != 0 {
            match self.compression {
                Some(c) => match decompress(c, &body) {
                    Ok(b) => b,
                    Err(e) => return refuse(version, e),
                },
                None => {
                    return refuse(
                        version,
                        CqlError::protocol(
                            "compressed envelope received but no compression was negotiated in STARTUP",
                        ),
                    );
                }
            }
        } else {
            body
        };
        match decode_request(version, header.flags, opcode, body) {
            Ok(request) => {
                self.version = Some(version);
                Ok(Some(Decoded::Request { header, request }))
            }
            Err(e) => refuse(version, e),
        }
    }

    /// Encodes a response envelope (framed once v5 framing started, compressed when negotiated).
    pub fn encode(
        &mut self,
        version: u8,
        stream: i16,
        extras: &ResponseExtras,
        response: &Response,
        out: &mut BytesMut,
    ) {
        // A version we can't lay out would desynchronise the client; the callers only
        // pass versions from `Decoded`/`Fatal`, which are always supported ones.
        let version = if is_supported(version) {
            version
        } else {
            FALLBACK_VERSION
        };
        let mut body = BytesMut::new();
        let mut env_flags = 0u8;
        if let Some(id) = &extras.tracing_id {
            env_flags |= flags::TRACING;
            write_uuid(&mut body, id);
        }
        // Warnings and custom payloads appeared in v4.
        if version >= 4 && !extras.warnings.is_empty() {
            env_flags |= flags::WARNING;
            write_string_list(&mut body, &extras.warnings);
        }
        if version >= 4
            && let Some(payload) = &extras.custom_payload
        {
            env_flags |= flags::CUSTOM_PAYLOAD;
            write_bytes_map(&mut body, payload);
        }
        let opcode = encode_response(version, response, &mut body);
        let body: Bytes = match self.compression {
            // Empty bodies (READY) stay uncompressed: nothing to gain, and the flag is
            // per envelope so clients handle both.
            Some(c) if !self.framing && version < 5 && !body.is_empty() => {
                env_flags |= flags::COMPRESSION;
                compress(c, &body)
            }
            _ => body.freeze(),
        };
        let mut header = [0u8; HEADER_LEN];
        header[0] = 0x80 | version;
        header[1] = env_flags;
        header[2..4].copy_from_slice(&stream.to_be_bytes());
        header[4] = opcode as u8;
        header[5..9].copy_from_slice(&(body.len() as u32).to_be_bytes());
        if self.framing {
            let mut envelope = BytesMut::with_capacity(HEADER_LEN + body.len());
            envelope.put_slice(&header);
            envelope.put_slice(&body);
            frame::encode_frames(&envelope, self.frame_lz4(), out);
        } else {
            out.reserve(HEADER_LEN + body.len());
            out.put_slice(&header);
            out.put_slice(&body);
        }
    }

    /// Compress bodies from now on (set after STARTUP is answered).
    pub fn set_compression(&mut self, compression: Option<Compression>) {
        self.compression = compression;
    }

    /// Switch to v5 framing in both directions (after READY/AUTHENTICATE was encoded).
    pub fn start_v5_framing(&mut self) {
        self.framing = true;
    }

    /// Whether v5 framing has started.
    pub fn is_framing(&self) -> bool {
        self.framing
    }

    /// The protocol version fixed by the first accepted request, if any.
    pub fn version(&self) -> Option<u8> {
        self.version
    }
}

/// Bytes 2..4 read as a v3+ stream id, so that even a fatal error names the request.
fn stream_hint(buf: &[u8]) -> i16 {
    if buf.len() >= 4 {
        i16::from_be_bytes([buf[2], buf[3]])
    } else {
        0
    }
}

/// Compresses a v3/v4 body: LZ4 with a big-endian length prefix, or raw Snappy.
pub fn compress(c: Compression, body: &[u8]) -> Bytes {
    match c {
        Compression::Lz4 => {
            let compressed = lz4_flex::block::compress(body);
            let mut out = BytesMut::with_capacity(4 + compressed.len());
            out.put_u32(body.len() as u32);
            out.put_slice(&compressed);
            out.freeze()
        }
        Compression::Snappy => match snap::raw::Encoder::new().compress_vec(body) {
            Ok(v) => Bytes::from(v),
            // Only fails for inputs over ~4 GB, which MAX_BODY_LEN rules out.
            Err(_) => Bytes::copy_from_slice(body),
        },
    }
}

/// Decompresses a v3/v4 body. The claimed size is checked against MAX_BODY_LEN and
/// against the codec's best possible ratio before the output is allocated, so a small
/// envelope cannot make us reserve hundreds of megabytes.
pub fn decompress(c: Compression, body: &[u8]) -> Result<Bytes, CqlError> {
    match c {
        Compression::Lz4 => {
            if body.len() < 4 {
                return Err(CqlError::protocol(
                    "LZ4 body shorter than its 4-byte length prefix",
                ));
            }
            let len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
            let block = &body[4..];
            // An LZ4 sequence expands at most ~255:1.
            if len > MAX_BODY_LEN as usize || len > block.len().saturating_mul(255) + 16 {
                return Err(CqlError::protocol(format!(
                    "LZ4 body claims an uncompressed length of {len} bytes for {} compressed bytes",
                    block.len()
                )));
            }
            let out = lz4_flex::block::decompress(block, len)
                .map_err(|e| CqlError::protocol(format!("invalid LZ4 body: {e}")))?;
            if out.len() != len {
                return Err(CqlError::protocol(format!(
                    "LZ4 body decompressed to {} bytes, prefix says {len}",
                    out.len()
                )));
            }
            Ok(Bytes::from(out))
        }
        Compression::Snappy => {
            let len = snap::raw::decompress_len(body)
                .map_err(|e| CqlError::protocol(format!("invalid Snappy body: {e}")))?;
            // A Snappy copy element expands at most ~22:1.
            if len > MAX_BODY_LEN as usize || len > body.len().saturating_mul(32) + 32 {
                return Err(CqlError::protocol(format!(
                    "Snappy body claims an uncompressed length of {len} bytes for {} compressed bytes",
                    body.len()
                )));
            }
            snap::raw::Decoder::new()
                .decompress_vec(body)
                .map(Bytes::from)
                .map_err(|e| CqlError::protocol(format!("invalid Snappy body: {e}")))
        }
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
