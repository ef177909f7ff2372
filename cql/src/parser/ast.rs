//! The CQL abstract syntax tree.
//!
//! Identifiers are already normalised by the parser: unquoted names are lower-cased,
//! quoted names keep their case with `""` unescaped. Bind markers are numbered in the order
//! they appear in the statement text, starting at 0, across the whole statement (for a
//! BATCH text, across all its children).

/// `[keyspace.]name`
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QualifiedName {
    pub keyspace: Option<String>,
    pub name: String,
}

/// A literal constant, kept as text where the type decides the meaning.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// `'...'` or `$$...$$`, unescaped.
    String(String),
    /// An integer literal, possibly with a leading `-`, as written.
    Integer(String),
    /// A float literal (`1.5`, `-2e10`), as written.
    Float(String),
    /// `NaN`, `Infinity`, `-Infinity`.
    NaN,
    Infinity,
    NegInfinity,
    Boolean(bool),
    /// An unquoted UUID literal, as written.
    Uuid(String),
    /// `0x...` hex digits (without the prefix), as written.
    Blob(String),
    /// An unquoted duration literal (`1h30m`, `P1DT2H`, `P0001-02-03T04:05:06`), as written.
    Duration(String),
    Null,
}

/// `?` (anonymous) or `:name` (named).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindMarker {
    /// Position among all markers of the statement, from 0.
    pub index: usize,
    /// For `:name` markers.
    pub name: Option<String>,
}

/// A value expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    Literal(Literal),
    Bind(BindMarker),
    /// `[a, b]`
    List(Vec<Term>),
    /// `{a, b}`. `{}` parses as an empty `Map` (Cassandra resolves it by the receiver type).
    Set(Vec<Term>),
    /// `{k: v, ...}`
    Map(Vec<(Term, Term)>),
    /// `(a, b, ...)` with at least two elements (or one followed by a comma is not CQL).
    Tuple(Vec<Term>),
    /// `{field: value, ...}` where every key is an identifier. The parser emits `Map` with
    /// `Term::Identifier` keys when it cannot tell; the executor resolves by type.
    Udt(Vec<(String, Term)>),
    /// A bare identifier in key position of a `{...}` literal (see `Udt`).
    Identifier(String),
    /// `name(args)` scalar function call, e.g. `now()`, `blobAsInt(0x01)`, `ks.f(1)`.
    FunctionCall {
        name: QualifiedName,
        args: Vec<Term>,
    },
    /// `(type) term`
    Cast {
        ty: TypeExpr,
        term: Box<Term>,
    },
    /// Unary minus applied to a non-literal (e.g. `-?`); literals carry their sign.
    Negate(Box<Term>),
}

/// A type as written in DDL or a cast, before UDT names are resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeExpr {
    /// A native type name, lower-cased (`int`, `text`, `varchar`, ...).
    Native(String),
    List(Box<TypeExpr>),
    Set(Box<TypeExpr>),
    Map(Box<TypeExpr>, Box<TypeExpr>),
    Tuple(Vec<TypeExpr>),
    Frozen(Box<TypeExpr>),
    Vector(Box<TypeExpr>, u32),
    /// A user-defined type name.
    UserDefined(QualifiedName),
    /// `'org.apache...SomeType'`
    Custom(String),
}

/// Comparison operators in WHERE and IF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    ContainsKey,
    Like,
    IsNot,
}

/// One WHERE relation.
#[derive(Clone, Debug, PartialEq)]
pub enum Relation {
    /// `col op term`, including `col IN (..)` (rhs `Term::Tuple`-like list as `InValues`)
    /// and `col CONTAINS x`, `col CONTAINS KEY x`, `col IS NOT NULL`, `col LIKE x`.
    Column {
        column: String,
        op: Operator,
        value: RelationValue,
    },
    /// `col[key] = x` on a map element (filtering).
    MapEntry {
        column: String,
        key: Term,
        op: Operator,
        value: Term,
    },
    /// `token(a, b) op term`
    Token {
        columns: Vec<String>,
        op: Operator,
        value: Term,
    },
    /// `(a, b) op (1, 2)` / `(a, b) IN ((1, 2), (3, 4))` / `(a, b) = ?`
    MultiColumn {
        columns: Vec<String>,
        op: Operator,
        value: RelationValue,
    },
}

/// The right-hand side of a relation.
#[derive(Clone, Debug, PartialEq)]
pub enum RelationValue {
    Single(Term),
    /// `IN (a, b, c)`: the listed terms (each a `Term::Tuple` for multi-column IN).
    InList(Vec<Term>),
    /// `IN ?` / `IN :name`: one marker for the whole list.
    InMarker(BindMarker),
}

/// One selected expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Selector {
    Column(String),
    /// `WRITETIME(col)`
    WriteTime(String),
    /// `TTL(col)`
    Ttl(String),
    /// `COUNT(*)` / `COUNT(1)`
    CountStar,
    /// `f(args)`, including aggregates (`count(col)`, `max(col)`...) and `token(k)`.
    Function {
        name: QualifiedName,
        args: Vec<Selector>,
    },
    /// `CAST(sel AS type)`
    Cast {
        selector: Box<Selector>,
        ty: TypeExpr,
    },
    /// `sel.field` (UDT field)
    Field {
        selector: Box<Selector>,
        field: String,
    },
    /// A constant or bind marker used as a selector.
    Term(Term),
}

/// `selector [AS alias]`
#[derive(Clone, Debug, PartialEq)]
pub struct SelectItem {
    pub selector: Selector,
    pub alias: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SelectStatement {
    pub json: bool,
    pub distinct: bool,
    /// Empty means `*`.
    pub selection: Vec<SelectItem>,
    pub table: QualifiedName,
    pub where_clause: Vec<Relation>,
    pub group_by: Vec<String>,
    pub order_by: Vec<(String, Order)>,
    pub per_partition_limit: Option<Term>,
    pub limit: Option<Term>,
    pub allow_filtering: bool,
}

/// `USING TTL x AND TIMESTAMP y`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsingClause {
    pub ttl: Option<Term>,
    pub timestamp: Option<Term>,
}

/// INSERT's value source.
#[derive(Clone, Debug, PartialEq)]
pub enum InsertValues {
    /// `(cols) VALUES (terms)`
    Values {
        columns: Vec<String>,
        values: Vec<Term>,
    },
    /// `JSON 'text' [DEFAULT NULL | DEFAULT UNSET]`
    Json { json: Term, default_unset: bool },
}

#[derive(Clone, Debug, PartialEq)]
pub struct InsertStatement {
    pub table: QualifiedName,
    pub values: InsertValues,
    pub if_not_exists: bool,
    pub using: UsingClause,
}

/// The left side of an assignment or DELETE target or IF condition.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnTarget {
    Column(String),
    /// `col[term]` (list index or map key)
    Element(String, Term),
    /// `col.field` (UDT field)
    Field(String, String),
}

/// The right side of `SET target = ...`.
#[derive(Clone, Debug, PartialEq)]
pub enum AssignValue {
    /// `= term`
    Set(Term),
    /// `= col + term` or `+= term`
    Add(Term),
    /// `= col - term` or `-= term`
    Subtract(Term),
    /// `= term + col` (list prepend)
    Prepend(Term),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    pub target: ColumnTarget,
    pub value: AssignValue,
}

/// `IF ...` on UPDATE/DELETE.
#[derive(Clone, Debug, PartialEq)]
pub enum Conditions {
    IfExists,
    /// `IF c1 op v1 AND ...`
    If(Vec<Condition>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub target: ColumnTarget,
    pub op: Operator,
    pub value: RelationValue,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UpdateStatement {
    pub table: QualifiedName,
    pub using: UsingClause,
    pub assignments: Vec<Assignment>,
    pub where_clause: Vec<Relation>,
    pub conditions: Option<Conditions>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeleteStatement {
    /// Empty means the whole row(s).
    pub targets: Vec<ColumnTarget>,
    pub table: QualifiedName,
    pub using: UsingClause,
    pub where_clause: Vec<Relation>,
    pub conditions: Option<Conditions>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchKind {
    Logged,
    Unlogged,
    Counter,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BatchStatement {
    pub kind: BatchKind,
    pub using: UsingClause,
    /// Only Insert, Update and Delete.
    pub statements: Vec<Statement>,
}

/// A `WITH` property value.
#[derive(Clone, Debug, PartialEq)]
pub enum PropertyValue {
    /// A constant (string, number, boolean) or identifier, as text.
    Constant(Literal),
    /// A bare identifier value (e.g. `WITH compaction_strategy = Leveled`).
    Identifier(String),
    /// `{ 'k': v, ... }`
    Map(Vec<(Literal, Literal)>),
}

/// `name = value` in a `WITH ... AND ...` list. The name is lower-cased.
#[derive(Clone, Debug, PartialEq)]
pub struct Property {
    pub name: String,
    pub value: PropertyValue,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CreateKeyspaceStatement {
    pub name: String,
    pub if_not_exists: bool,
    pub properties: Vec<Property>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ColumnDefinition {
    pub name: String,
    pub ty: TypeExpr,
    pub is_static: bool,
    /// `col type PRIMARY KEY`
    pub primary_key: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CreateTableStatement {
    pub name: QualifiedName,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnDefinition>,
    /// `PRIMARY KEY ((a, b), c, d)`: partition key then clustering columns; `None` when a
    /// column was declared inline `PRIMARY KEY`.
    pub primary_key: Option<(Vec<String>, Vec<String>)>,
    pub clustering_order: Vec<(String, Order)>,
    pub compact_storage: bool,
    pub properties: Vec<Property>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AlterTableAction {
    Add {
        columns: Vec<ColumnDefinition>,
        if_not_exists: bool,
    },
    Drop {
        columns: Vec<String>,
        if_exists: bool,
        timestamp: Option<Term>,
    },
    Rename {
        renames: Vec<(String, String)>,
        if_exists: bool,
    },
    AlterType {
        column: String,
        ty: TypeExpr,
    },
    With(Vec<Property>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct AlterTableStatement {
    pub name: QualifiedName,
    pub if_exists: bool,
    pub action: AlterTableAction,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AlterTypeAction {
    Add {
        field: String,
        ty: TypeExpr,
        if_not_exists: bool,
    },
    Rename {
        renames: Vec<(String, String)>,
        if_exists: bool,
    },
    AlterField {
        field: String,
        ty: TypeExpr,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexTargetKind {
    /// `col` (regular column, or values of a collection)
    Simple,
    Values,
    Keys,
    Entries,
    Full,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CreateIndexStatement {
    pub name: Option<String>,
    pub table: QualifiedName,
    pub if_not_exists: bool,
    pub targets: Vec<(String, IndexTargetKind)>,
    /// `CREATE CUSTOM INDEX ... USING 'class'`
    pub custom_class: Option<String>,
    pub properties: Vec<Property>,
}

/// DESCRIBE forms.
#[derive(Clone, Debug, PartialEq)]
pub enum DescribeTarget {
    Cluster,
    Schema {
        full: bool,
    },
    Keyspaces,
    Keyspace {
        name: Option<String>,
        only: bool,
    },
    Tables,
    Table(QualifiedName),
    Types,
    Type(QualifiedName),
    Functions,
    Function(QualifiedName),
    Aggregates,
    Aggregate(QualifiedName),
    Index(QualifiedName),
    MaterializedView(QualifiedName),
    /// `DESCRIBE name` or `DESCRIBE ks.name`: keyspace, then table, index, view.
    Generic(QualifiedName),
}

#[derive(Clone, Debug, PartialEq)]
pub struct DescribeStatement {
    pub target: DescribeTarget,
    pub with_internals: bool,
}

/// Role options of CREATE/ALTER ROLE (and USER).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoleOptions {
    pub password: Option<String>,
    pub hashed_password: Option<String>,
    pub login: Option<bool>,
    pub superuser: Option<bool>,
    pub options: Option<Vec<(Literal, Literal)>>,
    pub access_to_datacenters: Option<Vec<String>>,
}

/// A resource for GRANT/REVOKE/LIST PERMISSIONS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    AllKeyspaces,
    Keyspace(String),
    Table(QualifiedName),
    AllRoles,
    Role(String),
    AllFunctions {
        keyspace: Option<String>,
    },
    Function {
        name: QualifiedName,
        arg_types: Vec<TypeExpr>,
    },
    AllMbeans,
    Mbean(String),
}

/// A permission name (`SELECT`, `MODIFY`, ... lower-cased), or `ALL [PERMISSIONS]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PermissionSpec {
    All,
    One(String),
}

/// Every statement Shoal parses.
#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    Select(SelectStatement),
    Insert(InsertStatement),
    Update(UpdateStatement),
    Delete(DeleteStatement),
    Batch(BatchStatement),
    Use(String),
    CreateKeyspace(CreateKeyspaceStatement),
    AlterKeyspace {
        name: String,
        if_exists: bool,
        properties: Vec<Property>,
    },
    DropKeyspace {
        name: String,
        if_exists: bool,
    },
    CreateTable(CreateTableStatement),
    AlterTable(AlterTableStatement),
    DropTable {
        name: QualifiedName,
        if_exists: bool,
    },
    Truncate(QualifiedName),
    CreateType {
        name: QualifiedName,
        if_not_exists: bool,
        fields: Vec<(String, TypeExpr)>,
    },
    AlterType {
        name: QualifiedName,
        if_exists: bool,
        action: AlterTypeAction,
    },
    DropType {
        name: QualifiedName,
        if_exists: bool,
    },
    CreateIndex(CreateIndexStatement),
    DropIndex {
        name: QualifiedName,
        if_exists: bool,
    },
    Describe(DescribeStatement),
    CreateRole {
        name: String,
        if_not_exists: bool,
        options: RoleOptions,
    },
    AlterRole {
        name: String,
        if_exists: bool,
        options: RoleOptions,
    },
    DropRole {
        name: String,
        if_exists: bool,
    },
    /// `CREATE USER name WITH PASSWORD 'p' [SUPERUSER|NOSUPERUSER]`
    CreateUser {
        name: String,
        if_not_exists: bool,
        password: Option<String>,
        superuser: Option<bool>,
    },
    AlterUser {
        name: String,
        if_exists: bool,
        password: Option<String>,
        superuser: Option<bool>,
    },
    DropUser {
        name: String,
        if_exists: bool,
    },
    ListUsers,
    /// `GRANT perm ON resource TO role`
    GrantPermission {
        permission: PermissionSpec,
        resource: Resource,
        role: String,
    },
    RevokePermission {
        permission: PermissionSpec,
        resource: Resource,
        role: String,
    },
    /// `GRANT role TO grantee`
    GrantRole {
        role: String,
        grantee: String,
    },
    RevokeRole {
        role: String,
        revokee: String,
    },
    ListRoles {
        of: Option<String>,
        recursive: bool,
    },
    ListPermissions {
        permission: PermissionSpec,
        resource: Option<Resource>,
        of: Option<String>,
        recursive: bool,
    },
    /// Parsed so the error is Cassandra's, not a syntax error: Shoal refuses UDFs, UDAs,
    /// materialized views and triggers when executed.
    CreateFunction {
        name: QualifiedName,
        if_not_exists: bool,
        or_replace: bool,
    },
    DropFunction {
        name: QualifiedName,
        if_exists: bool,
    },
    CreateAggregate {
        name: QualifiedName,
        if_not_exists: bool,
        or_replace: bool,
    },
    DropAggregate {
        name: QualifiedName,
        if_exists: bool,
    },
    CreateMaterializedView {
        name: QualifiedName,
        if_not_exists: bool,
    },
    AlterMaterializedView {
        name: QualifiedName,
    },
    DropMaterializedView {
        name: QualifiedName,
        if_exists: bool,
    },
    CreateTrigger {
        name: String,
        table: QualifiedName,
    },
    DropTrigger {
        name: String,
        table: QualifiedName,
        if_exists: bool,
    },
}
