//! Builders shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use bytes::Bytes;
use shoal_engine::*;

pub const T: TableId = TableId([1; 16]);

pub fn config(dir: &Path, sync: CommitLogSync) -> EngineConfig {
    EngineConfig {
        data_dir: dir.join("data"),
        commitlog_dir: dir.join("commitlog"),
        commitlog_sync: sync,
        commitlog_segment_size: 1 << 20,
        ..EngineConfig::default()
    }
}

pub fn open(dir: &Path) -> Engine {
    Engine::open(
        config(dir, CommitLogSync::Batch),
        vec![(T, TableOptions::default())],
    )
    .unwrap()
}

pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub fn del(ts: i64) -> DeletionTime {
    DeletionTime {
        marked_for_delete_at: ts,
        local_deletion_time: 100,
    }
}

pub fn live(col: u32, ts: i64, v: &str) -> Cell {
    Cell {
        column: col,
        path: None,
        timestamp: ts,
        value: CellValue::Live {
            value: b(v),
            ttl: None,
        },
    }
}

pub fn expiring(col: u32, ts: i64, v: &str, expires: i32) -> Cell {
    Cell {
        column: col,
        path: None,
        timestamp: ts,
        value: CellValue::Live {
            value: b(v),
            ttl: Some(Ttl {
                ttl: 10,
                local_expiration_time: expires,
            }),
        },
    }
}

pub fn tomb(col: u32, ts: i64) -> Cell {
    Cell {
        column: col,
        path: None,
        timestamp: ts,
        value: CellValue::Tombstone {
            local_deletion_time: 100,
        },
    }
}

pub fn counter(col: u32, ts: i64, v: i64) -> Cell {
    Cell {
        column: col,
        path: None,
        timestamp: ts,
        value: CellValue::Counter { value: v },
    }
}

pub fn row(ck: &str, cells: Vec<Cell>) -> Row {
    Row {
        clustering: b(ck),
        cells,
        ..Row::default()
    }
}

pub fn token_of(key: &str) -> i64 {
    // Any deterministic token works: the engine never hashes keys itself.
    key.bytes()
        .fold(0i64, |h, c| h.wrapping_mul(31).wrapping_add(c as i64))
        % 1000
}

pub fn mutation(key: &str) -> Mutation {
    Mutation {
        table: T,
        token: token_of(key),
        key: b(key),
        partition_deletion: None,
        range_tombstones: vec![],
        static_row: None,
        rows: vec![],
    }
}

pub fn with_rows(key: &str, rows: Vec<Row>) -> Mutation {
    Mutation {
        rows,
        ..mutation(key)
    }
}

pub fn read_cmd(partitions: PartitionRange) -> ReadCommand {
    ReadCommand {
        table: T,
        partitions,
        slices: vec![],
        reversed: false,
        start_after_row: None,
        row_limit: usize::MAX,
        per_partition_limit: usize::MAX,
        partition_limit: usize::MAX,
        include_tombstones: false,
        now: 50,
    }
}

pub fn single(key: &str) -> ReadCommand {
    read_cmd(PartitionRange::Single {
        token: token_of(key),
        key: b(key),
    })
}

pub fn all() -> ReadCommand {
    read_cmd(PartitionRange::Range {
        start: None,
        end: None,
    })
}

pub fn bound(p: &str, inclusive: bool) -> ClusteringBound {
    ClusteringBound {
        prefix: b(p),
        inclusive,
    }
}

pub fn range(s: &str, si: bool, e: &str, ei: bool) -> ClusteringRange {
    ClusteringRange {
        start: bound(s, si),
        end: bound(e, ei),
    }
}

/// Clustering keys of the rows of the only partition of `r` (empty if none).
pub fn keys(r: &ReadResult) -> Vec<String> {
    assert!(r.partitions.len() <= 1, "{r:?}");
    r.partitions
        .first()
        .map(|p| {
            p.rows
                .iter()
                .map(|r| String::from_utf8(r.clustering.to_vec()).unwrap())
                .collect()
        })
        .unwrap_or_default()
}
