//! Permissions and resources with Cassandra's names (`auth/Permission.java`,
//! `DataResource`, `RoleResource`, `FunctionResource`, `JMXResource`).

use std::fmt;

/// In Cassandra's declaration order, which LIST PERMISSIONS sorts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    Create,
    Alter,
    Drop,
    Select,
    Modify,
    Authorize,
    Describe,
    Execute,
}

impl Permission {
    pub const ALL: [Permission; 8] = [
        Permission::Create,
        Permission::Alter,
        Permission::Drop,
        Permission::Select,
        Permission::Modify,
        Permission::Authorize,
        Permission::Describe,
        Permission::Execute,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Create => "CREATE",
            Permission::Alter => "ALTER",
            Permission::Drop => "DROP",
            Permission::Select => "SELECT",
            Permission::Modify => "MODIFY",
            Permission::Authorize => "AUTHORIZE",
            Permission::Describe => "DESCRIBE",
            Permission::Execute => "EXECUTE",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }
}

/// A resource permissions are granted on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    AllKeyspaces,
    Keyspace(String),
    Table(String, String),
    AllRoles,
    Role(String),
    AllFunctions,
    KeyspaceFunctions(String),
    /// keyspace, function name, argument types as CQL text.
    Function(String, String, Vec<String>),
    AllMbeans,
    Mbean(String),
}

impl Resource {
    /// The name stored in `role_permissions.resource` (`IResource.getName`).
    pub fn name(&self) -> String {
        match self {
            Resource::AllKeyspaces => "data".into(),
            Resource::Keyspace(k) => format!("data/{k}"),
            Resource::Table(k, t) => format!("data/{k}/{t}"),
            Resource::AllRoles => "roles".into(),
            Resource::Role(r) => format!("roles/{r}"),
            Resource::AllFunctions => "functions".into(),
            Resource::KeyspaceFunctions(k) => format!("functions/{k}"),
            Resource::Function(k, f, args) => format!("functions/{k}/{f}[{}]", args.join("^")),
            Resource::AllMbeans => "mbean".into(),
            Resource::Mbean(m) => format!("mbean/{m}"),
        }
    }

    /// The inverse of [`Resource::name`].
    pub fn from_name(name: &str) -> Option<Resource> {
        let mut parts = name.splitn(3, '/');
        let root = parts.next()?;
        let a = parts.next();
        let b = parts.next();
        Some(match (root, a, b) {
            ("data", None, _) => Resource::AllKeyspaces,
            ("data", Some(k), None) => Resource::Keyspace(k.into()),
            ("data", Some(k), Some(t)) => Resource::Table(k.into(), t.into()),
            ("roles", None, _) => Resource::AllRoles,
            ("roles", Some(r), _) => {
                Resource::Role(name.strip_prefix("roles/").unwrap_or(r).into())
            }
            ("functions", None, _) => Resource::AllFunctions,
            ("functions", Some(k), None) => Resource::KeyspaceFunctions(k.into()),
            ("functions", Some(k), Some(f)) => {
                let (fname, args) = f.split_once('[').unwrap_or((f, "]"));
                let args = args.trim_end_matches(']');
                let args = if args.is_empty() {
                    Vec::new()
                } else {
                    args.split('^').map(str::to_string).collect()
                };
                Resource::Function(k.into(), fname.into(), args)
            }
            ("mbean", None, _) => Resource::AllMbeans,
            ("mbean", Some(_), _) => {
                Resource::Mbean(name.strip_prefix("mbean/").unwrap_or_default().into())
            }
            _ => return None,
        })
    }

    /// The resource, then its parents up to the root (`Resources.chain`).
    pub fn chain(&self) -> Vec<Resource> {
        let mut out = vec![self.clone()];
        let mut cur = self.clone();
        while let Some(p) = cur.parent() {
            out.push(p.clone());
            cur = p;
        }
        out
    }

    pub fn parent(&self) -> Option<Resource> {
        match self {
            Resource::Keyspace(_) => Some(Resource::AllKeyspaces),
            Resource::Table(k, _) => Some(Resource::Keyspace(k.clone())),
            Resource::Role(_) => Some(Resource::AllRoles),
            Resource::KeyspaceFunctions(_) => Some(Resource::AllFunctions),
            Resource::Function(k, _, _) => Some(Resource::KeyspaceFunctions(k.clone())),
            Resource::Mbean(_) => Some(Resource::AllMbeans),
            _ => None,
        }
    }

    /// The permissions that mean something on this resource (`applicablePermissions`).
    pub fn applicable(&self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Resource::AllKeyspaces | Resource::Keyspace(_) => {
                &[Create, Alter, Drop, Select, Modify, Authorize]
            }
            Resource::Table(..) => &[Alter, Drop, Select, Modify, Authorize],
            Resource::AllRoles => &[Create, Alter, Drop, Authorize, Describe],
            Resource::Role(_) => &[Alter, Drop, Authorize],
            Resource::AllFunctions | Resource::KeyspaceFunctions(_) => {
                &[Create, Alter, Drop, Authorize, Execute]
            }
            Resource::Function(..) => &[Alter, Drop, Authorize, Execute],
            Resource::AllMbeans | Resource::Mbean(_) => {
                &[Authorize, Describe, Execute, Modify, Select]
            }
        }
    }

    /// Cassandra's Java class name, for its "does not support" error.
    pub fn class_name(&self) -> &'static str {
        match self {
            Resource::AllKeyspaces | Resource::Keyspace(_) | Resource::Table(..) => "DataResource",
            Resource::AllRoles | Resource::Role(_) => "RoleResource",
            Resource::AllFunctions | Resource::KeyspaceFunctions(_) | Resource::Function(..) => {
                "FunctionResource"
            }
            Resource::AllMbeans | Resource::Mbean(_) => "JMXResource",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::AllKeyspaces => write!(f, "<all keyspaces>"),
            Resource::Keyspace(k) => write!(f, "<keyspace {k}>"),
            Resource::Table(k, t) => write!(f, "<table {k}.{t}>"),
            Resource::AllRoles => write!(f, "<all roles>"),
            Resource::Role(r) => write!(f, "<role {r}>"),
            Resource::AllFunctions => write!(f, "<all functions>"),
            Resource::KeyspaceFunctions(k) => write!(f, "<all functions in {k}>"),
            Resource::Function(k, n, args) => write!(f, "<function {k}.{n}({})>", args.join(", ")),
            Resource::AllMbeans => write!(f, "<all mbeans>"),
            Resource::Mbean(m) => write!(f, "<mbean {m}>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in [
            Resource::AllKeyspaces,
            Resource::Keyspace("ks".into()),
            Resource::Table("ks".into(), "t".into()),
            Resource::AllRoles,
            Resource::Role("a/b".into()),
            Resource::AllFunctions,
            Resource::KeyspaceFunctions("ks".into()),
            Resource::Function("ks".into(), "f".into(), vec!["int".into(), "text".into()]),
            Resource::AllMbeans,
            Resource::Mbean("org.apache:type=x".into()),
        ] {
            assert_eq!(Resource::from_name(&r.name()), Some(r.clone()), "{r}");
        }
    }

    #[test]
    fn chain_and_text() {
        let t = Resource::Table("ks".into(), "t".into());
        let chain: Vec<String> = t.chain().iter().map(|r| r.to_string()).collect();
        assert_eq!(chain, ["<table ks.t>", "<keyspace ks>", "<all keyspaces>"]);
        assert_eq!(Permission::parse("modify"), Some(Permission::Modify));
    }
}
