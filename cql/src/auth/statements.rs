//! Role and permission statements, with the checks, messages and table writes of
//! Cassandra's `*RoleStatement`, `*PermissionsStatement`, `CassandraRoleManager` and
//! `CassandraAuthorizer`. Cassandra authorizes first, then validates, then executes; the
//! order decides which error a client sees, so it is kept.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::internal::{self, KEYSPACE, quote, set_literal};
use super::{AuthState, Permission, Resource};
use crate::error::{CqlError, CqlResult};
use crate::executor::{Executor, Session};
use crate::parser::ast::{self, PermissionSpec, RoleOptions, Statement};
use crate::protocol::{ColumnSpec, ResultBody, Rows, RowsMetadata};
use crate::types::CqlType;

const ROLE_MANAGER: &str = "org.apache.cassandra.auth.CassandraRoleManager";

/// Whether `statement` is one of the statements this module runs.
pub fn handles(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::CreateRole { .. }
            | Statement::AlterRole { .. }
            | Statement::DropRole { .. }
            | Statement::CreateUser { .. }
            | Statement::AlterUser { .. }
            | Statement::DropUser { .. }
            | Statement::ListUsers
            | Statement::GrantPermission { .. }
            | Statement::RevokePermission { .. }
            | Statement::GrantRole { .. }
            | Statement::RevokeRole { .. }
            | Statement::ListRoles { .. }
            | Statement::ListPermissions { .. }
    )
}

struct Ctx<'a> {
    ex: &'a Executor,
    user: Option<&'a str>,
    keyspace: Option<&'a str>,
    state: std::sync::Arc<AuthState>,
}

impl Ctx<'_> {
    fn exists(&self, role: &str) -> bool {
        self.state.roles.contains_key(role)
    }

    fn is_super(&self) -> bool {
        self.user.is_some_and(|u| self.state.is_super(u))
    }

    fn name(&self) -> &str {
        self.user.unwrap_or("anonymous")
    }

    fn not_anonymous(&self) -> CqlResult<()> {
        if self.user.is_none() {
            return Err(CqlError::Unauthorized(
                "You have to be logged in and not anonymous to perform this request".into(),
            ));
        }
        Ok(())
    }

    /// `AuthenticationStatement.checkPermission`: the friendlier message of role statements.
    fn check_role_permission(&self, perm: Permission, resource: &Resource) -> CqlResult<()> {
        self.ex
            .auth()
            .ensure(self.ex, self.user, perm, resource)
            .map_err(|_| {
                CqlError::Unauthorized(format!(
                    "User {} does not have sufficient privileges to perform the requested operation",
                    self.name()
                ))
            })
    }

    fn password_auth(&self) -> bool {
        self.ex.auth().config.password_authenticator
    }

    fn cassandra_authorizer(&self) -> bool {
        self.ex.auth().config.cassandra_authorizer
    }

    /// `RoleOptions.validate` against `CassandraRoleManager.supportedOptions`.
    fn validate_options(&self, o: &RoleOptions) -> CqlResult<()> {
        let unsupported = |opt: &str| {
            Err(CqlError::invalid(format!(
                "{ROLE_MANAGER} doesn't support {opt}"
            )))
        };
        if o.options.is_some() {
            return unsupported("OPTIONS");
        }
        if !self.password_auth() {
            if o.password.is_some() {
                return unsupported("PASSWORD");
            }
            if o.hashed_password.is_some() {
                return unsupported("HASHED_PASSWORD");
            }
        }
        if o.password.is_some() && o.hashed_password.is_some() {
            return Err(CqlError::syntax(
                "Properties 'password' and 'hashed password' are mutually exclusive",
            ));
        }
        if let Some(h) = &o.hashed_password
            && bcrypt::verify("", h).is_err()
        {
            return Err(CqlError::invalid(
                "Invalid hashed password value. Please use jBcrypt.",
            ));
        }
        Ok(())
    }
}

/// Runs one role or permission statement.
pub async fn execute(
    ex: &Executor,
    session: &Session,
    keyspace: Option<&str>,
    statement: &Statement,
) -> CqlResult<ResultBody> {
    let ctx = Ctx {
        ex,
        user: session.user.as_deref(),
        keyspace,
        state: ex.auth().state(ex)?,
    };
    let result = match statement {
        Statement::CreateRole {
            name,
            if_not_exists,
            options,
        } => create_role(&ctx, name, *if_not_exists, options).await,
        Statement::CreateUser {
            name,
            if_not_exists,
            password,
            superuser,
        } => {
            let options = RoleOptions {
                password: password.clone(),
                login: Some(true),
                superuser: Some(superuser.unwrap_or(false)),
                ..Default::default()
            };
            create_role(&ctx, name, *if_not_exists, &options).await
        }
        Statement::AlterRole {
            name,
            if_exists,
            options,
        } => alter_role(&ctx, name, *if_exists, options).await,
        Statement::AlterUser {
            name,
            if_exists,
            password,
            superuser,
        } => {
            let options = RoleOptions {
                password: password.clone(),
                superuser: *superuser,
                ..Default::default()
            };
            alter_role(&ctx, name, *if_exists, &options).await
        }
        Statement::DropRole { name, if_exists } | Statement::DropUser { name, if_exists } => {
            drop_role(&ctx, name, *if_exists).await
        }
        Statement::GrantRole { role, grantee } => grant_role(&ctx, role, grantee, true).await,
        Statement::RevokeRole { role, revokee } => grant_role(&ctx, role, revokee, false).await,
        Statement::ListRoles { of, recursive } => {
            list_roles(&ctx, of.as_deref(), *recursive, false)
        }
        Statement::ListUsers => list_roles(&ctx, None, true, true),
        Statement::GrantPermission {
            permission,
            resource,
            role,
        } => grant_permission(&ctx, permission, resource, role, true).await,
        Statement::RevokePermission {
            permission,
            resource,
            role,
        } => grant_permission(&ctx, permission, resource, role, false).await,
        Statement::ListPermissions {
            permission,
            resource,
            of,
            recursive,
        } => list_permissions(
            &ctx,
            permission,
            resource.as_ref(),
            of.as_deref(),
            *recursive,
        ),
        _ => Err(CqlError::server("not a role or permission statement")),
    };
    // Whatever happened, the next check must see this node's own writes.
    ex.auth().invalidate();
    result
}

async fn create_role(
    ctx: &Ctx<'_>,
    name: &str,
    if_not_exists: bool,
    o: &RoleOptions,
) -> CqlResult<ResultBody> {
    ctx.check_role_permission(Permission::Create, &Resource::AllRoles)?;
    if o.superuser == Some(true) && !ctx.is_super() {
        return Err(CqlError::Unauthorized(
            "Only superusers can create a role with superuser status".into(),
        ));
    }
    ctx.validate_options(o)?;
    if name.is_empty() {
        return Err(CqlError::invalid("Role name can't be an empty string"));
    }
    ctx.not_anonymous()?;
    if ctx.exists(name) {
        if if_not_exists {
            return Ok(ResultBody::Void);
        }
        return Err(CqlError::invalid(format!("{name} already exists")));
    }
    if o.access_to_datacenters.is_some() {
        return Err(CqlError::invalid(
            "ACCESS TO DATACENTERS operations not supported by AllowAllNetworkAuthorizer",
        ));
    }
    let hash = match (&o.password, &o.hashed_password) {
        (Some(p), _) => Some(super::hash_password(p.clone()).await?),
        (None, Some(h)) => Some(h.clone()),
        _ => None,
    };
    let mut cols = vec!["role", "is_superuser", "can_login"];
    let mut vals = vec![
        quote(name),
        o.superuser.unwrap_or(false).to_string(),
        o.login.unwrap_or(false).to_string(),
    ];
    if let Some(h) = &hash {
        cols.push("salted_hash");
        vals.push(quote(h));
    }
    let mut writes = vec![format!(
        "INSERT INTO {KEYSPACE}.roles ({}) VALUES ({})",
        cols.join(", "),
        vals.join(", ")
    )];
    // The creator may alter, drop and grant the new role (`grantPermissionsToCreator`).
    if let Some(creator) = ctx.user
        && ctx.cassandra_authorizer()
    {
        let resource = Resource::Role(name.to_string());
        writes.extend(grant_writes(
            creator,
            &resource,
            resource.applicable().iter().copied(),
        ));
    }
    internal::write(ctx.ex, &writes).await?;
    Ok(ResultBody::Void)
}

async fn alter_role(
    ctx: &Ctx<'_>,
    name: &str,
    if_exists: bool,
    o: &RoleOptions,
) -> CqlResult<ResultBody> {
    let is_super = ctx.is_super();
    if o.superuser.is_some()
        && ctx
            .user
            .is_some_and(|u| ctx.state.roles_of(u, true).contains(name))
    {
        return Err(CqlError::Unauthorized(
            "You aren't allowed to alter your own superuser status or that of a role granted to you"
                .into(),
        ));
    }
    if o.superuser.is_some() && !is_super {
        return Err(CqlError::Unauthorized(
            "Only superusers are allowed to alter superuser status".into(),
        ));
    }
    if !is_super {
        if ctx.user == Some(name) {
            let alterable = |opt: &str| ctx.password_auth() && opt.contains("PASSWORD");
            for (set, opt) in [
                (o.password.is_some(), "PASSWORD"),
                (o.hashed_password.is_some(), "HASHED_PASSWORD"),
                (o.login.is_some(), "LOGIN"),
                (o.superuser.is_some(), "SUPERUSER"),
                (o.options.is_some(), "OPTIONS"),
            ] {
                if set && !alterable(opt) {
                    return Err(CqlError::Unauthorized(format!(
                        "You aren't allowed to alter {opt}"
                    )));
                }
            }
        } else {
            ctx.check_role_permission(Permission::Alter, &Resource::Role(name.to_string()))?;
        }
    }
    ctx.validate_options(o)?;
    if *o == RoleOptions::default() {
        return Err(CqlError::invalid("ALTER [ROLE|USER] can't be empty"));
    }
    ctx.not_anonymous()?;
    if !ctx.exists(name) {
        if if_exists {
            return Ok(ResultBody::Void);
        }
        return Err(CqlError::invalid(format!("{name} doesn't exist")));
    }
    if o.access_to_datacenters.is_some() {
        return Err(CqlError::invalid(
            "ACCESS TO DATACENTERS operations not supported by AllowAllNetworkAuthorizer",
        ));
    }
    let mut sets = Vec::new();
    if let Some(s) = o.superuser {
        sets.push(format!("is_superuser = {s}"));
    }
    if let Some(l) = o.login {
        sets.push(format!("can_login = {l}"));
    }
    if let Some(p) = &o.password {
        sets.push(format!(
            "salted_hash = {}",
            quote(&super::hash_password(p.clone()).await?)
        ));
    } else if let Some(h) = &o.hashed_password {
        sets.push(format!("salted_hash = {}", quote(h)));
    }
    if !sets.is_empty() {
        internal::write(
            ctx.ex,
            &[format!(
                "UPDATE {KEYSPACE}.roles SET {} WHERE role = {}",
                sets.join(", "),
                quote(name)
            )],
        )
        .await?;
    }
    Ok(ResultBody::Void)
}

async fn drop_role(ctx: &Ctx<'_>, name: &str, if_exists: bool) -> CqlResult<ResultBody> {
    ctx.check_role_permission(Permission::Drop, &Resource::Role(name.to_string()))?;
    if ctx.exists(name) && ctx.state.is_super(name) && !ctx.is_super() {
        return Err(CqlError::Unauthorized(
            "Only superusers can drop a role with superuser status".into(),
        ));
    }
    ctx.not_anonymous()?;
    if !ctx.exists(name) {
        if if_exists {
            return Ok(ResultBody::Void);
        }
        return Err(CqlError::invalid(format!("{name} doesn't exist")));
    }
    if ctx.user == Some(name) {
        return Err(CqlError::invalid(
            "Cannot DROP primary role for current login",
        ));
    }
    let q = quote(name);
    let mut writes = vec![
        format!("DELETE FROM {KEYSPACE}.roles WHERE role = {q}"),
        format!("DELETE FROM {KEYSPACE}.role_members WHERE role = {q}"),
    ];
    for (other, rec) in &ctx.state.roles {
        if rec.member_of.contains(name) {
            writes.push(format!(
                "UPDATE {KEYSPACE}.roles SET member_of = member_of - {} WHERE role = {}",
                set_literal([name]),
                quote(other)
            ));
        }
    }
    if let Some(rec) = ctx.state.roles.get(name) {
        for granted in &rec.member_of {
            writes.push(format!(
                "DELETE FROM {KEYSPACE}.role_members WHERE role = {} AND member = {q}",
                quote(granted)
            ));
        }
    }
    // Its own permissions (`revokeAllFrom`) and everyone's permissions on it (`revokeAllOn`).
    let on_it = Resource::Role(name.to_string()).name();
    for (role, resource) in ctx.state.permissions.keys() {
        if role == name || *resource == on_it {
            writes.push(format!(
                "DELETE FROM {KEYSPACE}.role_permissions WHERE role = {} AND resource = {}",
                quote(role),
                quote(resource)
            ));
            writes.push(format!(
                "DELETE FROM {KEYSPACE}.resource_role_permissons_index WHERE resource = {} AND role = {}",
                quote(resource),
                quote(role)
            ));
        }
    }
    internal::write(ctx.ex, &writes).await?;
    Ok(ResultBody::Void)
}

/// GRANT role TO grantee / REVOKE role FROM grantee.
async fn grant_role(
    ctx: &Ctx<'_>,
    role: &str,
    grantee: &str,
    grant: bool,
) -> CqlResult<ResultBody> {
    ctx.check_role_permission(Permission::Authorize, &Resource::Role(role.to_string()))?;
    ctx.not_anonymous()?;
    for r in [role, grantee] {
        if !ctx.exists(r) {
            return Err(CqlError::invalid(format!("{r} doesn't exist")));
        }
    }
    let writes = if grant {
        if ctx.state.roles_of(grantee, true).contains(role) {
            return Err(CqlError::invalid(format!(
                "{grantee} is a member of {role}"
            )));
        }
        if ctx.state.roles_of(role, true).contains(grantee) {
            return Err(CqlError::invalid(format!(
                "{role} is a member of {grantee}"
            )));
        }
        vec![
            format!(
                "UPDATE {KEYSPACE}.roles SET member_of = member_of + {} WHERE role = {}",
                set_literal([role]),
                quote(grantee)
            ),
            format!(
                "INSERT INTO {KEYSPACE}.role_members (role, member) VALUES ({}, {})",
                quote(role),
                quote(grantee)
            ),
        ]
    } else {
        if !ctx.state.roles_of(grantee, false).contains(role) {
            return Err(CqlError::invalid(format!(
                "{grantee} is not a member of {role}"
            )));
        }
        vec![
            format!(
                "UPDATE {KEYSPACE}.roles SET member_of = member_of - {} WHERE role = {}",
                set_literal([role]),
                quote(grantee)
            ),
            format!(
                "DELETE FROM {KEYSPACE}.role_members WHERE role = {} AND member = {}",
                quote(role),
                quote(grantee)
            ),
        ]
    };
    internal::write(ctx.ex, &writes).await?;
    Ok(ResultBody::Void)
}

/// The resource of a statement, with the session keyspace filled in (`maybeCorrectResource`).
fn resolve(ctx: &Ctx<'_>, r: &ast::Resource) -> CqlResult<Resource> {
    Ok(match r {
        ast::Resource::AllKeyspaces => Resource::AllKeyspaces,
        ast::Resource::Keyspace(k) => Resource::Keyspace(k.clone()),
        ast::Resource::Table(q) => {
            let ks = q.keyspace.as_deref().or(ctx.keyspace).ok_or_else(|| {
                CqlError::invalid(
                    "No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename",
                )
            })?;
            Resource::Table(ks.to_string(), q.name.clone())
        }
        ast::Resource::AllRoles => Resource::AllRoles,
        ast::Resource::Role(r) => Resource::Role(r.clone()),
        ast::Resource::AllFunctions { keyspace: None } => Resource::AllFunctions,
        ast::Resource::AllFunctions { keyspace: Some(k) } => Resource::KeyspaceFunctions(k.clone()),
        ast::Resource::Function { name, arg_types } => {
            let ks = name.keyspace.as_deref().or(ctx.keyspace).ok_or_else(|| {
                CqlError::invalid(
                    "In this context function name must be explictly qualified by a keyspace",
                )
            })?;
            Resource::Function(
                ks.to_string(),
                name.name.clone(),
                arg_types
                    .iter()
                    .map(|t| format!("{t:?}").to_lowercase())
                    .collect(),
            )
        }
        ast::Resource::AllMbeans => Resource::AllMbeans,
        ast::Resource::Mbean(m) => Resource::Mbean(m.clone()),
    })
}

/// `IResource.exists`.
fn resource_exists(ctx: &Ctx<'_>, r: &Resource) -> bool {
    let schema = ctx.ex.schema();
    match r {
        Resource::Keyspace(k) | Resource::KeyspaceFunctions(k) => schema.keyspace(k).is_some(),
        Resource::Table(k, t) => schema.table(k, t).is_some(),
        Resource::Role(role) => ctx.exists(role),
        // Shoal has no user-defined functions.
        Resource::Function(..) => false,
        _ => true,
    }
}

/// The permissions a GRANT/REVOKE/LIST names, restricted to those of the resource
/// (`Parser.filterPermissions`).
fn permissions_of(spec: &PermissionSpec, r: Option<&Resource>) -> CqlResult<Vec<Permission>> {
    let requested: Vec<Permission> =
        match spec {
            PermissionSpec::All => Permission::ALL.to_vec(),
            PermissionSpec::One(p) => vec![Permission::parse(p).ok_or_else(|| {
                CqlError::syntax(format!("Unknown permission {}", p.to_uppercase()))
            })?],
        };
    let Some(r) = r else { return Ok(requested) };
    let filtered: Vec<Permission> = requested
        .into_iter()
        .filter(|p| r.applicable().contains(p))
        .collect();
    if filtered.is_empty() {
        return Err(CqlError::syntax(format!(
            "Resource type {} does not support any of the requested permissions",
            r.class_name()
        )));
    }
    Ok(filtered)
}

pub(crate) fn grant_writes(
    role: &str,
    resource: &Resource,
    perms: impl IntoIterator<Item = Permission>,
) -> Vec<String> {
    let names: Vec<&str> = perms.into_iter().map(Permission::as_str).collect();
    vec![
        format!(
            "UPDATE {KEYSPACE}.role_permissions SET permissions = permissions + {} WHERE role = {} AND resource = {}",
            set_literal(names),
            quote(role),
            quote(&resource.name())
        ),
        format!(
            "INSERT INTO {KEYSPACE}.resource_role_permissons_index (resource, role) VALUES ({}, {})",
            quote(&resource.name()),
            quote(role)
        ),
    ]
}

async fn grant_permission(
    ctx: &Ctx<'_>,
    spec: &PermissionSpec,
    resource: &ast::Resource,
    role: &str,
    grant: bool,
) -> CqlResult<ResultBody> {
    let resource = resolve(ctx, resource)?;
    let perms = permissions_of(spec, Some(&resource))?;
    let auth = ctx.ex.auth();
    auth.ensure(ctx.ex, ctx.user, Permission::Authorize, &resource)?;
    for p in &perms {
        auth.ensure(ctx.ex, ctx.user, *p, &resource)?;
    }
    ctx.not_anonymous()?;
    if !ctx.exists(role) {
        return Err(CqlError::invalid(format!("Role {role} doesn't exist")));
    }
    if !resource_exists(ctx, &resource) {
        return Err(CqlError::invalid(format!(
            "Resource {resource} doesn't exist"
        )));
    }
    if !ctx.cassandra_authorizer() {
        let op = if grant { "GRANT" } else { "REVOKE" };
        return Err(CqlError::invalid(format!(
            "{op} operation is not supported by AllowAllAuthorizer"
        )));
    }
    let writes = if grant {
        grant_writes(role, &resource, perms)
    } else {
        let held = ctx
            .state
            .permissions
            .get(&(role.to_string(), resource.name()))
            .cloned()
            .unwrap_or_default();
        let remaining: BTreeSet<Permission> = held
            .iter()
            .copied()
            .filter(|p| !perms.contains(p))
            .collect();
        let names: Vec<&str> = perms.iter().map(|p| p.as_str()).collect();
        let mut w = vec![format!(
            "UPDATE {KEYSPACE}.role_permissions SET permissions = permissions - {} WHERE role = {} AND resource = {}",
            set_literal(names),
            quote(role),
            quote(&resource.name())
        )];
        if remaining.is_empty() {
            w.push(format!(
                "DELETE FROM {KEYSPACE}.resource_role_permissons_index WHERE resource = {} AND role = {}",
                quote(&resource.name()),
                quote(role)
            ));
        }
        w
    };
    internal::write(ctx.ex, &writes).await?;
    Ok(ResultBody::Void)
}

fn spec(table: &str, name: &str, ty: CqlType) -> ColumnSpec {
    ColumnSpec {
        keyspace: "system_auth".into(),
        table: table.into(),
        name: name.into(),
        ty,
    }
}

fn text_cell(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

fn bool_cell(b: bool) -> Option<Bytes> {
    Some(Bytes::from_static(if b { &[1] } else { &[0] }))
}

fn rows(columns: Vec<ColumnSpec>, rows: Vec<Vec<Option<Bytes>>>) -> ResultBody {
    if rows.is_empty() {
        return ResultBody::Void;
    }
    ResultBody::Rows(Rows {
        metadata: RowsMetadata {
            columns,
            ..Default::default()
        },
        rows,
    })
}

/// LIST ROLES and (legacy) LIST USERS.
fn list_roles(
    ctx: &Ctx<'_>,
    of: Option<&str>,
    recursive: bool,
    users: bool,
) -> CqlResult<ResultBody> {
    ctx.not_anonymous()?;
    if let Some(r) = of
        && !ctx.exists(r)
    {
        return Err(CqlError::invalid(format!("<role {r}> doesn't exist")));
    }
    let user = ctx.name();
    let describe_all = !ctx.cassandra_authorizer()
        || ctx
            .state
            .permissions_on(user, &Resource::AllRoles)
            .contains(&Permission::Describe);
    let listed: BTreeSet<String> = if describe_all {
        match of {
            None => ctx.state.roles.keys().cloned().collect(),
            Some(r) => ctx.state.roles_of(r, recursive),
        }
    } else {
        match of {
            None => ctx.state.roles_of(user, recursive),
            Some(r) if ctx.state.roles_of(user, true).contains(r) => {
                ctx.state.roles_of(r, recursive)
            }
            Some(r) => {
                return Err(CqlError::Unauthorized(format!(
                    "You are not authorized to view roles granted to {r} "
                )));
            }
        }
    };
    let mut out = Vec::new();
    for name in listed {
        let Some(rec) = ctx.state.roles.get(&name) else {
            continue;
        };
        if users {
            if !rec.can_login {
                continue;
            }
            out.push(vec![
                text_cell(&name),
                bool_cell(ctx.state.is_super(&name)),
                text_cell("ALL"),
            ]);
        } else {
            out.push(vec![
                text_cell(&name),
                bool_cell(rec.is_superuser),
                bool_cell(rec.can_login),
                // An empty map<text, text>: no custom options.
                Some(Bytes::from_static(&[0, 0, 0, 0])),
                // AllowAllNetworkAuthorizer: every role may use every datacenter.
                text_cell("ALL"),
            ]);
        }
    }
    let columns = if users {
        vec![
            spec("users", "name", CqlType::Text),
            spec("users", "super", CqlType::Boolean),
            spec("users", "datacenters", CqlType::Text),
        ]
    } else {
        vec![
            spec("roles", "role", CqlType::Text),
            spec("roles", "super", CqlType::Boolean),
            spec("roles", "login", CqlType::Boolean),
            spec(
                "roles",
                "options",
                CqlType::Map {
                    key: Box::new(CqlType::Text),
                    value: Box::new(CqlType::Text),
                    frozen: false,
                },
            ),
            spec("roles", "datacenters", CqlType::Text),
        ]
    };
    Ok(rows(columns, out))
}

fn list_permissions(
    ctx: &Ctx<'_>,
    spec_: &PermissionSpec,
    resource: Option<&ast::Resource>,
    of: Option<&str>,
    recursive: bool,
) -> CqlResult<ResultBody> {
    ctx.not_anonymous()?;
    let resource = resource.map(|r| resolve(ctx, r)).transpose()?;
    if let Some(r) = &resource
        && !resource_exists(ctx, r)
    {
        return Err(CqlError::invalid(format!("{r} doesn't exist")));
    }
    if let Some(r) = of
        && !ctx.exists(r)
    {
        return Err(CqlError::invalid(format!("<role {r}> doesn't exist")));
    }
    if !ctx.cassandra_authorizer() {
        return Err(CqlError::invalid(
            "LIST PERMISSIONS operation is not supported by AllowAllAuthorizer",
        ));
    }
    let perms = permissions_of(spec_, resource.as_ref())?;
    let user = ctx.name();
    let performer_roles = ctx.state.roles_of(user, true);
    if !ctx.is_super() && !of.is_some_and(|r| performer_roles.contains(r)) {
        return Err(CqlError::Unauthorized(format!(
            "You are not authorized to view {}'s permissions",
            of.unwrap_or("everyone")
        )));
    }
    let roles: Option<BTreeSet<String>> = of.map(|r| ctx.state.roles_of(r, true));
    let resources: Option<Vec<String>> = resource.as_ref().map(|r| {
        if recursive {
            r.chain().iter().map(Resource::name).collect()
        } else {
            vec![r.name()]
        }
    });
    let mut details: Vec<(String, String, Permission)> = Vec::new();
    for ((role, res), held) in &ctx.state.permissions {
        if roles.as_ref().is_some_and(|rs| !rs.contains(role)) {
            continue;
        }
        if resources.as_ref().is_some_and(|rs| !rs.contains(res)) {
            continue;
        }
        for p in held {
            if perms.contains(p) {
                details.push((role.clone(), res.clone(), *p));
            }
        }
    }
    details.sort();
    let out = details
        .into_iter()
        .map(|(role, res, p)| {
            let shown = Resource::from_name(&res)
                .map(|r| r.to_string())
                .unwrap_or(res);
            vec![
                text_cell(&role),
                text_cell(&role),
                text_cell(&shown),
                text_cell(p.as_str()),
            ]
        })
        .collect();
    let table = "permissions";
    Ok(rows(
        vec![
            spec(table, "role", CqlType::Text),
            spec(table, "username", CqlType::Text),
            spec(table, "resource", CqlType::Text),
            spec(table, "permission", CqlType::Text),
        ],
        out,
    ))
}
