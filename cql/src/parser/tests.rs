use super::ast::*;
use super::{parse, parse_type};
use crate::CqlError;

fn stmt(q: &str) -> Statement {
    match parse(q) {
        Ok(p) => p.statement,
        Err(e) => panic!("{q:?}: {e}"),
    }
}

/// Parses, prints, parses again and checks both parses agree.
fn rt(q: &str) -> Statement {
    let p = parse(q).unwrap_or_else(|e| panic!("{q:?}: {e}"));
    let printed = p.statement.to_string();
    let again = parse(&printed).unwrap_or_else(|e| panic!("{q:?} -> {printed:?}: {e}"));
    assert_eq!(again.statement, p.statement, "{q:?} -> {printed:?}");
    assert_eq!(again.bind_names, p.bind_names, "{q:?} -> {printed:?}");
    p.statement
}

fn err(q: &str) -> String {
    match parse(q) {
        Err(CqlError::Syntax(m)) => m,
        other => panic!("{q:?}: expected a syntax error, got {other:?}"),
    }
}

fn select(q: &str) -> SelectStatement {
    match rt(q) {
        Statement::Select(s) => s,
        s => panic!("{s:?}"),
    }
}

fn qn(ks: Option<&str>, n: &str) -> QualifiedName {
    QualifiedName {
        keyspace: ks.map(str::to_owned),
        name: n.to_owned(),
    }
}

fn lit(t: &Term) -> &Literal {
    match t {
        Term::Literal(l) => l,
        t => panic!("{t:?}"),
    }
}

fn s(v: &str) -> Term {
    Term::Literal(Literal::String(v.into()))
}

fn int(v: &str) -> Term {
    Term::Literal(Literal::Integer(v.into()))
}

fn q(i: usize) -> Term {
    Term::Bind(BindMarker {
        index: i,
        name: None,
    })
}

fn eq(c: &str, v: Term) -> Relation {
    Relation::Column {
        column: c.into(),
        op: Operator::Eq,
        value: RelationValue::Single(v),
    }
}

// ---------------------------------------------------------------- identifiers

#[test]
fn identifier_case_rules() {
    let s = select(r#"SELECT Foo, "Bar", "a""b" FROM MyKs."MyTable""#);
    let cols: Vec<_> = s.selection.iter().map(|i| i.selector.clone()).collect();
    assert_eq!(
        cols,
        [
            Selector::Column("foo".into()),
            Selector::Column("Bar".into()),
            Selector::Column("a\"b".into())
        ]
    );
    assert_eq!(s.table, qn(Some("myks"), "MyTable"));
    assert_eq!(stmt(r#"USE "MyKs""#), Statement::Use("MyKs".into()));
    assert_eq!(stmt("use MyKs;"), Statement::Use("myks".into()));
}

#[test]
fn keywords_as_identifiers() {
    let s = select("SELECT key, type FROM system.local WHERE key = 'local'");
    assert_eq!(
        s.selection
            .iter()
            .map(|i| i.selector.clone())
            .collect::<Vec<_>>(),
        [
            Selector::Column("key".into()),
            Selector::Column("type".into())
        ]
    );
    assert_eq!(s.where_clause, [eq("key", s_("local"))]);
    let s = select(
        "SELECT keyspace_name, table_name, column_name, kind, position, type, options, values, keys, ttl, writetime, count, filtering, static, user, role, password, login, superuser, as, json, distinct, clustering, compact, storage, custom, list, map, frozen, tuple, text, int, timestamp FROM t",
    );
    assert_eq!(s.selection.len(), 33);
    assert!(!s.json && !s.distinct);
    rt(
        "CREATE TABLE t (key text PRIMARY KEY, type int, options map<text, text>, kind text, position int)",
    );
    rt("INSERT INTO t (key, type, values, ttl) VALUES ('k', 1, 2, 3)");
    rt("UPDATE t SET type = 1, count = count + 1 WHERE key = 'x'");
    // Reserved words need quotes.
    assert!(parse("SELECT from FROM t").is_err());
    assert!(parse("SELECT select FROM t").is_err());
    assert!(matches!(
        &select(r#"SELECT "select" FROM t"#).selection[0].selector,
        Selector::Column(c) if c == "select"
    ));
}

fn s_(v: &str) -> Term {
    s(v)
}

// ---------------------------------------------------------------- driver queries

#[test]
fn driver_queries() {
    let s = select("SELECT * FROM system.peers_v2");
    assert!(s.selection.is_empty());
    assert_eq!(s.table, qn(Some("system"), "peers_v2"));
    let s = select(
        "SELECT peer, data_center, host_id, preferred_ip, rack, release_version, rpc_address, schema_version, tokens FROM system.peers",
    );
    assert_eq!(s.selection.len(), 9);
    let p = parse("SELECT keyspace_name, table_name, column_name, kind, position, type FROM system_schema.columns where keyspace_name in ?").unwrap();
    assert_eq!(p.bind_count, 1);
    let Statement::Select(s) = p.statement else {
        panic!()
    };
    assert_eq!(
        s.where_clause,
        [Relation::Column {
            column: "keyspace_name".into(),
            op: Operator::In,
            value: RelationValue::InMarker(BindMarker {
                index: 0,
                name: None
            })
        }]
    );
    let s = select(
        "SELECT * FROM system_schema.functions WHERE keyspace_name = 'ks' AND function_name = 'f' AND argument_types = ['int', 'text']",
    );
    assert_eq!(
        s.where_clause[2],
        eq("argument_types", Term::List(vec![s_("int"), s_("text")]))
    );
    let s = select("SELECT schema_version FROM system.local WHERE key='local'");
    assert_eq!(s.where_clause, [eq("key", s_("local"))]);
    let s = select("select * from system.local where key = 'local'");
    assert_eq!(s.table, qn(Some("system"), "local"));
    let s = select(
        "SELECT * FROM system_schema.columns WHERE keyspace_name = 'ks' AND table_name = 't'",
    );
    assert_eq!(s.where_clause.len(), 2);
    rt(
        "SELECT cluster_name, data_center, rack, tokens, partitioner, schema_version FROM system.local WHERE key='local'",
    );
    rt("SELECT * FROM system_schema.keyspaces");
    rt("SELECT now() FROM system.local");
    rt("SELECT release_version FROM system.local");
}

#[test]
fn cqlsh_describe() {
    let d = |q: &str| match rt(q) {
        Statement::Describe(d) => d,
        s => panic!("{s:?}"),
    };
    assert_eq!(d("DESCRIBE KEYSPACES").target, DescribeTarget::Keyspaces);
    assert_eq!(d("desc keyspaces;").target, DescribeTarget::Keyspaces);
    assert_eq!(
        d("DESC KEYSPACE ks").target,
        DescribeTarget::Keyspace {
            name: Some("ks".into()),
            only: false
        }
    );
    assert_eq!(
        d("DESC KEYSPACE").target,
        DescribeTarget::Keyspace {
            name: None,
            only: false
        }
    );
    assert_eq!(
        d("DESC ONLY KEYSPACE ks").target,
        DescribeTarget::Keyspace {
            name: Some("ks".into()),
            only: true
        }
    );
    assert_eq!(
        d("DESCRIBE FULL SCHEMA").target,
        DescribeTarget::Schema { full: true }
    );
    assert_eq!(
        d("DESC SCHEMA").target,
        DescribeTarget::Schema { full: false }
    );
    assert_eq!(d("DESC CLUSTER").target, DescribeTarget::Cluster);
    assert_eq!(
        d("DESC TABLE ks.t").target,
        DescribeTarget::Table(qn(Some("ks"), "t"))
    );
    assert_eq!(d("DESC TABLES").target, DescribeTarget::Tables);
    assert_eq!(d("DESC TYPES").target, DescribeTarget::Types);
    assert_eq!(d("DESC TYPE t").target, DescribeTarget::Type(qn(None, "t")));
    assert_eq!(d("DESC FUNCTIONS").target, DescribeTarget::Functions);
    assert_eq!(
        d("DESC FUNCTION ks.f").target,
        DescribeTarget::Function(qn(Some("ks"), "f"))
    );
    assert_eq!(d("DESC AGGREGATES").target, DescribeTarget::Aggregates);
    assert_eq!(
        d("DESC AGGREGATE a").target,
        DescribeTarget::Aggregate(qn(None, "a"))
    );
    assert_eq!(
        d("DESC INDEX i").target,
        DescribeTarget::Index(qn(None, "i"))
    );
    assert_eq!(
        d("DESC MATERIALIZED VIEW ks.v").target,
        DescribeTarget::MaterializedView(qn(Some("ks"), "v"))
    );
    assert_eq!(
        d("DESC ks.t").target,
        DescribeTarget::Generic(qn(Some("ks"), "t"))
    );
    assert_eq!(
        d("DESC type").target,
        DescribeTarget::Generic(qn(None, "type"))
    );
    let x = d("DESCRIBE KEYSPACE ks WITH INTERNALS");
    assert!(x.with_internals);
    assert!(d("DESC TABLE t WITH INTERNALS").with_internals);
}

// ---------------------------------------------------------------- SELECT

#[test]
fn select_forms() {
    let s = select("SELECT JSON DISTINCT a, b AS bee FROM t");
    assert!(s.json && s.distinct);
    assert_eq!(s.selection[1].alias.as_deref(), Some("bee"));
    let s = select("SELECT json FROM t");
    assert!(!s.json);
    let s = select("SELECT JSON * FROM t");
    assert!(s.json && s.selection.is_empty());
    let s = select(
        "SELECT WRITETIME(v), TTL(v), COUNT(*), count(1), token(a, b), CAST(x AS text), u.f.g, 1, ?, max(v), ks.f(a, 'x'), \"F\"(a) FROM t",
    );
    let sel: Vec<_> = s.selection.into_iter().map(|i| i.selector).collect();
    assert_eq!(sel[0], Selector::WriteTime("v".into()));
    assert_eq!(sel[1], Selector::Ttl("v".into()));
    assert_eq!(sel[2], Selector::CountStar);
    assert_eq!(sel[3], Selector::CountStar);
    assert_eq!(
        sel[4],
        Selector::Function {
            name: qn(None, "token"),
            args: vec![Selector::Column("a".into()), Selector::Column("b".into())]
        }
    );
    assert_eq!(
        sel[5],
        Selector::Cast {
            selector: Box::new(Selector::Column("x".into())),
            ty: TypeExpr::Native("text".into())
        }
    );
    assert_eq!(
        sel[6],
        Selector::Field {
            selector: Box::new(Selector::Field {
                selector: Box::new(Selector::Column("u".into())),
                field: "f".into()
            }),
            field: "g".into()
        }
    );
    assert_eq!(sel[7], Selector::Term(int("1")));
    assert_eq!(sel[8], Selector::Term(q(0)));
    assert!(
        matches!(&sel[10], Selector::Function { name, args } if name == &qn(Some("ks"), "f") && args.len() == 2)
    );
    assert!(matches!(&sel[11], Selector::Function { name, .. } if name.name == "F"));
    let s = select(
        "SELECT * FROM ks.t WHERE a = 1 AND b > 2 AND b <= 3 AND c != 4 AND d IN (1, 2) AND e IN () AND f CONTAINS 5 AND g CONTAINS KEY 'k' AND m['k'] = 1 AND token(a, b) > ? AND (x, y) > (1, 2) AND (x, y) IN ((1, 2), (3, 4)) AND (x, y) IN ? AND (x, y) = ? AND n IS NOT NULL AND o LIKE 'a%' GROUP BY a, b ORDER BY b DESC, c ASC PER PARTITION LIMIT 2 LIMIT ? ALLOW FILTERING",
    );
    let w = &s.where_clause;
    assert_eq!(w.len(), 16);
    assert_eq!(
        w[4],
        Relation::Column {
            column: "d".into(),
            op: Operator::In,
            value: RelationValue::InList(vec![int("1"), int("2")])
        }
    );
    assert_eq!(
        w[5],
        Relation::Column {
            column: "e".into(),
            op: Operator::In,
            value: RelationValue::InList(vec![])
        }
    );
    assert!(matches!(
        &w[7],
        Relation::Column {
            op: Operator::ContainsKey,
            ..
        }
    ));
    assert_eq!(
        w[8],
        Relation::MapEntry {
            column: "m".into(),
            key: s_("k"),
            op: Operator::Eq,
            value: int("1")
        }
    );
    assert_eq!(
        w[9],
        Relation::Token {
            columns: vec!["a".into(), "b".into()],
            op: Operator::Gt,
            value: q(0)
        }
    );
    assert_eq!(
        w[10],
        Relation::MultiColumn {
            columns: vec!["x".into(), "y".into()],
            op: Operator::Gt,
            value: RelationValue::Single(Term::Tuple(vec![int("1"), int("2")]))
        }
    );
    assert!(
        matches!(&w[11], Relation::MultiColumn { op: Operator::In, value: RelationValue::InList(v), .. } if v.len() == 2)
    );
    assert!(
        matches!(&w[12], Relation::MultiColumn { value: RelationValue::InMarker(m), .. } if m.index == 1)
    );
    assert!(matches!(
        &w[14],
        Relation::Column {
            op: Operator::IsNot,
            ..
        }
    ));
    assert!(matches!(
        &w[15],
        Relation::Column {
            op: Operator::Like,
            ..
        }
    ));
    assert_eq!(s.group_by, ["a", "b"]);
    assert_eq!(
        s.order_by,
        [
            ("b".to_string(), Order::Desc),
            ("c".to_string(), Order::Asc)
        ]
    );
    assert_eq!(s.per_partition_limit, Some(int("2")));
    assert_eq!(s.limit, Some(q(3)));
    assert!(s.allow_filtering);
    // A parenthesised relation.
    let s = select("SELECT * FROM t WHERE (a = 1) AND b = 2");
    assert_eq!(s.where_clause, [eq("a", int("1")), eq("b", int("2"))]);
}

// ---------------------------------------------------------------- literals

#[test]
fn literals() {
    let s = select(
        "SELECT * FROM t WHERE a IN ('it''s', $$x'y$$, 1, -2, 1.5, 1e10, -2.5E-3, NaN, -NaN, Infinity, -Infinity, true, FALSE, null, 0xCAFE, 550e8400-e29b-41d4-a716-446655440000, 1h30m, 12mo, 3µs, 3us, P1DT2H, PT5M, P1W, P0001-02-03T04:05:06, -1d)",
    );
    let Relation::Column {
        value: RelationValue::InList(v),
        ..
    } = &s.where_clause[0]
    else {
        panic!()
    };
    use Literal::*;
    let expect = [
        String("it's".into()),
        String("x'y".into()),
        Integer("1".into()),
        Integer("-2".into()),
        Float("1.5".into()),
        Float("1e10".into()),
        Float("-2.5E-3".into()),
        NaN,
        NaN,
        Infinity,
        NegInfinity,
        Boolean(true),
        Boolean(false),
        Null,
        Blob("CAFE".into()),
        Uuid("550e8400-e29b-41d4-a716-446655440000".into()),
        Duration("1h30m".into()),
        Duration("12mo".into()),
        Duration("3µs".into()),
        Duration("3us".into()),
        Duration("P1DT2H".into()),
        Duration("PT5M".into()),
        Duration("P1W".into()),
        Duration("P0001-02-03T04:05:06".into()),
        Duration("-1d".into()),
    ];
    let got: Vec<_> = v.iter().map(|t| lit(t).clone()).collect();
    assert_eq!(got, expect);
    // Spaced minus still folds into the literal.
    let s = select("SELECT * FROM t WHERE a = - 5");
    assert_eq!(s.where_clause, [eq("a", int("-5"))]);
    let s = select("SELECT * FROM t WHERE a = - ?");
    assert_eq!(s.where_clause, [eq("a", Term::Negate(Box::new(q(0))))]);
}

#[test]
fn collections_and_casts() {
    let i = match rt(
        "INSERT INTO t (a, b, c, d, e, f, g, h) VALUES ([1, 2], {1, 2}, {'k': 1, 'j': 2}, (1, 'x'), {x: 1, \"Y\": 'z'}, {}, (int) ?, now())",
    ) {
        Statement::Insert(i) => i,
        s => panic!("{s:?}"),
    };
    let InsertValues::Values { values, .. } = i.values else {
        panic!()
    };
    assert_eq!(values[0], Term::List(vec![int("1"), int("2")]));
    assert_eq!(values[1], Term::Set(vec![int("1"), int("2")]));
    assert_eq!(
        values[2],
        Term::Map(vec![(s_("k"), int("1")), (s_("j"), int("2"))])
    );
    assert_eq!(values[3], Term::Tuple(vec![int("1"), s_("x")]));
    assert_eq!(
        values[4],
        Term::Udt(vec![("x".into(), int("1")), ("Y".into(), s_("z"))])
    );
    assert_eq!(values[5], Term::Map(vec![]));
    assert_eq!(
        values[6],
        Term::Cast {
            ty: TypeExpr::Native("int".into()),
            term: Box::new(q(0))
        }
    );
    assert_eq!(
        values[7],
        Term::FunctionCall {
            name: qn(None, "now"),
            args: vec![]
        }
    );
    rt("INSERT INTO t (a) VALUES ((frozen<list<int>>) [1])");
    rt("INSERT INTO t (a) VALUES (blobAsInt(0x01))");
    rt("INSERT INTO t (a) VALUES (ks.f(1, ?))");
    rt("INSERT INTO t (a) VALUES ({'a': [1, 2], 'b': {x: {1: 2}}})");
}

// ---------------------------------------------------------------- DML

#[test]
fn insert_forms() {
    let i = match rt(
        "INSERT INTO ks.t (a, b) VALUES (?, :bee) IF NOT EXISTS USING TIMESTAMP ? AND TTL 10",
    ) {
        Statement::Insert(i) => i,
        s => panic!("{s:?}"),
    };
    assert!(i.if_not_exists);
    assert_eq!(i.using.timestamp, Some(q(2)));
    assert_eq!(i.using.ttl, Some(int("10")));
    let p = parse("INSERT INTO t (a) VALUES (?) USING TIMESTAMP ? AND TTL ?").unwrap();
    let printed = p.statement.to_string();
    assert_eq!(parse(&printed).unwrap(), p, "{printed}");
    match rt("INSERT INTO t JSON '{\"a\": 1}' DEFAULT UNSET") {
        Statement::Insert(InsertStatement {
            values:
                InsertValues::Json {
                    json,
                    default_unset,
                },
            ..
        }) => {
            assert_eq!(json, s_("{\"a\": 1}"));
            assert!(default_unset);
        }
        s => panic!("{s:?}"),
    }
    match rt("INSERT INTO t JSON ? DEFAULT NULL") {
        Statement::Insert(InsertStatement {
            values: InsertValues::Json { default_unset, .. },
            ..
        }) => assert!(!default_unset),
        s => panic!("{s:?}"),
    }
}

#[test]
fn update_forms() {
    let u = match rt(
        "UPDATE ks.t USING TTL 5 AND TIMESTAMP 6 SET a = 1, b = b + {1}, c = [0] + c, d = d - {2}, e += 3, f -= 4, m['k'] = 'v', u.f = 1, n = n -1, l[0] = ? WHERE k = ? IF a = 1 AND m['k'] = 'v' AND c IN (1, 2) AND u.f = 2 AND x != null",
    ) {
        Statement::Update(u) => u,
        s => panic!("{s:?}"),
    };
    assert_eq!(u.using.ttl, Some(int("5")));
    let a: Vec<_> = u.assignments.iter().map(|a| a.value.clone()).collect();
    assert_eq!(a[0], AssignValue::Set(int("1")));
    assert_eq!(a[1], AssignValue::Add(Term::Set(vec![int("1")])));
    assert_eq!(a[2], AssignValue::Prepend(Term::List(vec![int("0")])));
    assert_eq!(a[3], AssignValue::Subtract(Term::Set(vec![int("2")])));
    assert_eq!(a[4], AssignValue::Add(int("3")));
    assert_eq!(a[5], AssignValue::Subtract(int("4")));
    assert_eq!(
        u.assignments[6].target,
        ColumnTarget::Element("m".into(), s_("k"))
    );
    assert_eq!(
        u.assignments[7].target,
        ColumnTarget::Field("u".into(), "f".into())
    );
    assert_eq!(a[8], AssignValue::Add(int("-1")));
    assert_eq!(a[9], AssignValue::Set(q(0)));
    assert_eq!(u.where_clause, [eq("k", q(1))]);
    let Some(Conditions::If(c)) = &u.conditions else {
        panic!()
    };
    assert_eq!(c.len(), 5);
    assert_eq!(c[1].target, ColumnTarget::Element("m".into(), s_("k")));
    assert_eq!(c[2].op, Operator::In);
    assert_eq!(c[3].target, ColumnTarget::Field("u".into(), "f".into()));
    match rt("UPDATE t SET a = 1 WHERE k = 1 IF EXISTS") {
        Statement::Update(u) => assert_eq!(u.conditions, Some(Conditions::IfExists)),
        s => panic!("{s:?}"),
    }
    let e = err("UPDATE t SET a = b + 1 WHERE k = 1");
    assert!(e.contains("Only expressions of the form X = X +"), "{e}");
    let e = err("UPDATE t SET a = 1 + b WHERE k = 1");
    assert!(e.contains("X = <value> + X"), "{e}");
}

#[test]
fn delete_forms() {
    let d = match rt(
        "DELETE a, m['k'], u.f FROM ks.t USING TIMESTAMP 1 WHERE k = 1 AND c IN (1, 2) IF EXISTS",
    ) {
        Statement::Delete(d) => d,
        s => panic!("{s:?}"),
    };
    assert_eq!(
        d.targets,
        [
            ColumnTarget::Column("a".into()),
            ColumnTarget::Element("m".into(), s_("k")),
            ColumnTarget::Field("u".into(), "f".into())
        ]
    );
    assert_eq!(d.using.timestamp, Some(int("1")));
    assert_eq!(d.conditions, Some(Conditions::IfExists));
    match rt("DELETE FROM t WHERE k = 1 IF v = 2") {
        Statement::Delete(d) => {
            assert!(d.targets.is_empty());
            assert!(matches!(d.conditions, Some(Conditions::If(_))));
        }
        s => panic!("{s:?}"),
    }
    assert!(parse("DELETE FROM t USING TTL 1 WHERE k = 1").is_err());
}

#[test]
fn batch_and_bind_numbering() {
    let p = parse(
        "BEGIN UNLOGGED BATCH USING TIMESTAMP ? INSERT INTO t (a, b) VALUES (?, :x); UPDATE t SET c = ? WHERE a = ? DELETE FROM t WHERE a = :y; APPLY BATCH;",
    )
    .unwrap();
    assert_eq!(p.bind_count, 6);
    assert_eq!(
        p.bind_names,
        [None, None, Some("x".into()), None, None, Some("y".into())]
    );
    let Statement::Batch(b) = &p.statement else {
        panic!()
    };
    assert_eq!(b.kind, BatchKind::Unlogged);
    assert_eq!(b.using.timestamp, Some(q(0)));
    assert_eq!(b.statements.len(), 3);
    let Statement::Update(u) = &b.statements[1] else {
        panic!()
    };
    assert_eq!(u.assignments[0].value, AssignValue::Set(q(3)));
    rt("BEGIN BATCH INSERT INTO t (a) VALUES (1) APPLY BATCH");
    match rt("BEGIN COUNTER BATCH UPDATE t SET c = c + 1 WHERE k = 1; APPLY BATCH") {
        Statement::Batch(b) => assert_eq!(b.kind, BatchKind::Counter),
        s => panic!("{s:?}"),
    }
    assert!(parse("BEGIN BATCH SELECT * FROM t APPLY BATCH").is_err());
    let p = parse("SELECT * FROM t WHERE a = :a AND b = ? AND c IN :\"Cs\" LIMIT ?").unwrap();
    assert_eq!(
        p.bind_names,
        [Some("a".into()), None, Some("Cs".into()), None]
    );
}

// ---------------------------------------------------------------- DDL

#[test]
fn keyspace_ddl() {
    match rt(
        "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3} AND durable_writes = false",
    ) {
        Statement::CreateKeyspace(k) => {
            assert!(k.if_not_exists);
            assert_eq!(k.name, "ks");
            assert_eq!(
                k.properties,
                [
                    Property {
                        name: "replication".into(),
                        value: PropertyValue::Map(vec![
                            (
                                Literal::String("class".into()),
                                Literal::String("SimpleStrategy".into())
                            ),
                            (
                                Literal::String("replication_factor".into()),
                                Literal::Integer("3".into())
                            )
                        ])
                    },
                    Property {
                        name: "durable_writes".into(),
                        value: PropertyValue::Constant(Literal::Boolean(false))
                    }
                ]
            );
        }
        s => panic!("{s:?}"),
    }
    rt("ALTER KEYSPACE ks WITH durable_writes = true");
    rt(
        "ALTER KEYSPACE IF EXISTS ks WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}",
    );
    assert_eq!(
        rt("DROP KEYSPACE IF EXISTS ks"),
        Statement::DropKeyspace {
            name: "ks".into(),
            if_exists: true
        }
    );
    rt("CREATE SCHEMA ks WITH replication = {'class': 'SimpleStrategy'}");
}

#[test]
fn table_ddl() {
    let t = match rt(
        "CREATE TABLE IF NOT EXISTS ks.t (a int, b text, c timeuuid, s int STATIC, m frozen<map<text, int>>, PRIMARY KEY ((a, b), c)) WITH CLUSTERING ORDER BY (c DESC) AND COMPACT STORAGE AND comment = 'x' AND compaction = {'class': 'LeveledCompactionStrategy'} AND gc_grace_seconds = 10 AND bloom_filter_fp_chance = 0.01 AND speculative_retry = '99PERCENTILE' AND caching = {'keys': 'ALL', 'rows_per_partition': 'NONE'} AND cdc = true AND x = SomeIdent",
    ) {
        Statement::CreateTable(t) => t,
        s => panic!("{s:?}"),
    };
    assert!(t.if_not_exists);
    assert_eq!(t.columns.len(), 5);
    assert!(t.columns[3].is_static);
    assert_eq!(
        t.columns[4].ty,
        TypeExpr::Frozen(Box::new(TypeExpr::Map(
            Box::new(TypeExpr::Native("text".into())),
            Box::new(TypeExpr::Native("int".into()))
        )))
    );
    assert_eq!(
        t.primary_key,
        Some((vec!["a".into(), "b".into()], vec!["c".into()]))
    );
    assert_eq!(t.clustering_order, [("c".to_string(), Order::Desc)]);
    assert!(t.compact_storage);
    assert_eq!(t.properties.len(), 8);
    assert_eq!(
        t.properties[7].value,
        PropertyValue::Identifier("SomeIdent".into())
    );
    let t = match rt("CREATE TABLE t (k int PRIMARY KEY, v text,)") {
        Statement::CreateTable(t) => t,
        s => panic!("{s:?}"),
    };
    assert!(t.columns[0].primary_key && t.primary_key.is_none());
    let t = match rt("CREATE COLUMNFAMILY t (a int, c int, PRIMARY KEY (a, c))") {
        Statement::CreateTable(t) => t,
        s => panic!("{s:?}"),
    };
    assert_eq!(t.primary_key, Some((vec!["a".into()], vec!["c".into()])));

    let alter = |q: &str| match rt(q) {
        Statement::AlterTable(a) => a.action,
        s => panic!("{s:?}"),
    };
    assert!(
        matches!(alter("ALTER TABLE t ADD c int"), AlterTableAction::Add { columns, if_not_exists: false } if columns.len() == 1)
    );
    assert!(
        matches!(alter("ALTER TABLE t ADD IF NOT EXISTS (c int, d set<text> static)"), AlterTableAction::Add { columns, if_not_exists: true } if columns.len() == 2 && columns[1].is_static)
    );
    assert_eq!(
        alter("ALTER TABLE t DROP c"),
        AlterTableAction::Drop {
            columns: vec!["c".into()],
            if_exists: false,
            timestamp: None
        }
    );
    assert_eq!(
        alter("ALTER TABLE t DROP IF EXISTS (c, d) USING TIMESTAMP 10"),
        AlterTableAction::Drop {
            columns: vec!["c".into(), "d".into()],
            if_exists: true,
            timestamp: Some(int("10"))
        }
    );
    assert_eq!(
        alter("ALTER TABLE t RENAME a TO b AND c TO d"),
        AlterTableAction::Rename {
            renames: vec![("a".into(), "b".into()), ("c".into(), "d".into())],
            if_exists: false
        }
    );
    assert_eq!(
        alter("ALTER TABLE t ALTER c TYPE blob"),
        AlterTableAction::AlterType {
            column: "c".into(),
            ty: TypeExpr::Native("blob".into())
        }
    );
    assert!(
        matches!(alter("ALTER TABLE t WITH comment = 'c' AND gc_grace_seconds = 0"), AlterTableAction::With(p) if p.len() == 2)
    );
    match rt("ALTER TABLE IF EXISTS ks.t WITH comment = ''") {
        Statement::AlterTable(a) => assert!(a.if_exists),
        s => panic!("{s:?}"),
    }
    assert_eq!(
        rt("DROP TABLE IF EXISTS ks.t"),
        Statement::DropTable {
            name: qn(Some("ks"), "t"),
            if_exists: true
        }
    );
    assert_eq!(
        rt("DROP COLUMNFAMILY t"),
        Statement::DropTable {
            name: qn(None, "t"),
            if_exists: false
        }
    );
    assert_eq!(rt("TRUNCATE t"), Statement::Truncate(qn(None, "t")));
    assert_eq!(
        rt("TRUNCATE TABLE ks.t"),
        Statement::Truncate(qn(Some("ks"), "t"))
    );
}

#[test]
fn type_and_index_ddl() {
    assert_eq!(
        rt("CREATE TYPE IF NOT EXISTS ks.addr (street text, zip int, tags frozen<set<text>>)"),
        Statement::CreateType {
            name: qn(Some("ks"), "addr"),
            if_not_exists: true,
            fields: vec![
                ("street".into(), TypeExpr::Native("text".into())),
                ("zip".into(), TypeExpr::Native("int".into())),
                (
                    "tags".into(),
                    TypeExpr::Frozen(Box::new(TypeExpr::Set(Box::new(TypeExpr::Native(
                        "text".into()
                    )))))
                ),
            ]
        }
    );
    assert!(matches!(
        rt("ALTER TYPE a ADD f int"),
        Statement::AlterType {
            action: AlterTypeAction::Add { .. },
            ..
        }
    ));
    assert!(matches!(
        rt("ALTER TYPE IF EXISTS a ADD IF NOT EXISTS f int"),
        Statement::AlterType {
            if_exists: true,
            action: AlterTypeAction::Add {
                if_not_exists: true,
                ..
            },
            ..
        }
    ));
    assert!(
        matches!(rt("ALTER TYPE a RENAME f TO g AND h TO i"), Statement::AlterType { action: AlterTypeAction::Rename { renames, .. }, .. } if renames.len() == 2)
    );
    assert!(matches!(
        rt("ALTER TYPE a ALTER f TYPE text"),
        Statement::AlterType {
            action: AlterTypeAction::AlterField { .. },
            ..
        }
    ));
    assert!(matches!(
        rt("DROP TYPE IF EXISTS ks.a"),
        Statement::DropType {
            if_exists: true,
            ..
        }
    ));

    let idx = |q: &str| match rt(q) {
        Statement::CreateIndex(i) => i,
        s => panic!("{s:?}"),
    };
    let i = idx("CREATE INDEX ON t (c)");
    assert_eq!(i.name, None);
    assert_eq!(i.targets, [("c".to_string(), IndexTargetKind::Simple)]);
    let i = idx("CREATE INDEX IF NOT EXISTS i ON ks.t (keys(m))");
    assert!(i.if_not_exists);
    assert_eq!(i.name.as_deref(), Some("i"));
    assert_eq!(i.targets, [("m".to_string(), IndexTargetKind::Keys)]);
    assert_eq!(
        idx("CREATE INDEX ON t (values(m))").targets[0].1,
        IndexTargetKind::Values
    );
    assert_eq!(
        idx("CREATE INDEX ON t (entries(m))").targets[0].1,
        IndexTargetKind::Entries
    );
    assert_eq!(
        idx("CREATE INDEX ON t (full(l))").targets[0].1,
        IndexTargetKind::Full
    );
    let i = idx(
        "CREATE CUSTOM INDEX i ON t (c) USING 'org.apache.cassandra.index.sasi.SASIIndex' WITH OPTIONS = {'mode': 'CONTAINS'}",
    );
    assert_eq!(
        i.custom_class.as_deref(),
        Some("org.apache.cassandra.index.sasi.SASIIndex")
    );
    assert_eq!(i.properties[0].name, "options");
    assert_eq!(
        rt("DROP INDEX IF EXISTS ks.i"),
        Statement::DropIndex {
            name: qn(Some("ks"), "i"),
            if_exists: true
        }
    );
}

#[test]
fn types() {
    let cases = [
        ("int", "int"),
        ("VARCHAR", "varchar"),
        ("frozen<map<text, int>>", "frozen<map<text, int>>"),
        ("list<frozen<set<bigint>>>", "list<frozen<set<bigint>>>"),
        ("tuple<int, text, uuid>", "tuple<int, text, uuid>"),
        ("vector<float, 3>", "vector<float, 3>"),
        ("ks.my_type", "ks.my_type"),
        ("\"MyType\"", "\"MyType\""),
        ("frozen<\"Addr\">", "frozen<\"Addr\">"),
        (
            "'org.apache.cassandra.db.marshal.UTF8Type'",
            "'org.apache.cassandra.db.marshal.UTF8Type'",
        ),
    ];
    for (input, printed) in cases {
        let t = parse_type(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(t.to_string(), printed);
        assert_eq!(parse_type(printed).unwrap(), t);
    }
    for native in [
        "ascii",
        "bigint",
        "blob",
        "boolean",
        "counter",
        "date",
        "decimal",
        "double",
        "duration",
        "float",
        "inet",
        "int",
        "smallint",
        "text",
        "time",
        "timestamp",
        "timeuuid",
        "tinyint",
        "uuid",
        "varchar",
        "varint",
    ] {
        assert_eq!(parse_type(native).unwrap(), TypeExpr::Native(native.into()));
    }
    assert_eq!(
        parse_type("vector<float,3>").unwrap(),
        TypeExpr::Vector(Box::new(TypeExpr::Native("float".into())), 3)
    );
    assert!(parse_type("map<int>").is_err());
    assert!(parse_type("list<int").is_err());
    assert!(parse_type("").is_err());
    assert!(parse_type("int int").is_err());
}

// ---------------------------------------------------------------- roles and permissions

#[test]
fn roles_and_users() {
    match rt(
        "CREATE ROLE IF NOT EXISTS alice WITH PASSWORD = 'pw' AND LOGIN = true AND SUPERUSER = false AND OPTIONS = {'a': 1} AND ACCESS TO DATACENTERS {'dc1', 'dc2'}",
    ) {
        Statement::CreateRole {
            name,
            if_not_exists,
            options,
        } => {
            assert_eq!(name, "alice");
            assert!(if_not_exists);
            assert_eq!(options.password.as_deref(), Some("pw"));
            assert_eq!(options.login, Some(true));
            assert_eq!(options.superuser, Some(false));
            assert_eq!(options.options.as_ref().map(Vec::len), Some(1));
            assert_eq!(
                options.access_to_datacenters,
                Some(vec!["dc1".to_string(), "dc2".to_string()])
            );
        }
        s => panic!("{s:?}"),
    }
    match rt("CREATE ROLE 'Bob Smith'") {
        Statement::CreateRole { name, options, .. } => {
            assert_eq!(name, "Bob Smith");
            assert_eq!(options, RoleOptions::default());
        }
        s => panic!("{s:?}"),
    }
    assert!(
        matches!(rt("ALTER ROLE r WITH HASHED PASSWORD = 'h'"), Statement::AlterRole { options, .. } if options.hashed_password.as_deref() == Some("h"))
    );
    assert!(matches!(
        rt("ALTER ROLE IF EXISTS r WITH LOGIN = false"),
        Statement::AlterRole {
            if_exists: true,
            ..
        }
    ));
    assert!(
        matches!(rt("CREATE ROLE r WITH ACCESS TO ALL DATACENTERS"), Statement::CreateRole { options, .. } if options.access_to_datacenters.is_none())
    );
    assert_eq!(
        rt("DROP ROLE IF EXISTS \"R\""),
        Statement::DropRole {
            name: "R".into(),
            if_exists: true
        }
    );
    assert_eq!(
        rt("CREATE USER Bob WITH PASSWORD 'pw' SUPERUSER"),
        Statement::CreateUser {
            name: "Bob".into(),
            if_not_exists: false,
            password: Some("pw".into()),
            superuser: Some(true)
        }
    );
    assert!(matches!(
        rt("CREATE USER IF NOT EXISTS 'x y' NOSUPERUSER"),
        Statement::CreateUser {
            superuser: Some(false),
            if_not_exists: true,
            ..
        }
    ));
    assert!(matches!(
        rt("ALTER USER bob WITH PASSWORD 'p'"),
        Statement::AlterUser { .. }
    ));
    assert!(matches!(
        rt("DROP USER IF EXISTS bob"),
        Statement::DropUser {
            if_exists: true,
            ..
        }
    ));
    assert_eq!(rt("LIST USERS"), Statement::ListUsers);
    assert_eq!(
        rt("LIST ROLES"),
        Statement::ListRoles {
            of: None,
            recursive: true
        }
    );
    assert_eq!(
        rt("LIST ROLES OF bob NORECURSIVE"),
        Statement::ListRoles {
            of: Some("bob".into()),
            recursive: false
        }
    );
}

#[test]
fn permissions() {
    let g = |q: &str| match rt(q) {
        Statement::GrantPermission {
            permission,
            resource,
            role,
        } => (permission, resource, role),
        s => panic!("{s:?}"),
    };
    assert_eq!(
        g("GRANT ALL PERMISSIONS ON ALL KEYSPACES TO bob"),
        (PermissionSpec::All, Resource::AllKeyspaces, "bob".into())
    );
    assert_eq!(
        g("GRANT ALL ON KEYSPACE ks TO r").1,
        Resource::Keyspace("ks".into())
    );
    assert_eq!(
        g("GRANT SELECT ON ks.t TO r"),
        (
            PermissionSpec::One("select".into()),
            Resource::Table(qn(Some("ks"), "t")),
            "r".into()
        )
    );
    assert_eq!(
        g("GRANT MODIFY PERMISSION ON TABLE ks.t TO r").1,
        Resource::Table(qn(Some("ks"), "t"))
    );
    assert_eq!(g("GRANT CREATE ON ALL ROLES TO r").1, Resource::AllRoles);
    assert_eq!(
        g("GRANT ALTER ON ROLE x TO r").1,
        Resource::Role("x".into())
    );
    assert_eq!(
        g("GRANT EXECUTE ON ALL FUNCTIONS TO r").1,
        Resource::AllFunctions { keyspace: None }
    );
    assert_eq!(
        g("GRANT EXECUTE ON ALL FUNCTIONS IN KEYSPACE ks TO r").1,
        Resource::AllFunctions {
            keyspace: Some("ks".into())
        }
    );
    assert_eq!(
        g("GRANT EXECUTE ON FUNCTION ks.f(int, frozen<list<text>>) TO r").1,
        Resource::Function {
            name: qn(Some("ks"), "f"),
            arg_types: vec![
                TypeExpr::Native("int".into()),
                TypeExpr::Frozen(Box::new(TypeExpr::List(Box::new(TypeExpr::Native(
                    "text".into()
                )))))
            ]
        }
    );
    assert_eq!(
        g("GRANT DESCRIBE ON ALL MBEANS TO r").1,
        Resource::AllMbeans
    );
    assert_eq!(
        g("GRANT AUTHORIZE ON MBEAN 'org.apache:type=X' TO r").1,
        Resource::Mbean("org.apache:type=X".into())
    );
    assert_eq!(
        g("GRANT DROP ON MBEANS 'org.*' TO r").1,
        Resource::Mbean("org.*".into())
    );
    assert_eq!(
        g("GRANT UNMASK ON ks.t TO r").0,
        PermissionSpec::One("unmask".into())
    );
    assert_eq!(
        g("GRANT SELECT_MASKED ON ks.t TO r").0,
        PermissionSpec::One("select_masked".into())
    );
    assert!(matches!(
        rt("REVOKE SELECT ON ks.t FROM r"),
        Statement::RevokePermission { .. }
    ));
    assert_eq!(
        rt("GRANT admin TO bob"),
        Statement::GrantRole {
            role: "admin".into(),
            grantee: "bob".into()
        }
    );
    assert_eq!(
        rt("REVOKE admin FROM bob"),
        Statement::RevokeRole {
            role: "admin".into(),
            revokee: "bob".into()
        }
    );
    assert_eq!(
        rt("LIST ALL"),
        Statement::ListPermissions {
            permission: PermissionSpec::All,
            resource: None,
            of: None,
            recursive: true
        }
    );
    assert_eq!(
        rt("LIST SELECT PERMISSION ON ks.t OF bob NORECURSIVE"),
        Statement::ListPermissions {
            permission: PermissionSpec::One("select".into()),
            resource: Some(Resource::Table(qn(Some("ks"), "t"))),
            of: Some("bob".into()),
            recursive: false
        }
    );
    assert!(matches!(
        rt("LIST ALL PERMISSIONS OF bob"),
        Statement::ListPermissions { of: Some(_), .. }
    ));
}

// ---------------------------------------------------------------- unsupported-but-parsed

#[test]
fn functions_views_triggers() {
    let body = "CREATE OR REPLACE FUNCTION IF NOT EXISTS ks.f(a int, b text) CALLED ON NULL INPUT RETURNS int LANGUAGE java AS $$ return a; /* ' */ $$";
    assert_eq!(
        rt(body),
        Statement::CreateFunction {
            name: qn(Some("ks"), "f"),
            if_not_exists: true,
            or_replace: true
        }
    );
    assert!(matches!(
        rt(
            "CREATE FUNCTION f(a int) RETURNS NULL ON NULL INPUT RETURNS int LANGUAGE java AS 'return a;'"
        ),
        Statement::CreateFunction {
            or_replace: false,
            ..
        }
    ));
    assert_eq!(
        rt("DROP FUNCTION IF EXISTS ks.f(int, text)"),
        Statement::DropFunction {
            name: qn(Some("ks"), "f"),
            if_exists: true
        }
    );
    assert!(matches!(
        rt("DROP FUNCTION f"),
        Statement::DropFunction { .. }
    ));
    assert!(matches!(
        rt("CREATE AGGREGATE ks.a(int) SFUNC s STYPE int FINALFUNC f INITCOND 0"),
        Statement::CreateAggregate { .. }
    ));
    assert!(matches!(
        rt("DROP AGGREGATE IF EXISTS a(int)"),
        Statement::DropAggregate {
            if_exists: true,
            ..
        }
    ));
    assert_eq!(
        rt(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS ks.v AS SELECT a, b FROM ks.t WHERE a IS NOT NULL AND b IS NOT NULL PRIMARY KEY (b, a) WITH comment = 'x'"
        ),
        Statement::CreateMaterializedView {
            name: qn(Some("ks"), "v"),
            if_not_exists: true
        }
    );
    assert_eq!(
        rt("ALTER MATERIALIZED VIEW ks.v WITH comment = 'y'"),
        Statement::AlterMaterializedView {
            name: qn(Some("ks"), "v")
        }
    );
    assert!(matches!(
        rt("DROP MATERIALIZED VIEW IF EXISTS v"),
        Statement::DropMaterializedView {
            if_exists: true,
            ..
        }
    ));
    assert_eq!(
        rt("CREATE TRIGGER trg ON ks.t USING 'org.x.Trigger'"),
        Statement::CreateTrigger {
            name: "trg".into(),
            table: qn(Some("ks"), "t")
        }
    );
    assert_eq!(
        rt("DROP TRIGGER IF EXISTS trg ON t"),
        Statement::DropTrigger {
            name: "trg".into(),
            table: qn(None, "t"),
            if_exists: true
        }
    );
}

// ---------------------------------------------------------------- errors

#[test]
fn error_messages() {
    assert_eq!(
        err("gibberish"),
        "line 1:0 no viable alternative at input 'gibberish' ([gibberish])"
    );
    assert_eq!(
        err("SELECT * FORM t"),
        "line 1:9 mismatched input 'FORM' expecting K_FROM (SELECT * [FORM]...)"
    );
    assert_eq!(
        err("SELECT * FROM t LIMT 1"),
        "line 1:16 mismatched input 'LIMT' expecting EOF (SELECT * FROM t [LIMT]...)"
    );
    assert_eq!(
        err("SELECT * FROM t WHERE"),
        "line 0:-1 no viable alternative at input '<EOF>'"
    );
    assert_eq!(
        err("SELECT a FROM t WHERE k = 1 AND\n  v = "),
        "line 0:-1 no viable alternative at input '<EOF>'"
    );
    assert_eq!(
        err("SELECT * FROM t\nWHERE a == 1"),
        "line 2:9 no viable alternative at input '=' (... FROM tWHERE a =[=]...)"
    );
    // Line and column of the offending token on a later line.
    let e = err("INSERT INTO t (a, b)\n   VALUES (1, 2) extra");
    assert!(
        e.starts_with("line 2:17 mismatched input 'extra' expecting EOF"),
        "{e}"
    );
    assert!(err("").starts_with("line 0:-1 no viable alternative at input '<EOF>'"));
    assert_eq!(
        err(";"),
        "line 1:0 no viable alternative at input ';' ([;])"
    );
    assert_eq!(
        err("SELECT * FROM t WHERE a = 'abc"),
        "line 1:30 mismatched character '<EOF>' expecting '''"
    );
    assert_eq!(
        err("SELECT # FROM t"),
        "line 1:7 no viable alternative at character '#'"
    );
    let e = err("SELECT * FROM t WHERE a = 1 AND b = 2 AND c = 3 AND d = 4 AND e = 5 AND f");
    assert!(e.starts_with("line 0:-1"), "{e}");
    let e = err("SELECT * FROM t WHERE a = 1 AND b = 2 AND c = 3 AND d = 4 AND e = 5 AND ) ");
    assert_eq!(
        e,
        "line 1:72 no viable alternative at input ')' (...AND e = 5 AND [)]...)"
    );
    let e = err("USE ?");
    assert!(
        e.contains("Bind variables cannot be used for keyspace names"),
        "{e}"
    );
    let e = err("CREATE KEYSPACE ks WITH replication = {'class': ?}");
    assert!(e.contains("Invalid property value"), "{e}");
}

#[test]
fn trailing_semicolons_and_comments() {
    rt("SELECT * FROM t;");
    rt("SELECT * FROM t;;");
    rt("-- leading comment\nSELECT /* inline */ * FROM t // trailing");
    assert!(parse("SELECT * FROM t; SELECT * FROM u").is_err());
}

#[test]
fn display_canonical_text() {
    let p = |q: &str| parse(q).unwrap().statement.to_string();
    assert_eq!(
        p("select a as \"A\", writetime(b) from KS.T where k in (1, 2) and c >= 'x' limit 10"),
        "SELECT a AS \"A\", writetime(b) FROM ks.t WHERE k IN (1, 2) AND c >= 'x' LIMIT 10"
    );
    assert_eq!(
        p("insert into t (\"select\", b) values ('it''s', -1.5) using ttl 1"),
        "INSERT INTO t (\"select\", b) VALUES ('it''s', -1.5) USING TTL 1"
    );
    assert_eq!(
        p("update t set l = [1] + l, c = c - 1 where k = :key if exists"),
        "UPDATE t SET l = [1] + l, c = c - 1 WHERE k = :key IF EXISTS"
    );
    assert_eq!(
        p("delete m[?] from t where token(k) > token(?)"),
        "DELETE m[?] FROM t WHERE token(k) > token(?)"
    );
    assert_eq!(
        p("SELECT * FROM t WHERE \"P1D\" = 1 AND pt = 2"),
        "SELECT * FROM t WHERE \"P1D\" = 1 AND pt = 2"
    );
    // A name the lexer would read as a duration must be quoted.
    assert_eq!(p("SELECT \"p1d\" FROM t"), "SELECT \"p1d\" FROM t");
}

#[test]
fn many_round_trips() {
    for q in [
        "SELECT DISTINCT k FROM t",
        "SELECT count(*) AS c FROM t WHERE k = ? PER PARTITION LIMIT ?",
        "SELECT * FROM t WHERE k = 0x AND u = 550e8400-e29b-41d4-a716-446655440000",
        "SELECT * FROM t WHERE d = 1h30m AND e = -Infinity AND f = NaN",
        "SELECT * FROM t WHERE m CONTAINS KEY ? AND s CONTAINS ?",
        "SELECT * FROM t WHERE (a, b) IN (?, ?) AND (c) = (1)",
        "SELECT a.b, cast(c AS text), f(g(h)) FROM t",
        "SELECT * FROM t WHERE k = (text) 'x'",
        "SELECT * FROM t WHERE k = - (int) ?",
        "UPDATE t USING TIMESTAMP ? AND TTL ? SET a = ? WHERE k = ?",
        "UPDATE t SET m = m + {'a': 1}, s = s - {'x'} WHERE k = 1 IF m['a'] IN (1, 2) AND u.f = 2",
        "DELETE FROM t USING TIMESTAMP ? WHERE k = ? IF EXISTS",
        "BEGIN BATCH USING TIMESTAMP 5 INSERT INTO t (a) VALUES (?); DELETE FROM t WHERE a = ?; APPLY BATCH",
        "INSERT INTO \"Ks\".\"T\" (\"A\") VALUES ({\"Field\": 1})",
        "CREATE TABLE t (a int, b text, PRIMARY KEY (a))",
        "GRANT ALL ON ALL KEYSPACES TO \"Bob\"",
        "CREATE USER 'bob' WITH PASSWORD 'x''y'",
    ] {
        rt(q);
    }
}

#[test]
fn parse_is_fast() {
    // Not a benchmark: guards against accidental quadratic behaviour on long statements.
    let mut q = String::from("INSERT INTO t (k");
    for i in 0..2000 {
        q.push_str(&format!(", c{i}"));
    }
    q.push_str(") VALUES (?");
    for _ in 0..2000 {
        q.push_str(", ?");
    }
    q.push(')');
    let start = std::time::Instant::now();
    for _ in 0..10 {
        assert_eq!(parse(&q).unwrap().bind_count, 2001);
    }
    assert!(start.elapsed().as_secs() < 5);
}

// ---------------------------------------------------------------- fuzzing

mod fuzz {
    use proptest::prelude::*;

    const SOUP: &[&str] = &[
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "BEGIN",
        "BATCH",
        "APPLY",
        "FROM",
        "WHERE",
        "AND",
        "IN",
        "INTO",
        "VALUES",
        "SET",
        "IF",
        "NOT",
        "EXISTS",
        "USING",
        "TTL",
        "TIMESTAMP",
        "CREATE",
        "ALTER",
        "DROP",
        "TABLE",
        "KEYSPACE",
        "TYPE",
        "INDEX",
        "ON",
        "WITH",
        "PRIMARY",
        "KEY",
        "DESC",
        "GRANT",
        "ROLE",
        "LIST",
        "ALL",
        "token",
        "count",
        "writetime",
        "k",
        "t",
        "\"Q\"",
        "'s'",
        "$$b$$",
        "1",
        "-2",
        "1.5",
        "1e3",
        "0xAB",
        "1h",
        "P1D",
        "NaN",
        "-Infinity",
        "true",
        "null",
        "?",
        ":n",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ";",
        ".",
        ":",
        "*",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "+",
        "-",
        "+=",
        "-=",
        "frozen",
        "<",
        "map",
        "list",
        "int",
        "text",
        "AS",
        "CONTAINS",
        "LIMIT",
        "ORDER",
        "BY",
        "--",
        "/*",
        "*/",
        "\n",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC{0,80}") {
            super::super::fuzz_one(s.as_bytes());
        }

        #[test]
        fn token_soups_never_panic(words in proptest::collection::vec(0..SOUP.len(), 0..30)) {
            let q: Vec<&str> = words.into_iter().map(|i| SOUP[i]).collect();
            super::super::fuzz_one(q.join(" ").as_bytes());
        }

        #[test]
        fn bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            super::super::fuzz_one(&b);
        }
    }
}

#[test]
fn assorted_real_world_statements() {
    for q in [
        "SELECT * FROM t WHERE k = 1 AND c IN ?",
        "SELECT a FROM t WHERE a = 'x' ORDER BY b",
        "INSERT INTO t (a) VALUES (?) USING TTL :ttl",
        "UPDATE t SET a = ? WHERE k IN ?",
        "select JSON a from t",
        "SELECT DISTINCT key FROM t",
        "SELECT * FROM t WHERE \"Key\" = ?",
        "CREATE TABLE ks.t (\"Id\" uuid, v vector<float, 3>, PRIMARY KEY (\"Id\")) WITH default_time_to_live = 0",
        "SELECT ttl, writetime, count, cast, json, distinct FROM t",
        "UPDATE t SET ttl = 1 WHERE key = 1",
        "SELECT * FROM t WHERE v = {a: 1, b: {c: 2}}",
        "SELECT * FROM t WHERE m = {}",
        "INSERT INTO t (a) VALUES ((1, 2))",
        "SELECT token(k), k FROM t WHERE token(k) >= -9223372036854775808",
        "SELECT * FROM t WHERE k = 1 ALLOW FILTERING;",
        "CREATE KEYSPACE \"Ks\" WITH REPLICATION = {'class' : 'SimpleStrategy', 'replication_factor' : 1}",
        "DESC t",
        "CREATE INDEX \"Idx\" ON t (\"Col\")",
        "GRANT SELECT ON KEYSPACE ks TO 'role with space'",
        "CREATE ROLE r WITH LOGIN = true AND SUPERUSER = true AND PASSWORD = 'p'",
        "ALTER TABLE t WITH caching = {'keys': 'ALL'} AND compression = {'enabled': false}",
        "CREATE TABLE IF NOT EXISTS system_auth.roles (role text PRIMARY KEY, can_login boolean, is_superuser boolean, member_of set<text>, salted_hash text)",
        "CREATE TABLE t (k int, c1 int, c2 text, v map<int, frozen<tuple<int, text>>>, PRIMARY KEY (k, c1, c2)) WITH CLUSTERING ORDER BY (c1 ASC, c2 DESC)",
        "SELECT sum(v), avg(v), min(v), max(v) FROM t GROUP BY k",
        "SELECT toJson(v), fromJson('1') FROM t",
    ] {
        rt(q);
    }
    assert_eq!(
        err("SELECT * FROM t WHERE k = 1 AND c = 2 IF EXISTS"),
        "line 1:38 mismatched input 'IF' expecting EOF (...1 AND c = 2 [IF]...)"
    );
}

#[test]
fn deep_nesting_is_a_syntax_error_not_a_crash() {
    for depth in [65usize, 1000, 100_000] {
        let list = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let err = parse(&format!("INSERT INTO t (k, v) VALUES (1, {list})")).unwrap_err();
        assert!(
            matches!(err, CqlError::Syntax(ref m) if m.contains("nested too deeply")),
            "{err:?}"
        );
        let ty = format!("{}int{}", "frozen<list<".repeat(depth), ">>".repeat(depth));
        let err = parse(&format!("CREATE TABLE t (k int PRIMARY KEY, v {ty})")).unwrap_err();
        assert!(
            matches!(err, CqlError::Syntax(ref m) if m.contains("nested too deeply")),
            "{err:?}"
        );
    }
    // Just under the limit still parses.
    let list = format!("{}1{}", "[".repeat(60), "]".repeat(60));
    parse(&format!("INSERT INTO t (k, v) VALUES (1, {list})")).unwrap();
}
