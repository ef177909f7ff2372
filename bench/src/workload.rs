//! Workload definitions: schema, statements and the values each operation binds.

use std::fmt;

use rand::Rng;

/// Which table and operation mix a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// cassandra-stress `write`: inserts into keyspace1.standard1.
    Write,
    /// cassandra-stress `read`: point reads of keyspace1.standard1.
    Read,
    /// cassandra-stress `mixed`: reads and writes of standard1 (`--read-ratio`, default 1:1).
    Mixed,
    /// Key-value table `kv1 (key bigint PRIMARY KEY, value blob)` with `--value-size` values.
    Kv,
    /// Time series `ts1 (series bigint, ts bigint, value double)`, newest first; reads fetch
    /// the last `--read-points` points of one series.
    Timeseries,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Workload::Write => "write",
            Workload::Read => "read",
            Workload::Mixed => "mixed",
            Workload::Kv => "kv",
            Workload::Timeseries => "timeseries",
        };
        f.write_str(s)
    }
}

/// The three tables behind the workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Standard1,
    Kv1,
    Ts1,
}

impl Workload {
    pub fn table(self) -> Table {
        match self {
            Workload::Write | Workload::Read | Workload::Mixed => Table::Standard1,
            Workload::Kv => Table::Kv1,
            Workload::Timeseries => Table::Ts1,
        }
    }

    /// Fraction of operations that are reads; `mixed_ratio` applies where the workload mixes.
    pub fn read_fraction(self, mixed_ratio: f64) -> f64 {
        match self {
            Workload::Write => 0.0,
            Workload::Read => 1.0,
            Workload::Mixed | Workload::Kv | Workload::Timeseries => mixed_ratio.clamp(0.0, 1.0),
        }
    }
}

/// Number of blob columns and their size in cassandra-stress's default standard1 schema
/// (`-col n=FIXED(5) size=FIXED(34)`, names "C0".."C4").
pub const STRESS_COLUMNS: usize = 5;
pub const STRESS_COLUMN_SIZE: usize = 34;
/// cassandra-stress's default `-key size=10`.
pub const STRESS_KEY_SIZE: usize = 10;

/// Replication settings for CREATE KEYSPACE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    Simple {
        rf: u32,
    },
    /// One entry per datacenter.
    NetworkTopology {
        dcs: Vec<(String, u32)>,
    },
}

impl Replication {
    pub fn to_cql(&self) -> String {
        match self {
            Replication::Simple { rf } => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': '{rf}'}}")
            }
            Replication::NetworkTopology { dcs } => {
                let mut s = String::from("{'class': 'NetworkTopologyStrategy'");
                for (dc, rf) in dcs {
                    s.push_str(&format!(", '{}': '{rf}'", dc.replace('\'', "''")));
                }
                s.push('}');
                s
            }
        }
    }
}

/// Same shape as cassandra-stress's keyspace DDL.
pub fn create_keyspace(keyspace: &str, replication: &Replication) -> String {
    format!(
        "CREATE KEYSPACE IF NOT EXISTS \"{keyspace}\" WITH replication = {} AND durable_writes = true",
        replication.to_cql()
    )
}

/// DDL for the table a workload uses. standard1 matches cassandra-stress's default columns;
/// its `WITH compression = {}` clause is left out because it is not part of what is measured.
pub fn create_table(keyspace: &str, table: Table) -> String {
    match table {
        Table::Standard1 => {
            let cols: String = (0..STRESS_COLUMNS)
                .map(|i| format!(", \"C{i}\" blob"))
                .collect();
            format!(
                "CREATE TABLE IF NOT EXISTS \"{keyspace}\".standard1 (key blob PRIMARY KEY{cols})"
            )
        }
        Table::Kv1 => format!(
            "CREATE TABLE IF NOT EXISTS \"{keyspace}\".kv1 (key bigint PRIMARY KEY, value blob)"
        ),
        Table::Ts1 => format!(
            "CREATE TABLE IF NOT EXISTS \"{keyspace}\".ts1 (series bigint, ts bigint, value double, \
             PRIMARY KEY (series, ts)) WITH CLUSTERING ORDER BY (ts DESC)"
        ),
    }
}

pub fn insert_statement(keyspace: &str, table: Table) -> String {
    match table {
        Table::Standard1 => {
            let names: Vec<String> = (0..STRESS_COLUMNS).map(|i| format!("\"C{i}\"")).collect();
            let marks = ["?"; STRESS_COLUMNS + 1].join(", ");
            format!(
                "INSERT INTO \"{keyspace}\".standard1 (key, {}) VALUES ({marks})",
                names.join(", ")
            )
        }
        Table::Kv1 => format!("INSERT INTO \"{keyspace}\".kv1 (key, value) VALUES (?, ?)"),
        Table::Ts1 => {
            format!("INSERT INTO \"{keyspace}\".ts1 (series, ts, value) VALUES (?, ?, ?)")
        }
    }
}

/// The LIMIT is literal so the statement also works on servers without bound LIMIT markers.
pub fn select_statement(keyspace: &str, table: Table, read_points: u32) -> String {
    match table {
        Table::Standard1 => format!("SELECT * FROM \"{keyspace}\".standard1 WHERE key = ?"),
        Table::Kv1 => format!("SELECT value FROM \"{keyspace}\".kv1 WHERE key = ?"),
        Table::Ts1 => format!(
            "SELECT ts, value FROM \"{keyspace}\".ts1 WHERE series = ? LIMIT {}",
            read_points.max(1)
        ),
    }
}

/// A cassandra-stress-like key for partition `index`: `STRESS_KEY_SIZE` upper-case hex digits
/// derived from a hash of the index, so keys spread over the ring while staying reproducible.
/// Not byte-identical to cassandra-stress (which seeds java.util.Random), only the same shape.
pub fn stress_key(index: u64) -> [u8; STRESS_KEY_SIZE] {
    let mut out = [0u8; STRESS_KEY_SIZE];
    let mut value = splitmix64(index);
    for (i, b) in out.iter_mut().enumerate() {
        if i == 16 {
            value = splitmix64(value);
        }
        let v = (value & 15) as u8;
        *b = if v < 10 { b'0' + v } else { b'A' + v - 10 };
        value >>= 4;
    }
    out
}

pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn random_bytes<R: Rng + ?Sized>(rng: &mut R, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

/// Timestamp (µs) of populate point `point` of `points` in a series, spaced one second apart
/// and ending at `end_micros`, so later run-phase writes at "now" land after them.
pub fn populate_point_ts(end_micros: i64, point: u64, points: u64) -> i64 {
    end_micros - (points.saturating_sub(point) as i64) * 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stress_keys_are_ten_hex_chars_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            let k = stress_key(i);
            assert_eq!(k.len(), 10);
            assert!(
                k.iter()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
            );
            assert!(seen.insert(k), "duplicate key for {i}");
        }
        assert_eq!(stress_key(42), stress_key(42));
    }

    #[test]
    fn standard1_ddl_matches_stress_default() {
        assert_eq!(
            create_table("keyspace1", Table::Standard1),
            "CREATE TABLE IF NOT EXISTS \"keyspace1\".standard1 (key blob PRIMARY KEY, \"C0\" blob, \
             \"C1\" blob, \"C2\" blob, \"C3\" blob, \"C4\" blob)"
        );
        assert_eq!(
            insert_statement("keyspace1", Table::Standard1),
            "INSERT INTO \"keyspace1\".standard1 (key, \"C0\", \"C1\", \"C2\", \"C3\", \"C4\") \
             VALUES (?, ?, ?, ?, ?, ?)"
        );
    }

    #[test]
    fn replication_cql() {
        assert_eq!(
            create_keyspace("keyspace1", &Replication::Simple { rf: 3 }),
            "CREATE KEYSPACE IF NOT EXISTS \"keyspace1\" WITH replication = {'class': \
             'SimpleStrategy', 'replication_factor': '3'} AND durable_writes = true"
        );
        let nts = Replication::NetworkTopology {
            dcs: vec![("dc1".into(), 3), ("dc2".into(), 2)],
        };
        assert_eq!(
            nts.to_cql(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': '3', 'dc2': '2'}"
        );
    }

    #[test]
    fn read_fractions() {
        assert_eq!(Workload::Write.read_fraction(0.3), 0.0);
        assert_eq!(Workload::Read.read_fraction(0.3), 1.0);
        assert_eq!(Workload::Mixed.read_fraction(0.3), 0.3);
        assert_eq!(Workload::Kv.read_fraction(7.0), 1.0);
    }

    #[test]
    fn populate_timestamps_precede_end() {
        assert_eq!(populate_point_ts(10_000_000, 0, 10), 0);
        assert_eq!(populate_point_ts(10_000_000, 9, 10), 9_000_000);
        assert!(populate_point_ts(10_000_000, 9, 10) < 10_000_000);
    }
}
