//! Crash safety: a child process writes (and deletes) in batch or periodic mode and reports every
//! acknowledged operation; it is SIGKILLed at random moments, often in the middle of
//! memtable flushes and compactions. After a reopen every acknowledged write must be there
//! and no acknowledged deletion may be undone (compaction purges the tombstones as soon as
//! it safely can, so a wrong purge or a half-committed compaction would resurrect data).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rand::Rng;
use shoal_engine::*;

const DIR_VAR: &str = "SHOAL_CRASH_WRITER_DIR";
const ITER_VAR: &str = "SHOAL_CRASH_WRITER_ITER";
/// `batch` or `periodic`: in periodic mode entries are acknowledged once they are in the
/// mapped segment (the page cache), which a killed process cannot lose either.
const MODE_VAR: &str = "SHOAL_CRASH_WRITER_MODE";

fn tables() -> Vec<(TableId, TableOptions)> {
    let compaction = vec![
        (
            "class".to_string(),
            "SizeTieredCompactionStrategy".to_string(),
        ),
        ("min_threshold".to_string(), "2".to_string()),
    ];
    vec![(
        T,
        TableOptions {
            compaction,
            ..TableOptions::default()
        },
    )]
}

fn tuning() -> EngineTuning {
    EngineTuning {
        compaction_throughput_bytes_per_sec: 0,
        compaction_interval: Duration::from_millis(10),
        ..EngineTuning::default()
    }
}

fn cfg(dir: &Path, mode: &str) -> EngineConfig {
    let sync = match mode {
        "periodic" => CommitLogSync::Periodic { period_ms: 10_000 },
        _ => CommitLogSync::Batch,
    };
    let mut c = config(dir, sync);
    // Small segments and memtables so that kills also land around segment rotation,
    // memtable flushes and segment discards.
    c.commitlog_segment_size = 64 << 10;
    c.memtable_space_bytes = 32 << 10;
    c
}

/// The child: only does something when re-executed by the parent test.
#[test]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let iter = std::env::var(ITER_VAR).unwrap();
    let mode = std::env::var(MODE_VAR).unwrap();
    let e = Arc::new(Engine::open_with(cfg(Path::new(&dir), &mode), tuning(), tables()).unwrap());
    {
        let e = e.clone();
        std::thread::spawn(move || {
            loop {
                let n = e.stats().compactions_completed;
                println!("COMPACTIONS {n}");
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let e = e.clone();
            let iter = iter.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let key = format!("i{iter}-t{t}-{i}");
                    let value = format!("value-of-{key}");
                    e.apply_sync(vec![with_rows(
                        &key,
                        vec![row("r", vec![live(1, 1, &value)])],
                    )])
                    .unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {key}").unwrap();
                    out.flush().unwrap();
                    drop(out);
                    if i % 3 == 2 {
                        // Deletion times far in the past: purgeable at once wherever safe.
                        let victim = format!("i{iter}-t{t}-{}", i - 1);
                        println!("DELETING {victim}");
                        e.apply_sync(vec![Mutation {
                            partition_deletion: Some(del(2)),
                            ..mutation(&victim)
                        }])
                        .unwrap();
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "DEL {victim}").unwrap();
                        out.flush().unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    sigkill_rounds("batch");
}

#[test]
fn acknowledged_periodic_writes_survive_sigkill() {
    sigkill_rounds("periodic");
}

fn sigkill_rounds(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut rng = rand::rng();
    let mut flushes_seen = 0;
    let (mut maybe_deleted, mut acked_deleted) = (BTreeSet::new(), BTreeSet::new());
    let mut compactions_seen = 0;
    for iter in 0..8 {
        let mut child = Command::new(&exe)
            .args([
                "crash_writer_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_VAR, dir.path())
            .env(ITER_VAR, iter.to_string())
            .env(MODE_VAR, mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut keys = Vec::new();
            let (mut deleting, mut deleted, mut compactions) = (Vec::new(), Vec::new(), 0u64);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                // A line cut by the kill is not an acknowledgement.
                let Some(l) = line.strip_suffix(b"\n") else {
                    continue;
                };
                let l = String::from_utf8(l.to_vec()).unwrap();
                if let Some(k) = l.strip_prefix("ACK ") {
                    keys.push(k.to_string());
                } else if let Some(k) = l.strip_prefix("DELETING ") {
                    deleting.push(k.to_string());
                } else if let Some(k) = l.strip_prefix("DEL ") {
                    deleted.push(k.to_string());
                } else if let Some(n) = l.strip_prefix("COMPACTIONS ") {
                    compactions = compactions.max(n.parse().unwrap());
                }
            }
            (keys, deleting, deleted, compactions)
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(150..700)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let (keys, deleting, deleted, compactions) = reader.join().unwrap();
        acked.extend(keys);
        maybe_deleted.extend(deleting);
        acked_deleted.extend(deleted);
        compactions_seen += compactions;

        let e = Engine::open_with(cfg(dir.path(), mode), tuning(), tables()).unwrap();
        let r = e.read(&all()).unwrap();
        let found: BTreeSet<String> = r
            .partitions
            .iter()
            .map(|p| {
                let k = String::from_utf8(p.key.to_vec()).unwrap();
                assert_eq!(
                    p.rows[0].cells,
                    vec![live(1, 1, &format!("value-of-{k}"))],
                    "wrong data for {k}"
                );
                k
            })
            .collect();
        let missing: Vec<_> = acked
            .difference(&found)
            .filter(|k| !maybe_deleted.contains(*k))
            .collect();
        let resurrected: Vec<_> = acked_deleted.intersection(&found).collect();
        assert!(
            resurrected.is_empty(),
            "iteration {iter}: deleted keys came back: {resurrected:?}"
        );
        assert!(
            missing.is_empty(),
            "iteration {iter}: lost acknowledged writes {missing:?}"
        );
        flushes_seen += (e.stats().sstables > 0) as usize;
        e.shutdown().unwrap();
    }
    assert!(
        acked.len() > 8,
        "the child barely wrote anything: {}",
        acked.len()
    );
    eprintln!("{} acknowledged writes checked", acked.len());
    assert!(flushes_seen > 0, "the children never flushed");
    assert!(compactions_seen > 0, "the children never compacted");
    eprintln!(
        "{} deletions checked, {compactions_seen} compactions in the children",
        acked_deleted.len()
    );
}
