//! The engine metadata file: per-table truncation positions.
//!
//! Truncating a table must survive a restart even though the truncated writes are still in
//! the commit log, so the position of the log at truncation time is recorded and replay skips
//! that table's older entries. The file is small and rewritten whole, atomically (temp file,
//! fsync, rename, directory fsync), so a crash leaves either the old or the new version.
//! Layout in `docs/formats/commitlog.md` ("Truncation records").

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::commitlog::{ReplayPosition, sync_dir};
use crate::error::{EngineError, Result};
use crate::model::TableId;

pub const META_MAGIC: [u8; 8] = *b"SHOALMTA";
pub const META_VERSION: u32 = 1;
pub const META_FILE: &str = "engine-meta.bin";
const RECORD_SIZE: usize = 32;

/// Truncation positions by table: replay skips a table's entries positioned before it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineMeta {
    pub truncated: BTreeMap<TableId, ReplayPosition>,
}

impl EngineMeta {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(META_FILE)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + RECORD_SIZE * self.truncated.len());
        out.extend_from_slice(&META_MAGIC);
        out.extend_from_slice(&META_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.truncated.len() as u32).to_le_bytes());
        for (t, p) in &self.truncated {
            out.extend_from_slice(&t.0);
            out.extend_from_slice(&p.segment.to_le_bytes());
            out.extend_from_slice(&p.offset.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(buf: &[u8], path: &Path) -> Result<EngineMeta> {
        let corrupt = |offset: usize, reason: &str| EngineError::Corrupt {
            path: path.to_path_buf(),
            offset: offset as u64,
            reason: reason.to_string(),
        };
        if buf.len() < 20 {
            return Err(corrupt(0, "metadata file too short"));
        }
        if buf[0..8] != META_MAGIC {
            return Err(corrupt(0, "bad metadata magic"));
        }
        let crc_at = buf.len() - 4;
        let stored = u32::from_le_bytes([
            buf[crc_at],
            buf[crc_at + 1],
            buf[crc_at + 2],
            buf[crc_at + 3],
        ]);
        if crc32fast::hash(&buf[..crc_at]) != stored {
            return Err(corrupt(crc_at, "metadata checksum mismatch"));
        }
        let version = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
        if version != META_VERSION {
            return Err(corrupt(
                8,
                &format!("unsupported metadata version {version}"),
            ));
        }
        let count = u32::from_le_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
        if count
            .checked_mul(RECORD_SIZE)
            .and_then(|n| n.checked_add(20))
            != Some(buf.len())
        {
            return Err(corrupt(12, "record count does not match file size"));
        }
        let mut meta = EngineMeta::default();
        for i in 0..count {
            let r = &buf[16 + i * RECORD_SIZE..16 + (i + 1) * RECORD_SIZE];
            let mut id = [0u8; 16];
            id.copy_from_slice(&r[0..16]);
            let mut seg = [0u8; 8];
            seg.copy_from_slice(&r[16..24]);
            let mut off = [0u8; 8];
            off.copy_from_slice(&r[24..32]);
            meta.truncated.insert(
                TableId(id),
                ReplayPosition {
                    segment: u64::from_le_bytes(seg),
                    offset: u64::from_le_bytes(off),
                },
            );
        }
        Ok(meta)
    }

    /// Loads the file, or an empty record if there is none yet.
    pub fn load(data_dir: &Path) -> Result<EngineMeta> {
        let path = Self::path(data_dir);
        match fs::read(&path) {
            Ok(buf) => Self::decode(&buf, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(EngineMeta::default()),
            Err(e) => Err(EngineError::Io { path, source: e }),
        }
    }

    /// Replaces the file atomically and durably.
    pub fn store(&self, data_dir: &Path) -> Result<()> {
        let path = Self::path(data_dir);
        let tmp = data_dir.join(format!("{META_FILE}.tmp"));
        let io = |p: &Path, e| EngineError::Io {
            path: p.to_path_buf(),
            source: e,
        };
        let mut f = fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        f.write_all(&self.encode()).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        sync_dir(data_dir)
    }

    /// Whether an entry at `pos` for `table` was truncated away.
    pub fn is_truncated(&self, table: &TableId, pos: ReplayPosition) -> bool {
        self.truncated.get(table).is_some_and(|t| pos < *t)
    }

    /// The highest segment id any record refers to.
    pub fn max_segment(&self) -> u64 {
        self.truncated
            .values()
            .map(|p| p.segment)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(EngineMeta::load(dir.path()).unwrap(), EngineMeta::default());
        let mut m = EngineMeta::default();
        m.truncated.insert(
            TableId([3; 16]),
            ReplayPosition {
                segment: 7,
                offset: 99,
            },
        );
        m.store(dir.path()).unwrap();
        assert_eq!(EngineMeta::load(dir.path()).unwrap(), m);
        let mut buf = m.encode();
        buf[20] ^= 1;
        assert!(EngineMeta::decode(&buf, Path::new("x")).is_err());
        for n in 0..buf.len() {
            let _ = EngineMeta::decode(&buf[..n], Path::new("x"));
        }
    }
}
