//! Authentication and authorization as Cassandra's `PasswordAuthenticator`,
//! `CassandraRoleManager` and `CassandraAuthorizer` do them: roles, memberships and
//! permissions live in the stored `system_auth` tables (so they survive restarts and use
//! Cassandra's layout), passwords are bcrypt hashes in `roles.salted_hash`.

pub mod internal;
pub mod resource;
pub mod statements;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{info, warn};

use crate::error::{CqlError, CqlResult};
use crate::executor::Executor;
use crate::parser::ast::{QualifiedName, Statement};
use crate::protocol::SchemaChange;
use crate::schema::Schema;

pub use resource::{Permission, Resource};

/// How long a verified password and a loaded copy of the auth tables stay valid, as
/// Cassandra's `credentials_validity` / `roles_validity` / `permissions_validity` (2 s).
const VALIDITY: Duration = Duration::from_secs(2);
/// bcrypt work factor Cassandra uses (`cassandra.auth_bcrypt_gensalt_log2_rounds`).
const BCRYPT_COST: u32 = 10;

/// Which authenticator and authorizer the node runs with.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// `PasswordAuthenticator`; otherwise `AllowAllAuthenticator` (anonymous sessions).
    pub password_authenticator: bool,
    /// `CassandraAuthorizer`; otherwise `AllowAllAuthorizer` (no permission checks).
    pub cassandra_authorizer: bool,
    /// The superuser created once when `system_auth.roles` is empty.
    pub default_superuser: String,
    pub default_password: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            password_authenticator: false,
            cassandra_authorizer: false,
            default_superuser: "cassandra".into(),
            default_password: "cassandra".into(),
        }
    }
}

impl AuthConfig {
    /// From the `authenticator` / `authorizer` settings (short class names).
    pub fn new(authenticator: &str, authorizer: &str) -> Self {
        AuthConfig {
            password_authenticator: authenticator == "PasswordAuthenticator",
            cassandra_authorizer: authorizer == "CassandraAuthorizer",
            ..Default::default()
        }
    }
}

/// One row of `system_auth.roles`.
#[derive(Clone, Debug, Default)]
pub struct RoleRecord {
    pub is_superuser: bool,
    pub can_login: bool,
    pub salted_hash: Option<String>,
    pub member_of: BTreeSet<String>,
}

/// A snapshot of the auth tables.
#[derive(Debug, Default)]
pub struct AuthState {
    pub roles: BTreeMap<String, RoleRecord>,
    /// (role, resource name) → permissions.
    pub permissions: BTreeMap<(String, String), BTreeSet<Permission>>,
}

impl AuthState {
    /// The role and every role granted to it, directly only or transitively.
    pub fn roles_of(&self, role: &str, recursive: bool) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![role.to_string()];
        let mut first = true;
        while let Some(r) = todo.pop() {
            if !out.insert(r.clone()) {
                continue;
            }
            if let Some(rec) = self.roles.get(&r)
                && (recursive || first)
            {
                todo.extend(rec.member_of.iter().cloned());
            }
            first = false;
        }
        out
    }

    /// Superuser status through any granted role, as `Roles.hasSuperuserStatus`.
    pub fn is_super(&self, role: &str) -> bool {
        self.roles_of(role, true)
            .iter()
            .any(|r| self.roles.get(r).is_some_and(|rec| rec.is_superuser))
    }

    /// The permissions `role` holds on exactly `resource`, through all its roles.
    pub fn permissions_on(&self, role: &str, resource: &Resource) -> BTreeSet<Permission> {
        if self.is_super(role) {
            return resource.applicable().iter().copied().collect();
        }
        let name = resource.name();
        let mut out = BTreeSet::new();
        for r in self.roles_of(role, true) {
            if let Some(p) = self.permissions.get(&(r, name.clone())) {
                out.extend(p.iter().copied());
            }
        }
        out
    }
}

/// (user, MD5 of the password) → (the hash it matched, when).
type CredentialsCache = HashMap<(String, [u8; 16]), (String, Instant)>;

/// Auth state shared by every connection of the node.
pub struct Auth {
    pub config: AuthConfig,
    cached: RwLock<Option<(Instant, Arc<AuthState>)>>,
    /// Verified passwords: skips bcrypt when a client opens many connections at once.
    credentials: Mutex<CredentialsCache>,
}

impl Auth {
    pub fn new(config: AuthConfig) -> Self {
        Auth {
            config,
            cached: RwLock::new(None),
            credentials: Mutex::new(HashMap::new()),
        }
    }

    /// The auth tables, read at most every [`VALIDITY`] and after every local change.
    pub fn state(&self, ex: &Executor) -> CqlResult<Arc<AuthState>> {
        if let Some((at, s)) = &*self.cached.read().expect("auth cache lock")
            && at.elapsed() < VALIDITY
        {
            return Ok(s.clone());
        }
        let state = Arc::new(internal::load_state(ex)?);
        *self.cached.write().expect("auth cache lock") = Some((Instant::now(), state.clone()));
        Ok(state)
    }

    pub fn invalidate(&self) {
        *self.cached.write().expect("auth cache lock") = None;
    }

    /// Creates the default superuser when no role exists yet, as
    /// `CassandraRoleManager.setupDefaultRole`.
    pub async fn bootstrap(&self, ex: &Executor) -> CqlResult<()> {
        if !self.config.password_authenticator {
            return Ok(());
        }
        if !self.state(ex)?.roles.is_empty() {
            return Ok(());
        }
        let name = self.config.default_superuser.clone();
        let hash = hash_password(self.config.default_password.clone()).await?;
        internal::write(
            ex,
            &[format!(
                "INSERT INTO {ks}.roles (role, is_superuser, can_login, salted_hash) VALUES ({}, true, true, {})",
                internal::quote(&name),
                internal::quote(&hash),
                ks = internal::KEYSPACE,
            )],
        )
        .await?;
        self.invalidate();
        info!(role = %name, "created the default superuser role");
        if self.config.default_password == "cassandra" {
            warn!(
                role = %name,
                "the default superuser has the default password: change it (ALTER ROLE) or set SHOAL_SUPERUSER_PASSWORD before the first start"
            );
        }
        Ok(())
    }

    /// SASL PLAIN: checks `user`/`password`, returns the role name on success.
    pub async fn login(&self, ex: &Executor, user: &str, password: &str) -> CqlResult<String> {
        let bad = || {
            CqlError::BadCredentials(format!(
                "Provided username {user} and/or password are incorrect"
            ))
        };
        let state = self.state(ex)?;
        let Some(rec) = state.roles.get(user) else {
            return Err(bad());
        };
        let Some(hash) = rec.salted_hash.clone() else {
            return Err(bad());
        };
        let key = (user.to_string(), md5_16(password.as_bytes()));
        let cached = self
            .credentials
            .lock()
            .expect("credentials lock")
            .get(&key)
            .is_some_and(|(h, at)| *h == hash && at.elapsed() < VALIDITY);
        if !cached {
            let pw = password.to_string();
            let h = hash.clone();
            // bcrypt takes tens of milliseconds by design: keep it off the async workers.
            let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pw, &h).unwrap_or(false))
                .await
                .unwrap_or(false);
            if !ok {
                return Err(bad());
            }
            let mut creds = self.credentials.lock().expect("credentials lock");
            if creds.len() > 10_000 {
                creds.clear();
            }
            creds.insert(key, (hash, Instant::now()));
        }
        if !rec.can_login {
            return Err(CqlError::BadCredentials(format!(
                "{user} is not permitted to log in"
            )));
        }
        Ok(user.to_string())
    }

    /// Whether statements are checked against granted permissions for this session.
    fn checks(&self, user: Option<&str>) -> bool {
        self.config.cassandra_authorizer && user.is_some()
    }

    /// `ClientState.ensurePermission`: `perm` on `resource` or one of its parents.
    pub fn ensure(
        &self,
        ex: &Executor,
        user: Option<&str>,
        perm: Permission,
        resource: &Resource,
    ) -> CqlResult<()> {
        let Some(user) = user.filter(|_| self.checks(user)) else {
            return Ok(());
        };
        let state = self.state(ex)?;
        for r in resource.chain() {
            if state.permissions_on(user, &r).contains(&perm) {
                return Ok(());
            }
        }
        Err(CqlError::Unauthorized(format!(
            "User {user} has no {} permission on {resource} or any of its parents",
            perm.as_str()
        )))
    }

    /// The permission a data statement needs, checked before it runs.
    pub fn check_statement(
        &self,
        ex: &Executor,
        user: Option<&str>,
        keyspace: Option<&str>,
        statement: &Statement,
        schema: &Schema,
    ) -> CqlResult<()> {
        if !self.checks(user) {
            return Ok(());
        }
        let table = |name: &QualifiedName| -> Option<Resource> {
            let ks = name.keyspace.as_deref().or(keyspace)?;
            Some(Resource::Table(ks.to_string(), name.name.clone()))
        };
        let ks_res = |name: Option<&str>| -> Option<Resource> {
            name.or(keyspace).map(|k| Resource::Keyspace(k.to_string()))
        };
        // Name resolution errors (no keyspace, unknown table) are the statement's own to
        // report: only check what resolves.
        let need: Option<(Permission, Resource)> = match statement {
            Statement::Select(s) => {
                let r = table(&s.table);
                if let Some(Resource::Table(ks, t)) = &r
                    && readable_by_everyone(ks, t)
                {
                    return Ok(());
                }
                r.map(|r| (Permission::Select, r))
            }
            Statement::Insert(s) => table(&s.table).map(|r| (Permission::Modify, r)),
            Statement::Update(s) => table(&s.table).map(|r| (Permission::Modify, r)),
            Statement::Delete(s) => table(&s.table).map(|r| (Permission::Modify, r)),
            Statement::Truncate(n) => table(n).map(|r| (Permission::Modify, r)),
            Statement::Batch(b) => {
                for child in &b.statements {
                    self.check_statement(ex, user, keyspace, child, schema)?;
                }
                None
            }
            Statement::CreateKeyspace(_) => Some((Permission::Create, Resource::AllKeyspaces)),
            Statement::AlterKeyspace { name, .. } => {
                Some((Permission::Alter, Resource::Keyspace(name.clone())))
            }
            Statement::DropKeyspace { name, .. } => {
                Some((Permission::Drop, Resource::Keyspace(name.clone())))
            }
            Statement::CreateTable(s) => {
                ks_res(s.name.keyspace.as_deref()).map(|r| (Permission::Create, r))
            }
            Statement::AlterTable(s) => table(&s.name).map(|r| (Permission::Alter, r)),
            Statement::DropTable { name, .. } => table(name).map(|r| (Permission::Drop, r)),
            Statement::CreateType { name, .. } => {
                ks_res(name.keyspace.as_deref()).map(|r| (Permission::Create, r))
            }
            Statement::AlterType { name, .. } => {
                ks_res(name.keyspace.as_deref()).map(|r| (Permission::Alter, r))
            }
            Statement::DropType { name, .. } => {
                ks_res(name.keyspace.as_deref()).map(|r| (Permission::Drop, r))
            }
            Statement::CreateIndex(s) => table(&s.table).map(|r| (Permission::Alter, r)),
            _ => None,
        };
        let Some((perm, resource)) = need else {
            return Ok(());
        };
        if let Resource::Table(ks, _) | Resource::Keyspace(ks) = &resource
            && schema.keyspace(ks).is_none()
        {
            return Ok(());
        }
        self.ensure(ex, user, perm, &resource)
    }
}

impl Auth {
    /// What `CassandraAuthorizer` does around DDL: the creator of a keyspace or table gets
    /// every permission on it (`grantPermissionsToCreator`), and dropping one revokes every
    /// permission on it and below (`AuthSchemaChangeListener`), so a later namesake does
    /// not inherit old grants.
    pub async fn after_schema_change(
        &self,
        ex: &Executor,
        user: Option<&str>,
        change: &SchemaChange,
    ) -> CqlResult<()> {
        if !self.config.cassandra_authorizer {
            return Ok(());
        }
        let resource = match change.target {
            "KEYSPACE" => Resource::Keyspace(change.keyspace.clone()),
            "TABLE" => Resource::Table(change.keyspace.clone(), change.name.clone()),
            _ => return Ok(()),
        };
        let writes = match (change.change, user) {
            ("CREATED", Some(creator)) => {
                statements::grant_writes(creator, &resource, resource.applicable().iter().copied())
            }
            ("DROPPED", _) => {
                let name = resource.name();
                let below = format!("{name}/");
                let state = self.state(ex)?;
                let mut w = Vec::new();
                for (role, res) in state.permissions.keys() {
                    if *res == name || res.starts_with(&below) {
                        w.push(format!(
                            "DELETE FROM {}.role_permissions WHERE role = {} AND resource = {}",
                            internal::KEYSPACE,
                            internal::quote(role),
                            internal::quote(res)
                        ));
                        w.push(format!(
                            "DELETE FROM {}.resource_role_permissons_index WHERE resource = {} AND role = {}",
                            internal::KEYSPACE,
                            internal::quote(res),
                            internal::quote(role)
                        ));
                    }
                }
                w
            }
            _ => return Ok(()),
        };
        if writes.is_empty() {
            return Ok(());
        }
        internal::write(ex, &writes).await?;
        self.invalidate();
        Ok(())
    }
}

/// System tables every logged-in client may read (`ClientState.READABLE_SYSTEM_RESOURCES`):
/// drivers read them while connecting.
fn readable_by_everyone(keyspace: &str, table: &str) -> bool {
    match keyspace {
        "system" => matches!(table, "local" | "peers" | "peers_v2"),
        "system_schema" | "system_virtual_schema" => true,
        _ => false,
    }
}

/// A bcrypt hash in Cassandra's `$2a$10$` form.
pub async fn hash_password(password: String) -> CqlResult<String> {
    tokio::task::spawn_blocking(move || {
        bcrypt::hash_with_result(password, BCRYPT_COST)
            .map(|h| h.format_for_version(bcrypt::Version::TwoA))
    })
    .await
    .map_err(|e| CqlError::server(e.to_string()))?
    .map_err(|e| CqlError::server(format!("hashing the password: {e}")))
}

fn md5_16(b: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    Md5::digest(b).into()
}

/// Splits a SASL PLAIN token `authzid \0 user \0 password`.
pub fn parse_plain(token: Option<&Bytes>) -> CqlResult<(String, String)> {
    let bad = || CqlError::BadCredentials("Authentication ID must not be null".into());
    let token = token.ok_or_else(bad)?;
    let parts: Vec<&[u8]> = token.split(|b| *b == 0).collect();
    if parts.len() != 3 {
        return Err(bad());
    }
    let user = String::from_utf8_lossy(parts[1]).into_owned();
    let pass = String::from_utf8_lossy(parts[2]).into_owned();
    if user.is_empty() {
        return Err(bad());
    }
    if pass.is_empty() {
        return Err(CqlError::BadCredentials("Password must not be null".into()));
    }
    Ok((user, pass))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(superuser: bool, member_of: &[&str]) -> RoleRecord {
        RoleRecord {
            is_superuser: superuser,
            can_login: true,
            salted_hash: None,
            member_of: member_of.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn permissions_are_inherited_through_granted_roles() {
        let mut s = AuthState::default();
        s.roles.insert("app".into(), role(false, &["readers"]));
        s.roles.insert("readers".into(), role(false, &["base"]));
        s.roles.insert("base".into(), role(false, &[]));
        s.roles.insert("admin".into(), role(false, &["root"]));
        s.roles.insert("root".into(), role(true, &[]));
        let ks = Resource::Keyspace("ks".into());
        s.permissions.insert(
            ("base".into(), ks.name()),
            [Permission::Select].into_iter().collect(),
        );
        assert_eq!(
            s.roles_of("app", false),
            ["app", "readers"].map(String::from).into()
        );
        assert_eq!(s.roles_of("app", true).len(), 3);
        assert!(s.permissions_on("app", &ks).contains(&Permission::Select));
        assert!(!s.permissions_on("app", &ks).contains(&Permission::Modify));
        assert!(!s.is_super("app"));
        // Superuser status and every permission come with a granted superuser role.
        assert!(s.is_super("admin"));
        assert!(s.permissions_on("admin", &ks).contains(&Permission::Modify));
    }

    #[test]
    fn sasl_plain_tokens() {
        let t = Bytes::from_static(b"\0cassandra\0secret");
        assert_eq!(
            parse_plain(Some(&t)).unwrap(),
            ("cassandra".to_string(), "secret".to_string())
        );
        for bad in [&b"cassandra"[..], b"\0\0pw", b"\0user\0"] {
            let t = Bytes::copy_from_slice(bad);
            assert!(matches!(
                parse_plain(Some(&t)),
                Err(CqlError::BadCredentials(_))
            ));
        }
        assert!(parse_plain(None).is_err());
    }
}
