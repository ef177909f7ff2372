//! The per-connection codec: splits the byte stream into envelopes (unframed, or inside v5
//! frames once framing starts), decompresses bodies, decodes requests and encodes responses.

use bytes::BytesMut;

use super::{Request, Response, ResponseExtras};
use crate::error::CqlError;

/// Negotiated body compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Lz4,
    Snappy,
}

/// A request envelope's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub flags: u8,
    pub stream: i16,
    pub opcode: u8,
}

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

/// Codec state for one connection.
#[derive(Debug, Default)]
pub struct ProtocolCodec {}

impl ProtocolCodec {
    pub fn new() -> Self {
        ProtocolCodec {}
    }

    /// Decodes the next envelope from `buf`, consuming its bytes. `Ok(None)` = need more bytes.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, Fatal> {
        let _ = buf;
        Ok(None)
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
        let _ = (version, stream, extras, response, out);
    }

    /// Compress bodies from now on (set after STARTUP is answered).
    pub fn set_compression(&mut self, compression: Option<Compression>) {
        let _ = compression;
    }

    /// Switch to v5 framing in both directions (after READY/AUTHENTICATE was encoded).
    pub fn start_v5_framing(&mut self) {}

    /// The protocol version fixed by the first accepted request, if any.
    pub fn version(&self) -> Option<u8> {
        None
    }
}
