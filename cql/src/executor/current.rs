//! Reads of a partition's current state for writes that depend on it: list operations
//! addressed by index or value, and the conditions of lightweight transactions.

use bytes::Bytes;
use shoal_engine::{
    CellValue, ClusteringBound, ClusteringRange, PartitionData, PartitionRange, ReadCommand, Row,
};

use super::{Executor, engine_error, now_seconds, value};
use crate::error::CqlResult;
use crate::schema::{ColumnDef, TableDef};

/// One partition's live data: the static row and, when asked for, one clustering row.
#[derive(Debug, Default)]
pub struct Current {
    pub static_row: Option<Row>,
    pub row: Option<Row>,
    /// The greatest write timestamp seen in what was read (cells, markers, deletions).
    pub max_timestamp: i64,
}

/// Reads the static row and the row `clustering` (all rows when `None`) of one partition.
pub fn read(
    ex: &Executor,
    table: &TableDef,
    token: i64,
    key: &Bytes,
    clustering: Option<&Bytes>,
) -> CqlResult<PartitionData> {
    let slices = match clustering {
        Some(ck) if !ck.is_empty() => vec![ClusteringRange {
            start: ClusteringBound {
                prefix: ck.clone(),
                inclusive: true,
            },
            end: ClusteringBound {
                prefix: ck.clone(),
                inclusive: true,
            },
        }],
        _ => Vec::new(),
    };
    // A static-only read on a table with rows needs no rows, only the static row.
    let static_only = clustering.is_some_and(|c| c.is_empty()) && table.clustering_len > 0;
    let limit = if static_only { 1 } else { usize::MAX };
    let cmd = ReadCommand {
        table: table.engine_id(),
        partitions: PartitionRange::Single {
            token,
            key: key.clone(),
        },
        slices,
        reversed: false,
        start_after_row: None,
        row_limit: limit,
        per_partition_limit: limit,
        partition_limit: 1,
        include_tombstones: false,
        now: now_seconds(),
    };
    let result = ex.engine().read(&cmd).map_err(engine_error)?;
    Ok(result
        .partitions
        .into_iter()
        .next()
        .unwrap_or(PartitionData {
            token,
            key: key.clone(),
            partition_deletion: None,
            range_tombstones: Vec::new(),
            static_row: None,
            rows: Vec::new(),
        }))
}

/// The static row and the row at `clustering` of one partition.
pub fn read_row(
    ex: &Executor,
    table: &TableDef,
    token: i64,
    key: &Bytes,
    clustering: &Bytes,
) -> CqlResult<Current> {
    let p = read(ex, table, token, key, Some(clustering))?;
    let max_timestamp = partition_max_timestamp(&p);
    let row = p.rows.into_iter().find(|r| r.clustering == clustering);
    Ok(Current {
        static_row: p.static_row,
        row,
        max_timestamp,
    })
}

/// The greatest write timestamp in what was read of a partition (cells, markers,
/// deletions): a write that must win over it needs a greater one.
pub fn partition_max_timestamp(p: &PartitionData) -> i64 {
    let mut max_timestamp = i64::MIN;
    for r in p.static_row.iter().chain(p.rows.iter()) {
        max_timestamp = max_timestamp.max(row_max_timestamp(r));
    }
    if let Some(d) = p.partition_deletion {
        max_timestamp = max_timestamp.max(d.marked_for_delete_at);
    }
    max_timestamp
}

fn row_max_timestamp(r: &Row) -> i64 {
    let mut m = i64::MIN;
    if let Some(l) = r.liveness {
        m = m.max(l.timestamp);
    }
    if let Some(d) = r.deletion {
        m = m.max(d.marked_for_delete_at);
    }
    for (_, d) in &r.complex_deletions {
        m = m.max(d.marked_for_delete_at);
    }
    for c in &r.cells {
        m = m.max(c.timestamp);
    }
    m
}

/// Whether a row has live data: its primary-key marker or any live cell.
pub fn row_is_live(r: &Row) -> bool {
    r.liveness.is_some()
        || r.cells
            .iter()
            .any(|c| matches!(c.value, CellValue::Live { .. } | CellValue::Counter { .. }))
}

/// The live element cells of a non-frozen collection or UDT column, in path order.
pub fn elements(row: Option<&Row>, col: &ColumnDef) -> Vec<(Bytes, Bytes)> {
    let Some(row) = row else {
        return Vec::new();
    };
    row.cells
        .iter()
        .filter(|c| c.column == col.id)
        .filter_map(|c| match (&c.path, &c.value) {
            (Some(p), CellValue::Live { value, .. }) => Some((p.clone(), value.clone())),
            _ => None,
        })
        .collect()
}

/// A column's current value as CQL bytes (multicell values reassembled), or null.
pub fn column_value(row: Option<&Row>, col: &ColumnDef) -> CqlResult<Option<Bytes>> {
    let Some(row) = row else {
        return Ok(None);
    };
    let cells: Vec<&shoal_engine::Cell> = row.cells.iter().filter(|c| c.column == col.id).collect();
    if col.ty.is_multicell() {
        return value::assemble(&col.ty, &cells);
    }
    Ok(cells.first().and_then(|c| match &c.value {
        CellValue::Live { value, .. } => Some(value.clone()),
        CellValue::Counter { value } => Some(Bytes::copy_from_slice(&value.to_be_bytes())),
        CellValue::Tombstone { .. } => None,
    }))
}
