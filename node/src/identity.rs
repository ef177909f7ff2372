//! The node's persisted identity: host ID, tokens and cluster name, kept in
//! `data_dir/system/local.state` (format: `docs/formats/local-state.md`).
//!
//! These are chosen once, on first start, and must never change afterwards: other nodes know
//! this one by its host ID and own data by its tokens. So a damaged file stops start-up rather
//! than being regenerated, which would silently turn the node into a stranger holding data
//! for ranges it no longer owns.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use uuid::Uuid;

/// Format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// First bytes of every local state file.
pub const MAGIC: [u8; 8] = *b"SHOALLS\0";
const HEADER_LEN: usize = 8 + 4 + 4;
const TRAILER_LEN: usize = 4;
/// Guards the decoder against a corrupt length asking for gigabytes.
const MAX_BODY_LEN: usize = 1 << 20;

/// What the node remembers about itself across restarts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalState {
    pub host_id: Uuid,
    /// Sorted vnode tokens.
    pub tokens: Vec<i64>,
    pub cluster_name: String,
    /// Format version the state was read from or will be written in.
    pub format_version: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "local state file {} is corrupt: {reason}. Refusing to start: restore it from a backup; \
         only if this node's data is disposable, delete the whole data directory to start as a new node",
        path.display()
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "local state file {} has format version {version}, this Shoal reads up to {FORMAT_VERSION}",
        path.display()
    )]
    UnsupportedVersion { path: PathBuf, version: u32 },
    #[error("Saved cluster name {saved} != configured name {configured}")]
    ClusterNameMismatch { saved: String, configured: String },
    #[error("Cannot change the number of tokens from {saved} to {configured}")]
    NumTokensChanged { saved: usize, configured: u32 },
    #[error("num_tokens must be at least 1")]
    NoTokens,
}

/// `data_dir/system/local.state`.
pub fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("system").join("local.state")
}

/// Loads the node's state from `data_dir` (the file is `data_dir/system/local.state`), or on
/// first start creates it with a fresh host ID and `num_tokens` random tokens. Refuses to start
/// when the saved cluster name or token count differs from the configuration, as Cassandra does.
pub fn load_or_init(
    data_dir: &Path,
    cluster_name: &str,
    num_tokens: u32,
) -> Result<LocalState, IdentityError> {
    let path = state_path(data_dir);
    if let Some(state) = LocalState::load(&path)? {
        if state.cluster_name != cluster_name {
            return Err(IdentityError::ClusterNameMismatch {
                saved: state.cluster_name,
                configured: cluster_name.to_string(),
            });
        }
        if state.tokens.len() != num_tokens as usize {
            return Err(IdentityError::NumTokensChanged {
                saved: state.tokens.len(),
                configured: num_tokens,
            });
        }
        tracing::info!(host_id = %state.host_id, "loaded local state from {}", path.display());
        return Ok(state);
    }
    if num_tokens == 0 {
        return Err(IdentityError::NoTokens);
    }
    let state = LocalState {
        host_id: Uuid::new_v4(),
        tokens: shoal_gossip::tokens::random_tokens(num_tokens as usize),
        cluster_name: cluster_name.to_string(),
        format_version: FORMAT_VERSION,
    };
    state.store(&path)?;
    tracing::info!(host_id = %state.host_id, "first start: created {}", path.display());
    Ok(state)
}

impl LocalState {
    /// Reads the file at `path`; `Ok(None)` only when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, IdentityError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(IdentityError::Io {
                    action: "read",
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::decode(&bytes).map(Some).map_err(|e| match e {
            DecodeError::Corrupt(reason) => IdentityError::Corrupt {
                path: path.to_path_buf(),
                reason,
            },
            DecodeError::Version(version) => IdentityError::UnsupportedVersion {
                path: path.to_path_buf(),
                version,
            },
        })
    }

    /// Replaces the file at `path` atomically: a crash leaves either the old or the new state.
    pub fn store(&self, path: &Path) -> Result<(), IdentityError> {
        let io = |action: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |source| IdentityError::Io {
                action,
                path: p,
                source,
            }
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io("create directory", dir))?;
        let tmp = path.with_extension("state.tmp");
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        f.write_all(&self.encode()).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io("rename into place", path))?;
        // The rename is only durable once the directory entry is.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync directory", dir))?;
        Ok(())
    }

    /// The file image: see `docs/formats/local-state.md`.
    pub fn encode(&self) -> Vec<u8> {
        let mut body =
            Vec::with_capacity(16 + 2 + self.cluster_name.len() + 4 + 8 * self.tokens.len());
        body.extend_from_slice(self.host_id.as_bytes());
        let name = self.cluster_name.as_bytes();
        let name_len = u16::try_from(name.len()).expect("cluster name shorter than 64 KiB");
        body.extend_from_slice(&name_len.to_le_bytes());
        body.extend_from_slice(name);
        body.extend_from_slice(&(self.tokens.len() as u32).to_le_bytes());
        for t in &self.tokens {
            body.extend_from_slice(&t.to_le_bytes());
        }
        let mut out = Vec::with_capacity(HEADER_LEN + body.len() + TRAILER_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let corrupt = |r: &str| DecodeError::Corrupt(r.to_string());
        if bytes.len() < HEADER_LEN + TRAILER_LEN {
            return Err(DecodeError::Corrupt(format!(
                "{} bytes is shorter than any valid file",
                bytes.len()
            )));
        }
        if bytes[..8] != MAGIC {
            return Err(corrupt("bad magic bytes (not a Shoal local state file)"));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        let body_len = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
        if body_len > MAX_BODY_LEN || bytes.len() != HEADER_LEN + body_len + TRAILER_LEN {
            return Err(DecodeError::Corrupt(format!(
                "length mismatch: header says {body_len} body bytes, file has {}",
                bytes.len()
            )));
        }
        let (covered, trailer) = bytes.split_at(HEADER_LEN + body_len);
        let stored = u32::from_le_bytes(trailer.try_into().expect("4 bytes"));
        let actual = crc32fast::hash(covered);
        if stored != actual {
            return Err(DecodeError::Corrupt(format!(
                "checksum mismatch (stored {stored:08x}, computed {actual:08x})"
            )));
        }
        // Checked after the CRC so a flipped version byte reads as corruption, not as "newer".
        if version != FORMAT_VERSION {
            return Err(DecodeError::Version(version));
        }
        let mut r = Reader(&covered[HEADER_LEN..]);
        let host_id = Uuid::from_bytes(
            r.take(16)
                .ok_or_else(|| corrupt("truncated host ID"))?
                .try_into()
                .expect("16 bytes"),
        );
        let name_len =
            u16::from_le_bytes(r.array().ok_or_else(|| corrupt("truncated cluster name"))?)
                as usize;
        let name = r
            .take(name_len)
            .ok_or_else(|| corrupt("truncated cluster name"))?;
        let cluster_name =
            String::from_utf8(name.to_vec()).map_err(|_| corrupt("cluster name is not UTF-8"))?;
        let count =
            u32::from_le_bytes(r.array().ok_or_else(|| corrupt("truncated token count"))?) as usize;
        if r.0.len() != count * 8 {
            return Err(corrupt("token count does not match the body length"));
        }
        let tokens = (0..count)
            .map(|_| i64::from_le_bytes(r.array().expect("length checked above")))
            .collect();
        Ok(LocalState {
            host_id,
            tokens,
            cluster_name,
            format_version: version,
        })
    }
}

enum DecodeError {
    Corrupt(String),
    Version(u32),
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).map(|b| b.try_into().expect("N bytes"))
    }
}
