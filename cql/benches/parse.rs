//! Parser speed on the statements drivers send most.

use criterion::{Criterion, black_box, criterion_group, criterion_main};

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, q) in [
        (
            "insert",
            "INSERT INTO ks.users (id, name, email, age) VALUES (?, ?, ?, ?) USING TTL 3600",
        ),
        (
            "select",
            "SELECT id, name, email FROM ks.users WHERE id = ? AND ts > ? LIMIT 100",
        ),
        (
            "system_local",
            "SELECT * FROM system.local WHERE key='local'",
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| shoal_cql::parser::parse(black_box(q)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
