//! Node configuration: cassandra.yaml keys, then the official image's environment
//! variables, then flags.
//!
//! Precedence, lowest to highest: built-in defaults, the YAML file given by `--config`,
//! the `CASSANDRA_*` environment variables of the official Docker image, command-line flags.
//! Paths derived from `data_dir` (data, commit log, hints) follow the final `data_dir` unless
//! one of the layers set them explicitly. See `docs/configuration.md`.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{CommandFactory, Parser, ValueEnum};
use shoal_engine::CommitLogSync;
use yaml_rust2::{Yaml, YamlLoader};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Cassandra refuses more vnodes than this per node (`DatabaseDescriptor.MAX_NUM_TOKENS`).
pub const MAX_NUM_TOKENS: u32 = 1536;

/// Group mode needs a window; cassandra.yaml's commented example uses 1000ms.
const DEFAULT_GROUP_WINDOW_MS: u64 = 1000;

/// The node's configuration after every layer has been applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub cluster_name: String,
    pub listen_address: IpAddr,
    pub broadcast_address: Option<IpAddr>,
    pub rpc_address: IpAddr,
    pub broadcast_rpc_address: Option<IpAddr>,
    pub native_transport_port: u16,
    pub storage_port: u16,
    pub admin_port: u16,
    /// Holds data, commit log, hints and the node's system files.
    pub data_dir: PathBuf,
    pub data_file_directories: Vec<PathBuf>,
    pub commitlog_directory: PathBuf,
    pub hints_directory: PathBuf,
    pub commitlog_sync: CommitLogSync,
    /// Bytes.
    pub commitlog_segment_size: u64,
    pub num_tokens: u32,
    /// Host names or IPs, optionally `host:port`. Empty: the node is its own only seed.
    pub seeds: Vec<String>,
    /// Short class name, e.g. `SimpleSnitch`.
    pub endpoint_snitch: String,
    pub dc: String,
    pub rack: String,
    /// Bytes.
    pub memtable_heap_space: u64,
    /// Short class name, e.g. `AllowAllAuthenticator`.
    pub authenticator: String,
    /// Short class name, e.g. `AllowAllAuthorizer`.
    pub authorizer: String,
    pub tombstone_warn_threshold: usize,
    pub tombstone_failure_threshold: usize,
    pub skip_corrupt_commitlog_entries: bool,
    /// Bytes.
    pub native_transport_max_frame_size: u64,
    /// Coordinator timeouts (ms) for writes, single-partition reads, range reads, TRUNCATE.
    pub write_request_timeout_ms: u64,
    pub read_request_timeout_ms: u64,
    pub range_request_timeout_ms: u64,
    pub truncate_request_timeout_ms: u64,
    /// How long a lightweight transaction retries contended Paxos rounds (ms).
    pub cas_contention_timeout_ms: u64,
    pub hinted_handoff_enabled: bool,
    /// A host down longer than this gets no new hints; older hints are dropped at replay.
    pub max_hint_window_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Partial::default()
            .finish()
            .expect("built-in defaults are valid")
    }
}

impl Config {
    /// The address other nodes reach this one at (`broadcast_address`, else `listen_address`).
    pub fn effective_broadcast_address(&self) -> IpAddr {
        self.broadcast_address.unwrap_or(self.listen_address)
    }

    /// The address clients are told to use: `broadcast_rpc_address`, else `rpc_address`, or the
    /// broadcast address when `rpc_address` is a wildcard, as the official image does.
    pub fn effective_broadcast_rpc_address(&self) -> IpAddr {
        match self.broadcast_rpc_address {
            Some(a) => a,
            None if self.rpc_address.is_unspecified() => self.effective_broadcast_address(),
            None => self.rpc_address,
        }
    }

    /// `data_dir/system`: the node's own files (see [`crate::identity`]).
    pub fn system_directory(&self) -> PathBuf {
        self.data_dir.join("system")
    }
}

/// Why the configuration could not be loaded. Every variant names the key, variable or flag.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad flags, or `--help`/`--version`: call [`clap::Error::exit`] to print it with clap's
    /// exit code (0 for help and version).
    #[error("{0}")]
    Cli(#[from] clap::Error),
    #[error("cannot read configuration file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse configuration file {}: {message}", path.display())]
    Yaml { path: PathBuf, message: String },
    #[error("unknown configuration key {key:?} in {file}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
    UnknownKey {
        key: String,
        file: String,
        suggestion: Option<String>,
    },
    #[error("invalid value for {key}: {value:?} (expected {expected})")]
    InvalidValue {
        key: String,
        value: String,
        expected: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

type Result<T, E = ConfigError> = std::result::Result<T, E>;

fn invalid(key: &str, value: impl Into<String>, expected: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.into(),
        expected: expected.into(),
    }
}

/// Loads the configuration from `args` (including the program name, as `std::env::args_os`
/// gives them) and the environment read through `env`. Warnings (ignored Cassandra keys,
/// deprecated keys) are logged with `tracing`; use [`load_with_warnings`] to get them instead.
pub fn load(
    args: impl IntoIterator<Item = OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config> {
    let (config, warnings) = load_with_warnings(args, env)?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    Ok(config)
}

/// [`load`], returning the warnings instead of logging them, because logging may not be set
/// up yet when configuration is read.
pub fn load_with_warnings(
    args: impl IntoIterator<Item = OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Vec<String>)> {
    let cli = Cli::try_parse_from(args)?;
    let mut warnings = Vec::new();
    let mut merged = Partial::default();
    if let Some(path) = &cli.config {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.clone(),
            source,
        })?;
        merged.overlay(parse_yaml(&text, path, &mut warnings)?);
    }
    merged.overlay(env_layer(env)?);
    merged.overlay(cli.layer()?);
    Ok((merged.finish()?, warnings))
}

/// The `shoal` command line, for `--help` rendering outside [`load`].
pub fn command() -> clap::Command {
    Cli::command()
}

#[derive(Parser, Debug)]
#[command(
    name = "shoal",
    version,
    about = "Shoal: an Apache Cassandra-compatible storage node",
    after_help = "Settings are read from built-in defaults, then --config FILE (cassandra.yaml keys), \
                  then the official Cassandra image's CASSANDRA_* environment variables, then these flags; \
                  later sources win. See docs/configuration.md."
)]
struct Cli {
    /// cassandra.yaml-style configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for data, commit log, hints and system files.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to bind for internode traffic (IP, host name or `auto`).
    #[arg(long, value_name = "IP")]
    listen_address: Option<String>,
    /// Address to bind for CQL clients; defaults to the listen address.
    #[arg(long, value_name = "IP")]
    rpc_address: Option<String>,
    /// Address other nodes should use to reach this one.
    #[arg(long, value_name = "IP")]
    broadcast_address: Option<String>,
    /// CQL native protocol port.
    #[arg(long, value_name = "N")]
    cql_port: Option<u16>,
    /// Internode port.
    #[arg(long, value_name = "N")]
    storage_port: Option<u16>,
    /// Admin HTTP port.
    #[arg(long, value_name = "N")]
    admin_port: Option<u16>,
    /// Comma-separated seed hosts (host or host:port).
    #[arg(long, value_name = "a,b")]
    seeds: Option<String>,
    /// Cluster name; must match the one saved on first start.
    #[arg(long, value_name = "NAME")]
    cluster_name: Option<String>,
    /// Data center name.
    #[arg(long, value_name = "DC")]
    dc: Option<String>,
    /// Rack name.
    #[arg(long, value_name = "RACK")]
    rack: Option<String>,
    /// Number of vnode tokens chosen on first start.
    #[arg(long, value_name = "N")]
    num_tokens: Option<u32>,
    /// Commit log sync mode.
    #[arg(long, value_name = "MODE", value_enum)]
    commitlog_sync: Option<SyncMode>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SyncMode {
    Periodic,
    Batch,
    Group,
}

impl SyncMode {
    fn parse(s: &str) -> Option<Self> {
        // Cassandra's enum is lower-case, but SnakeYAML-era files often say `PERIODIC`.
        match s.to_ascii_lowercase().as_str() {
            "periodic" => Some(Self::Periodic),
            "batch" => Some(Self::Batch),
            "group" => Some(Self::Group),
            _ => None,
        }
    }
}

impl Cli {
    fn layer(&self) -> Result<Partial> {
        let addr = |flag: &str, v: &Option<String>| -> Result<Option<IpAddr>> {
            v.as_deref().map(|s| parse_address(flag, s)).transpose()
        };
        Ok(Partial {
            cluster_name: self
                .cluster_name
                .as_deref()
                .map(|s| non_empty("--cluster-name", s))
                .transpose()?,
            listen_address: addr("--listen-address", &self.listen_address)?,
            rpc_address: addr("--rpc-address", &self.rpc_address)?,
            broadcast_address: addr("--broadcast-address", &self.broadcast_address)?,
            native_transport_port: self.cql_port,
            storage_port: self.storage_port,
            admin_port: self.admin_port,
            data_dir: self.data_dir.clone(),
            seeds: self
                .seeds
                .as_deref()
                .map(|s| parse_seeds("--seeds", s))
                .transpose()?,
            dc: self
                .dc
                .as_deref()
                .map(|s| non_empty("--dc", s))
                .transpose()?,
            rack: self
                .rack
                .as_deref()
                .map(|s| non_empty("--rack", s))
                .transpose()?,
            num_tokens: self.num_tokens,
            commitlog_sync: self.commitlog_sync,
            ..Partial::default()
        })
    }
}

/// One layer's settings; `None` means "this layer says nothing".
#[derive(Clone, Debug, Default)]
struct Partial {
    cluster_name: Option<String>,
    listen_address: Option<IpAddr>,
    broadcast_address: Option<IpAddr>,
    rpc_address: Option<IpAddr>,
    broadcast_rpc_address: Option<IpAddr>,
    native_transport_port: Option<u16>,
    storage_port: Option<u16>,
    admin_port: Option<u16>,
    data_dir: Option<PathBuf>,
    data_file_directories: Option<Vec<PathBuf>>,
    commitlog_directory: Option<PathBuf>,
    hints_directory: Option<PathBuf>,
    commitlog_sync: Option<SyncMode>,
    commitlog_sync_period_ms: Option<u64>,
    commitlog_sync_group_window_ms: Option<u64>,
    commitlog_segment_size: Option<u64>,
    num_tokens: Option<u32>,
    seeds: Option<Vec<String>>,
    endpoint_snitch: Option<String>,
    dc: Option<String>,
    rack: Option<String>,
    memtable_heap_space: Option<u64>,
    authenticator: Option<String>,
    authorizer: Option<String>,
    tombstone_warn_threshold: Option<usize>,
    tombstone_failure_threshold: Option<usize>,
    skip_corrupt_commitlog_entries: Option<bool>,
    native_transport_max_frame_size: Option<u64>,
    write_request_timeout_ms: Option<u64>,
    read_request_timeout_ms: Option<u64>,
    range_request_timeout_ms: Option<u64>,
    truncate_request_timeout_ms: Option<u64>,
    cas_contention_timeout_ms: Option<u64>,
    hinted_handoff_enabled: Option<bool>,
    max_hint_window_ms: Option<u64>,
}

impl Partial {
    fn overlay(&mut self, top: Partial) {
        macro_rules! take {
            ($($f:ident),* $(,)?) => { $( if top.$f.is_some() { self.$f = top.$f; } )* };
        }
        take!(
            cluster_name,
            listen_address,
            broadcast_address,
            rpc_address,
            broadcast_rpc_address,
            native_transport_port,
            storage_port,
            admin_port,
            data_dir,
            data_file_directories,
            commitlog_directory,
            hints_directory,
            commitlog_sync,
            commitlog_sync_period_ms,
            commitlog_sync_group_window_ms,
            commitlog_segment_size,
            num_tokens,
            seeds,
            endpoint_snitch,
            dc,
            rack,
            memtable_heap_space,
            authenticator,
            authorizer,
            tombstone_warn_threshold,
            tombstone_failure_threshold,
            skip_corrupt_commitlog_entries,
            native_transport_max_frame_size,
            write_request_timeout_ms,
            read_request_timeout_ms,
            range_request_timeout_ms,
            truncate_request_timeout_ms,
            cas_contention_timeout_ms,
            hinted_handoff_enabled,
            max_hint_window_ms,
        );
    }

    fn finish(self) -> Result<Config> {
        let listen_address = self
            .listen_address
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        if listen_address.is_unspecified() {
            // Other nodes gossip with this address; a wildcard cannot be dialled.
            return Err(ConfigError::Invalid(format!(
                "listen_address cannot be a wildcard address ({listen_address})"
            )));
        }
        if let Some(b) = self.broadcast_address
            && b.is_unspecified()
        {
            return Err(ConfigError::Invalid(format!(
                "broadcast_address cannot be a wildcard address ({b})"
            )));
        }
        if let Some(b) = self.broadcast_rpc_address
            && b.is_unspecified()
        {
            return Err(ConfigError::Invalid(format!(
                "broadcast_rpc_address cannot be a wildcard address ({b})"
            )));
        }
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from("./data"));
        let data_file_directories = self
            .data_file_directories
            .unwrap_or_else(|| vec![data_dir.join("data")]);
        if data_file_directories.is_empty() {
            return Err(ConfigError::Invalid(
                "data_file_directories must name at least one directory".into(),
            ));
        }
        let commitlog_sync = match self.commitlog_sync.unwrap_or(SyncMode::Periodic) {
            SyncMode::Periodic => CommitLogSync::Periodic {
                period_ms: self.commitlog_sync_period_ms.unwrap_or(10_000),
            },
            SyncMode::Batch => CommitLogSync::Batch,
            SyncMode::Group => CommitLogSync::Group {
                window_ms: self
                    .commitlog_sync_group_window_ms
                    .unwrap_or(DEFAULT_GROUP_WINDOW_MS),
            },
        };
        match commitlog_sync {
            CommitLogSync::Periodic { period_ms: 0 } => {
                return Err(ConfigError::Invalid(
                    "commitlog_sync is periodic but commitlog_sync_period is 0".into(),
                ));
            }
            CommitLogSync::Group { window_ms: 0 } => {
                return Err(ConfigError::Invalid(
                    "commitlog_sync is group but commitlog_sync_group_window is 0".into(),
                ));
            }
            _ => {}
        }
        let num_tokens = self.num_tokens.unwrap_or(16);
        if num_tokens == 0 || num_tokens > MAX_NUM_TOKENS {
            return Err(ConfigError::Invalid(format!(
                "num_tokens must be between 1 and {MAX_NUM_TOKENS}, got {num_tokens}"
            )));
        }
        let commitlog_segment_size = self.commitlog_segment_size.unwrap_or(32 * MIB);
        if commitlog_segment_size == 0 {
            return Err(ConfigError::Invalid(
                "commitlog_segment_size must be greater than 0".into(),
            ));
        }
        let native_transport_max_frame_size =
            self.native_transport_max_frame_size.unwrap_or(16 * MIB);
        if native_transport_max_frame_size == 0 {
            return Err(ConfigError::Invalid(
                "native_transport_max_frame_size must be greater than 0".into(),
            ));
        }
        Ok(Config {
            cluster_name: self
                .cluster_name
                .unwrap_or_else(|| "Test Cluster".to_string()),
            listen_address,
            broadcast_address: self.broadcast_address,
            rpc_address: self.rpc_address.unwrap_or(listen_address),
            broadcast_rpc_address: self.broadcast_rpc_address,
            native_transport_port: self.native_transport_port.unwrap_or(9042),
            storage_port: self.storage_port.unwrap_or(7000),
            admin_port: self.admin_port.unwrap_or(8080),
            commitlog_directory: self
                .commitlog_directory
                .unwrap_or_else(|| data_dir.join("commitlog")),
            hints_directory: self
                .hints_directory
                .unwrap_or_else(|| data_dir.join("hints")),
            data_file_directories,
            data_dir,
            commitlog_sync,
            commitlog_segment_size,
            num_tokens,
            seeds: self.seeds.unwrap_or_default(),
            endpoint_snitch: self
                .endpoint_snitch
                .unwrap_or_else(|| "SimpleSnitch".to_string()),
            dc: self.dc.unwrap_or_else(|| "datacenter1".to_string()),
            rack: self.rack.unwrap_or_else(|| "rack1".to_string()),
            memtable_heap_space: self.memtable_heap_space.unwrap_or(256 * MIB),
            authenticator: self
                .authenticator
                .unwrap_or_else(|| "AllowAllAuthenticator".to_string()),
            authorizer: self
                .authorizer
                .unwrap_or_else(|| "AllowAllAuthorizer".to_string()),
            tombstone_warn_threshold: self.tombstone_warn_threshold.unwrap_or(1000),
            tombstone_failure_threshold: self.tombstone_failure_threshold.unwrap_or(100_000),
            skip_corrupt_commitlog_entries: self.skip_corrupt_commitlog_entries.unwrap_or(false),
            native_transport_max_frame_size,
            write_request_timeout_ms: self.write_request_timeout_ms.unwrap_or(2000),
            read_request_timeout_ms: self.read_request_timeout_ms.unwrap_or(5000),
            range_request_timeout_ms: self.range_request_timeout_ms.unwrap_or(10000),
            truncate_request_timeout_ms: self.truncate_request_timeout_ms.unwrap_or(60000),
            cas_contention_timeout_ms: self.cas_contention_timeout_ms.unwrap_or(1000),
            max_hint_window_ms: self.max_hint_window_ms.unwrap_or(10800000),
            hinted_handoff_enabled: self.hinted_handoff_enabled.unwrap_or(true),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Value syntax shared by every layer.

/// Parses a Cassandra 4.1 `DurationSpec`: `^(\d+)(d|h|s|ms|us|µs|ns|m)$`, case-sensitive,
/// unit required.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (num, unit) = s.split_at(digits);
    // Java's Long.parseLong bounds the quantity.
    let q: u64 = num.parse().ok().filter(|q| *q <= i64::MAX as u64)?;
    Some(match unit {
        "ns" => Duration::from_nanos(q),
        "us" | "µs" => Duration::from_micros(q),
        "ms" => Duration::from_millis(q),
        "s" => Duration::from_secs(q),
        "m" => Duration::from_secs(q.checked_mul(60)?),
        "h" => Duration::from_secs(q.checked_mul(3600)?),
        "d" => Duration::from_secs(q.checked_mul(86_400)?),
        _ => return None,
    })
}

/// Parses a Cassandra 4.1 `DataStorageSpec` into bytes: `^(\d+)(GiB|MiB|KiB|B)?$`,
/// case-sensitive, unit required except for `0`, below 2^63 bytes.
pub fn parse_data_size(s: &str) -> Option<u64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (num, unit) = s.split_at(digits);
    let q: u64 = num.parse().ok().filter(|q| *q <= i64::MAX as u64)?;
    let mult = match unit {
        "B" => 1,
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        "" if q == 0 => 1,
        _ => return None,
    };
    q.checked_mul(mult).filter(|b| *b < i64::MAX as u64)
}

const DURATION_EXPECTED: &str = "a duration in whole milliseconds like 10000ms or 10s; units d, h, m, s, ms, us, ns, case-sensitive";
const SIZE_EXPECTED: &str = "a data size like 64MiB; units B, KiB, MiB, GiB, case-sensitive";

fn duration_ms(key: &str, s: &str) -> Result<u64> {
    let d = parse_duration(s).ok_or_else(|| invalid(key, s, DURATION_EXPECTED))?;
    // Commit-log timings are kept in milliseconds; refusing sub-millisecond remainders beats
    // silently rounding a window the operator chose on purpose.
    if d.as_nanos() % 1_000_000 != 0 {
        return Err(invalid(key, s, DURATION_EXPECTED));
    }
    u64::try_from(d.as_millis()).map_err(|_| invalid(key, s, DURATION_EXPECTED))
}

fn data_size(key: &str, s: &str) -> Result<u64> {
    parse_data_size(s).ok_or_else(|| invalid(key, s, SIZE_EXPECTED))
}

/// `auto`: this machine's first non-loopback IPv4, as the official image's `auto`.
fn parse_address(key: &str, s: &str) -> Result<IpAddr> {
    let s = s.trim();
    if s == "auto" {
        return Ok(auto_address());
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(ip);
    }
    // cassandra.yaml ships `listen_address: localhost`, so host names must resolve.
    let expected = "an IP address, a resolvable host name, or auto";
    if s.is_empty() || s.contains(char::is_whitespace) || s.contains(':') {
        return Err(invalid(key, s, expected));
    }
    let addrs: Vec<IpAddr> = (s, 0)
        .to_socket_addrs()
        .map_err(|_| invalid(key, s, expected))?
        .map(|a| a.ip())
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| invalid(key, s, expected))
}

/// The first non-loopback, non-link-local IPv4 address of this host's interfaces that is up,
/// else 127.0.0.1. This is what `auto` means for listen and broadcast addresses.
pub fn auto_address() -> IpAddr {
    IpAddr::V4(first_interface_ipv4().unwrap_or(Ipv4Addr::LOCALHOST))
}

#[allow(unsafe_code)]
fn first_interface_ipv4() -> Option<Ipv4Addr> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we own until freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        let up = ifa.ifa_flags & (libc::IFF_UP as libc::c_uint) != 0;
        // SAFETY: ifa_addr is either null or points at a sockaddr whose family says its type.
        if up
            && !ifa.ifa_addr.is_null()
            && i32::from(unsafe { (*ifa.ifa_addr).sa_family }) == libc::AF_INET
        {
            // SAFETY: family AF_INET means the sockaddr is a sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            if !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified() {
                found = Some(ip);
                break;
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    found
}

fn parse_seeds(key: &str, s: &str) -> Result<Vec<String>> {
    let seeds: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = seeds.iter().find(|x| x.contains(char::is_whitespace)) {
        return Err(invalid(
            key,
            bad.as_str(),
            "comma-separated host names or IPs, optionally host:port",
        ));
    }
    Ok(seeds)
}

fn non_empty(key: &str, s: &str) -> Result<String> {
    if s.trim().is_empty() {
        Err(invalid(key, s, "a non-empty string"))
    } else {
        Ok(s.to_string())
    }
}

const AUTHENTICATORS: &[&str] = &[
    "AllowAllAuthenticator",
    "PasswordAuthenticator",
    "MutualTlsAuthenticator",
    "MutualTlsWithPasswordFallbackAuthenticator",
];
const AUTHORIZERS: &[&str] = &["AllowAllAuthorizer", "CassandraAuthorizer"];

/// Accepts `X` or `org.apache.cassandra.auth.X` for a known `X`, returns `X`.
fn auth_class(key: &str, s: &str, known: &[&str]) -> Result<String> {
    let short = s
        .trim()
        .strip_prefix("org.apache.cassandra.auth.")
        .unwrap_or(s.trim());
    if known.contains(&short) {
        Ok(short.to_string())
    } else {
        Err(invalid(key, s, format!("one of {}", known.join(", "))))
    }
}

fn snitch_class(key: &str, s: &str) -> Result<String> {
    let short = s
        .trim()
        .strip_prefix("org.apache.cassandra.locator.")
        .unwrap_or(s.trim());
    if short.is_empty() || short.contains(char::is_whitespace) {
        return Err(invalid(key, s, "a snitch class name like SimpleSnitch"));
    }
    Ok(short.to_string())
}

// ---------------------------------------------------------------------------------------------
// Environment variables of the official Docker image.

/// Every environment variable Shoal reads, for documentation and tests.
pub const ENV_VARS: &[&str] = &[
    "CASSANDRA_CLUSTER_NAME",
    "CASSANDRA_SEEDS",
    "CASSANDRA_LISTEN_ADDRESS",
    "CASSANDRA_BROADCAST_ADDRESS",
    "CASSANDRA_RPC_ADDRESS",
    "CASSANDRA_BROADCAST_RPC_ADDRESS",
    "CASSANDRA_DC",
    "CASSANDRA_RACK",
    "CASSANDRA_ENDPOINT_SNITCH",
    "CASSANDRA_NUM_TOKENS",
];

fn env_layer(env: &dyn Fn(&str) -> Option<String>) -> Result<Partial> {
    // Compose files often pass `VAR=` to mean "not set"; the image's entrypoint treats it so.
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let addr = |name: &str| get(name).map(|v| parse_address(name, &v)).transpose();
    let mut p = Partial {
        cluster_name: get("CASSANDRA_CLUSTER_NAME"),
        listen_address: addr("CASSANDRA_LISTEN_ADDRESS")?,
        broadcast_address: addr("CASSANDRA_BROADCAST_ADDRESS")?,
        rpc_address: addr("CASSANDRA_RPC_ADDRESS")?,
        broadcast_rpc_address: addr("CASSANDRA_BROADCAST_RPC_ADDRESS")?,
        dc: get("CASSANDRA_DC"),
        rack: get("CASSANDRA_RACK"),
        ..Partial::default()
    };
    if let Some(v) = get("CASSANDRA_SEEDS") {
        p.seeds = Some(parse_seeds("CASSANDRA_SEEDS", &v)?);
    }
    if let Some(v) = get("CASSANDRA_ENDPOINT_SNITCH") {
        p.endpoint_snitch = Some(snitch_class("CASSANDRA_ENDPOINT_SNITCH", &v)?);
    }
    if let Some(v) = get("CASSANDRA_NUM_TOKENS") {
        p.num_tokens = Some(
            v.trim()
                .parse()
                .map_err(|_| invalid("CASSANDRA_NUM_TOKENS", v.as_str(), "a positive integer"))?,
        );
    }
    Ok(p)
}

// ---------------------------------------------------------------------------------------------
// The YAML file.

/// Keys Shoal reads from the YAML file, including accepted legacy spellings.
pub const KNOWN_KEYS: &[&str] = &[
    "cluster_name",
    "listen_address",
    "broadcast_address",
    "rpc_address",
    "broadcast_rpc_address",
    "native_transport_port",
    "storage_port",
    "admin_port",
    "data_dir",
    "data_file_directories",
    "commitlog_directory",
    "hints_directory",
    "commitlog_sync",
    "commitlog_sync_period",
    "commitlog_sync_period_in_ms",
    "commitlog_sync_group_window",
    "commitlog_sync_group_window_in_ms",
    "commitlog_sync_batch_window_in_ms",
    "commitlog_segment_size",
    "commitlog_segment_size_in_mb",
    "num_tokens",
    "seed_provider",
    "endpoint_snitch",
    "dc",
    "rack",
    "memtable_heap_space",
    "memtable_heap_space_in_mb",
    "authenticator",
    "authorizer",
    "tombstone_warn_threshold",
    "tombstone_failure_threshold",
    "skip_corrupt_commitlog_entries",
    "native_transport_max_frame_size",
    "native_transport_max_frame_size_in_mb",
    "write_request_timeout",
    "write_request_timeout_in_ms",
    "read_request_timeout",
    "read_request_timeout_in_ms",
    "range_request_timeout",
    "range_request_timeout_in_ms",
    "truncate_request_timeout",
    "truncate_request_timeout_in_ms",
    "cas_contention_timeout",
    "cas_contention_timeout_in_ms",
    "max_hint_window",
    "max_hint_window_in_ms",
    "hinted_handoff_enabled",
];

/// The new name and its legacy bare-number spelling; Cassandra refuses both at once.
const RENAMED: &[(&str, &str)] = &[
    ("write_request_timeout", "write_request_timeout_in_ms"),
    ("read_request_timeout", "read_request_timeout_in_ms"),
    ("range_request_timeout", "range_request_timeout_in_ms"),
    ("truncate_request_timeout", "truncate_request_timeout_in_ms"),
    ("cas_contention_timeout", "cas_contention_timeout_in_ms"),
    ("max_hint_window", "max_hint_window_in_ms"),
    ("commitlog_sync_period", "commitlog_sync_period_in_ms"),
    (
        "commitlog_sync_group_window",
        "commitlog_sync_group_window_in_ms",
    ),
    ("commitlog_segment_size", "commitlog_segment_size_in_mb"),
    ("memtable_heap_space", "memtable_heap_space_in_mb"),
    (
        "native_transport_max_frame_size",
        "native_transport_max_frame_size_in_mb",
    ),
];

/// A YAML scalar as the text the user wrote, or `None` for collections.
fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A compact rendering of any YAML value for error messages.
fn show(v: &Yaml) -> String {
    match v {
        Yaml::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(", ")),
        Yaml::Hash(h) => format!(
            "{{{}}}",
            h.iter()
                .map(|(k, v)| format!("{}: {}", show(k), show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Yaml::Null => "null".into(),
        other => scalar(other).unwrap_or_else(|| "?".into()),
    }
}

fn y_str(key: &str, v: &Yaml) -> Result<String> {
    scalar(v).ok_or_else(|| invalid(key, show(v), "a string"))
}

fn y_int<T: TryFrom<i64> + std::str::FromStr>(key: &str, v: &Yaml, expected: &str) -> Result<T> {
    let parsed = match v {
        Yaml::Integer(i) => T::try_from(*i).ok(),
        Yaml::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| invalid(key, show(v), expected))
}

fn y_bool(key: &str, v: &Yaml) -> Result<bool> {
    match v {
        Yaml::Boolean(b) => Ok(*b),
        Yaml::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Yaml::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(invalid(key, show(v), "true or false")),
    }
}

/// A legacy `_in_ms`/`_in_mb` bare number; Cassandra reads some of them as doubles.
fn y_legacy_number(key: &str, v: &Yaml, what: &str) -> Result<u64> {
    let n = match v {
        Yaml::Integer(i) => u64::try_from(*i).ok(),
        Yaml::Real(s) | Yaml::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f < i64::MAX as f64)
            .map(|f| f.round() as u64),
        _ => None,
    };
    n.ok_or_else(|| invalid(key, show(v), format!("a non-negative number of {what}")))
}

fn y_mib(key: &str, v: &Yaml) -> Result<u64> {
    y_legacy_number(key, v, "mebibytes")?
        .checked_mul(MIB)
        .ok_or_else(|| invalid(key, show(v), "a non-negative number of mebibytes"))
}

fn y_path(key: &str, v: &Yaml) -> Result<PathBuf> {
    let s = y_str(key, v)?;
    if s.trim().is_empty() {
        return Err(invalid(key, s, "a directory path"));
    }
    Ok(PathBuf::from(s))
}

/// `class_name` of a string or `{class_name: ..., parameters: ...}` (Cassandra 5's form).
fn y_class_name(key: &str, v: &Yaml) -> Result<String> {
    match v {
        Yaml::Hash(h) => {
            for (k, _) in h {
                let k = k.as_str().unwrap_or("");
                if k != "class_name" && k != "parameters" {
                    return Err(ConfigError::UnknownKey {
                        key: format!("{key}.{k}"),
                        file: String::new(),
                        suggestion: None,
                    });
                }
            }
            let cn = &v["class_name"];
            y_str(&format!("{key}.class_name"), cn)
        }
        other => y_str(key, other),
    }
}

/// Reads `seed_provider`:
/// ```yaml
/// seed_provider:
///   - class_name: org.apache.cassandra.locator.SimpleSeedProvider
///     parameters:
///       - seeds: "10.0.0.1,10.0.0.2:7000"
/// ```
fn y_seed_provider(v: &Yaml) -> Result<Vec<String>> {
    let key = "seed_provider";
    let expected = "a list holding one {class_name: org.apache.cassandra.locator.SimpleSeedProvider, parameters: [{seeds: \"a,b\"}]}";
    let Yaml::Array(providers) = v else {
        return Err(invalid(key, show(v), expected));
    };
    let [provider] = providers.as_slice() else {
        return Err(invalid(key, show(v), expected));
    };
    let Yaml::Hash(h) = provider else {
        return Err(invalid(key, show(v), expected));
    };
    let mut seeds = None;
    for (k, val) in h {
        match k.as_str() {
            Some("class_name") => {
                let cn = y_str("seed_provider[0].class_name", val)?;
                let short = cn
                    .strip_prefix("org.apache.cassandra.locator.")
                    .unwrap_or(&cn);
                if short != "SimpleSeedProvider" {
                    return Err(invalid(
                        "seed_provider[0].class_name",
                        cn,
                        "org.apache.cassandra.locator.SimpleSeedProvider",
                    ));
                }
            }
            Some("parameters") => {
                let params: Vec<&Yaml> = match val {
                    Yaml::Array(a) => a.iter().collect(),
                    // Tolerate the map written without the list dash.
                    Yaml::Hash(_) => vec![val],
                    _ => {
                        return Err(invalid(
                            "seed_provider[0].parameters",
                            show(val),
                            "a list like [{seeds: \"a,b\"}]",
                        ));
                    }
                };
                for (i, p) in params.into_iter().enumerate() {
                    let Yaml::Hash(ph) = p else {
                        return Err(invalid(
                            &format!("seed_provider[0].parameters[{i}]"),
                            show(p),
                            "a map like {seeds: \"a,b\"}",
                        ));
                    };
                    for (pk, pv) in ph {
                        let pk = pk.as_str().unwrap_or("");
                        let path = format!("seed_provider[0].parameters[{i}].{pk}");
                        if pk != "seeds" {
                            return Err(ConfigError::UnknownKey {
                                key: path,
                                file: String::new(),
                                suggestion: None,
                            });
                        }
                        seeds = Some(parse_seeds(&path, &y_str(&path, pv)?)?);
                    }
                }
            }
            other => {
                return Err(ConfigError::UnknownKey {
                    key: format!("seed_provider[0].{}", other.unwrap_or("?")),
                    file: String::new(),
                    suggestion: None,
                });
            }
        }
    }
    seeds.ok_or_else(|| invalid(key, show(v), expected))
}

fn parse_yaml(text: &str, path: &Path, warnings: &mut Vec<String>) -> Result<Partial> {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let docs = YamlLoader::load_from_str(text).map_err(|e| ConfigError::Yaml {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let root = match docs.into_iter().next() {
        None | Some(Yaml::Null) => return Ok(Partial::default()),
        Some(Yaml::Hash(h)) => h,
        Some(_) => {
            return Err(ConfigError::Yaml {
                path: path.to_path_buf(),
                message: "the top level must be a mapping of keys to values".into(),
            });
        }
    };

    let mut p = Partial::default();
    let mut seen = BTreeSet::new();
    let mut ignored = Vec::new();
    for (k, v) in &root {
        let Some(key) = k.as_str() else {
            return Err(ConfigError::Yaml {
                path: path.to_path_buf(),
                message: format!("configuration keys must be strings, found {}", show(k)),
            });
        };
        let known = KNOWN_KEYS.contains(&key);
        if !known {
            if IGNORED_CASSANDRA_KEYS.contains(&key) {
                ignored.push(key.to_string());
                continue;
            }
            return Err(ConfigError::UnknownKey {
                key: key.to_string(),
                file,
                suggestion: closest_key(key),
            });
        }
        // Cassandra treats `key:` with no value as "use the default".
        if matches!(v, Yaml::Null) {
            continue;
        }
        seen.insert(key);
        apply_key(&mut p, key, v, warnings).map_err(|e| match e {
            ConfigError::UnknownKey {
                key, suggestion, ..
            } => ConfigError::UnknownKey {
                key,
                file: file.clone(),
                suggestion,
            },
            other => other,
        })?;
    }
    for (new, old) in RENAMED {
        if seen.contains(new) && seen.contains(old) {
            return Err(ConfigError::Invalid(format!(
                "both {new} and its deprecated form {old} are set in {file}; keep only {new}"
            )));
        }
        if seen.contains(old) {
            warnings.push(format!("{old} is deprecated; use {new} with a unit"));
        }
    }
    if !ignored.is_empty() {
        warnings.push(format!(
            "ignoring {} cassandra.yaml setting(s) Shoal does not use: {}",
            ignored.len(),
            ignored.join(", ")
        ));
    }
    Ok(p)
}

fn apply_key(p: &mut Partial, key: &str, v: &Yaml, warnings: &mut Vec<String>) -> Result<()> {
    match key {
        "cluster_name" => p.cluster_name = Some(non_empty(key, &y_str(key, v)?)?),
        "listen_address" => p.listen_address = Some(parse_address(key, &y_str(key, v)?)?),
        "broadcast_address" => p.broadcast_address = Some(parse_address(key, &y_str(key, v)?)?),
        "rpc_address" => p.rpc_address = Some(parse_address(key, &y_str(key, v)?)?),
        "broadcast_rpc_address" => {
            p.broadcast_rpc_address = Some(parse_address(key, &y_str(key, v)?)?)
        }
        "native_transport_port" => {
            p.native_transport_port = Some(y_int(key, v, "a port number 0-65535")?)
        }
        "storage_port" => p.storage_port = Some(y_int(key, v, "a port number 0-65535")?),
        "admin_port" => p.admin_port = Some(y_int(key, v, "a port number 0-65535")?),
        "data_dir" => p.data_dir = Some(y_path(key, v)?),
        "data_file_directories" => {
            let Yaml::Array(items) = v else {
                return Err(invalid(key, show(v), "a list of directories"));
            };
            let dirs = items
                .iter()
                .enumerate()
                .map(|(i, d)| y_path(&format!("{key}[{i}]"), d))
                .collect::<Result<Vec<_>>>()?;
            p.data_file_directories = Some(dirs);
        }
        "commitlog_directory" => p.commitlog_directory = Some(y_path(key, v)?),
        "hints_directory" => p.hints_directory = Some(y_path(key, v)?),
        "commitlog_sync" => {
            let s = y_str(key, v)?;
            p.commitlog_sync = Some(
                SyncMode::parse(&s).ok_or_else(|| invalid(key, s, "periodic, batch or group"))?,
            );
        }
        "commitlog_sync_period" => {
            p.commitlog_sync_period_ms = Some(duration_ms(key, &y_str(key, v)?)?)
        }
        "commitlog_sync_period_in_ms" => {
            p.commitlog_sync_period_ms = Some(y_legacy_number(key, v, "milliseconds")?)
        }
        "commitlog_sync_group_window" => {
            p.commitlog_sync_group_window_ms = Some(duration_ms(key, &y_str(key, v)?)?)
        }
        "commitlog_sync_group_window_in_ms" => {
            p.commitlog_sync_group_window_ms = Some(y_legacy_number(key, v, "milliseconds")?)
        }
        "commitlog_sync_batch_window_in_ms" => {
            y_legacy_number(key, v, "milliseconds")?;
            warnings.push(format!(
                "{key} is deprecated and ignored: batch mode syncs as soon as writes arrive"
            ));
        }
        "commitlog_segment_size" => {
            p.commitlog_segment_size = Some(data_size(key, &y_str(key, v)?)?)
        }
        "commitlog_segment_size_in_mb" => p.commitlog_segment_size = Some(y_mib(key, v)?),
        "num_tokens" => p.num_tokens = Some(y_int(key, v, "a positive integer")?),
        "seed_provider" => p.seeds = Some(y_seed_provider(v)?),
        "endpoint_snitch" => p.endpoint_snitch = Some(snitch_class(key, &y_str(key, v)?)?),
        "dc" => p.dc = Some(non_empty(key, &y_str(key, v)?)?),
        "rack" => p.rack = Some(non_empty(key, &y_str(key, v)?)?),
        "memtable_heap_space" => p.memtable_heap_space = Some(data_size(key, &y_str(key, v)?)?),
        "memtable_heap_space_in_mb" => p.memtable_heap_space = Some(y_mib(key, v)?),
        "authenticator" => {
            p.authenticator = Some(auth_class(key, &y_class_name(key, v)?, AUTHENTICATORS)?)
        }
        "authorizer" => p.authorizer = Some(auth_class(key, &y_class_name(key, v)?, AUTHORIZERS)?),
        "tombstone_warn_threshold" => {
            p.tombstone_warn_threshold = Some(y_int(key, v, "a non-negative integer")?)
        }
        "tombstone_failure_threshold" => {
            p.tombstone_failure_threshold = Some(y_int(key, v, "a non-negative integer")?)
        }
        "skip_corrupt_commitlog_entries" => {
            p.skip_corrupt_commitlog_entries = Some(y_bool(key, v)?)
        }
        "cas_contention_timeout" => {
            p.cas_contention_timeout_ms = Some(duration_ms(key, &y_str(key, v)?)?)
        }
        "cas_contention_timeout_in_ms" => {
            p.cas_contention_timeout_ms = Some(y_legacy_number(key, v, "milliseconds")?)
        }
        "write_request_timeout" => {
            p.write_request_timeout_ms = Some(duration_ms(key, &y_str(key, v)?)?)
        }
        "write_request_timeout_in_ms" => {
            p.write_request_timeout_ms = Some(y_legacy_number(key, v, "milliseconds")?)
        }
        "read_request_timeout" => {
            p.read_request_timeout_ms = Some(duration_ms(key, &y_str(key, v)?)?)
        }
        "read_request_timeout_in_ms" => {
            p.read_request_timeout_ms = Some(y_legacy_number(key, v, "milliseconds")?)
        }
        "range_request_timeout" => {
            p.range_request_timeout_ms = Some(duration_ms(key, &y_str(key, v)?)?)
        }
        "range_request_timeout_in_ms" => {
            p.range_request_timeout_ms = Some(y_legacy_number(key, v, "milliseconds")?)
        }
        "truncate_request_timeout" => {
            p.truncate_request_timeout_ms = Some(duration_ms(key, &y_str(key, v)?)?)
        }
        "truncate_request_timeout_in_ms" => {
            p.truncate_request_timeout_ms = Some(y_legacy_number(key, v, "milliseconds")?)
        }
        "max_hint_window" => p.max_hint_window_ms = Some(duration_ms(key, &y_str(key, v)?)?),
        "max_hint_window_in_ms" => {
            p.max_hint_window_ms = Some(y_legacy_number(key, v, "milliseconds")?)
        }
        "hinted_handoff_enabled" => p.hinted_handoff_enabled = Some(y_bool(key, v)?),
        "native_transport_max_frame_size" => {
            p.native_transport_max_frame_size = Some(data_size(key, &y_str(key, v)?)?)
        }
        "native_transport_max_frame_size_in_mb" => {
            p.native_transport_max_frame_size = Some(y_mib(key, v)?)
        }
        _ => unreachable!("every KNOWN_KEYS entry has an arm"),
    }
    Ok(())
}

/// The known key within edit distance 2 of `key`, for "did you mean".
fn closest_key(key: &str) -> Option<String> {
    KNOWN_KEYS
        .iter()
        .chain(IGNORED_CASSANDRA_KEYS)
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---------------------------------------------------------------------------------------------
// cassandra.yaml keys that Shoal accepts and ignores.
//
// Taken from Cassandra's `Config.java` (field names and the `@Replaces` old names) and the
// shipped `conf/cassandra.yaml`, 4.0 to 5.x, so that an existing cassandra.yaml starts Shoal
// with one warning instead of failing on settings Shoal has no use for. A key that is neither
// here nor in the list Shoal reads is a typo until proven otherwise, and stops start-up.

pub(crate) const IGNORED_CASSANDRA_KEYS: &[&str] = &[
    "addresses_config",
    "allocate_tokens_for_keyspace",
    "allocate_tokens_for_local_replication_factor",
    "allow_extra_insecure_udfs",
    "allow_filtering_enabled",
    "allow_insecure_udfs",
    "alter_table_enabled",
    "audit_logging_options",
    "auth_cache_warming_enabled",
    "auth_read_consistency_level",
    "auth_write_consistency_level",
    "auto_bootstrap",
    "auto_hints_cleanup_enabled",
    "auto_optimise_full_repair_streams",
    "auto_optimise_inc_repair_streams",
    "auto_optimise_preview_repair_streams",
    "auto_repair",
    "auto_snapshot",
    "auto_snapshot_ttl",
    "autocompaction_on_startup_enabled",
    "automatic_sstable_upgrade",
    "available_processors",
    "back_pressure_enabled",
    "back_pressure_strategy",
    "background_write_disk_access_mode",
    "batch_size_fail_threshold",
    "batch_size_fail_threshold_in_kb",
    "batch_size_warn_threshold",
    "batch_size_warn_threshold_in_kb",
    "batchlog_endpoint_strategy",
    "batchlog_replay_throttle",
    "batchlog_replay_throttle_in_kb",
    "block_for_peers_in_remote_dcs",
    "block_for_peers_timeout_in_secs",
    "buffer_pool_use_heap_if_exhausted",
    "bulk_load_enabled",
    "cache_load_timeout",
    "cache_load_timeout_seconds",
    "cdc_block_writes",
    "cdc_enabled",
    "cdc_free_space_check_interval",
    "cdc_free_space_check_interval_ms",
    "cdc_on_repair_enabled",
    "cdc_raw_directory",
    "cdc_total_space",
    "cdc_total_space_in_mb",
    "check_for_duplicate_rows_during_compaction",
    "check_for_duplicate_rows_during_reads",
    "cidr_authorizer",
    "client_encryption_options",
    "client_error_reporting_exclusions",
    "client_request_size_metrics_enabled",
    "cms_await_timeout",
    "cms_commit_member_preference_policy",
    "cms_default_max_retries",
    "cms_default_max_retry_backoff",
    "cms_default_retry_backoff",
    "cms_retry_delay",
    "collection_list_size_fail_threshold",
    "collection_list_size_warn_threshold",
    "collection_map_size_fail_threshold",
    "collection_map_size_warn_threshold",
    "collection_set_size_fail_threshold",
    "collection_set_size_warn_threshold",
    "collection_size_fail_threshold",
    "collection_size_warn_threshold",
    "column_ascii_value_size_fail_threshold",
    "column_ascii_value_size_warn_threshold",
    "column_blob_value_size_fail_threshold",
    "column_blob_value_size_warn_threshold",
    "column_index_cache_size",
    "column_index_cache_size_in_kb",
    "column_index_size",
    "column_index_size_in_kb",
    "column_text_and_varchar_value_size_fail_threshold",
    "column_text_and_varchar_value_size_warn_threshold",
    "column_value_size_fail_threshold",
    "column_value_size_warn_threshold",
    "column_varchar_value_size_fail_threshold",
    "column_varchar_value_size_warn_threshold",
    "columns_per_table_fail_threshold",
    "columns_per_table_warn_threshold",
    "commit_failure_policy",
    "commitlog_compression",
    "commitlog_disk_access_mode",
    "commitlog_max_compression_buffers_in_pool",
    "commitlog_periodic_queue_size",
    "commitlog_total_space",
    "commitlog_total_space_in_mb",
    "compact_tables_enabled",
    "compaction_large_partition_warning_threshold",
    "compaction_large_partition_warning_threshold_mb",
    "compaction_read_disk_access_mode",
    "compaction_throughput",
    "compaction_throughput_mb_per_sec",
    "compaction_tombstone_warning_threshold",
    "compressed_read_ahead_buffer_size",
    "compression_dictionary_cache_expire",
    "compression_dictionary_cache_size",
    "compression_dictionary_refresh_initial_delay",
    "compression_dictionary_refresh_interval",
    "concurrent_compactors",
    "concurrent_counter_writes",
    "concurrent_index_builders",
    "concurrent_materialized_view_builders",
    "concurrent_materialized_view_writes",
    "concurrent_merkle_tree_requests",
    "concurrent_reads",
    "concurrent_validations",
    "concurrent_writes",
    "consecutive_message_errors_threshold",
    "consensus_migration_cache_size",
    "coordinator_read_size_fail_threshold",
    "coordinator_read_size_warn_threshold",
    "coordinator_write_warn_interval",
    "corrupted_tombstone_strategy",
    "counter_cache_keys_to_save",
    "counter_cache_save_period",
    "counter_cache_size",
    "counter_cache_size_in_mb",
    "counter_write_request_timeout",
    "counter_write_request_timeout_in_ms",
    "credentials_cache_active_update",
    "credentials_cache_max_entries",
    "credentials_update_interval",
    "credentials_update_interval_in_ms",
    "credentials_validity",
    "credentials_validity_in_ms",
    "cross_node_timeout",
    "crypto_provider",
    "data_disk_usage_keyspace_wide_protection_enabled",
    "data_disk_usage_max_disk_size",
    "data_disk_usage_percentage_fail_threshold",
    "data_disk_usage_percentage_warn_threshold",
    "default_compaction",
    "default_keyspace_rf",
    "default_secondary_index",
    "default_secondary_index_enabled",
    "denylist_consistency_level",
    "denylist_initial_load_retry",
    "denylist_max_keys_per_table",
    "denylist_max_keys_total",
    "denylist_range_reads_enabled",
    "denylist_reads_enabled",
    "denylist_refresh",
    "denylist_writes_enabled",
    "diagnostic_events_enabled",
    "direct_write_buffer_size",
    "disk_access_mode",
    "disk_failure_policy",
    "disk_optimization_estimate_percentile",
    "disk_optimization_page_cross_chance",
    "disk_optimization_strategy",
    "drop_compact_storage_enabled",
    "drop_keyspace_enabled",
    "drop_truncate_table_enabled",
    "dump_heap_on_uncaught_exception",
    "dynamic_data_masking_enabled",
    "dynamic_snitch",
    "dynamic_snitch_badness_threshold",
    "dynamic_snitch_reset_interval",
    "dynamic_snitch_reset_interval_in_ms",
    "dynamic_snitch_update_interval",
    "dynamic_snitch_update_interval_in_ms",
    "enable_drop_compact_storage",
    "enable_materialized_views",
    "enable_sasi_indexes",
    "enable_scripted_user_defined_functions",
    "enable_transient_replication",
    "enable_user_defined_functions",
    "enable_user_defined_functions_threads",
    "entire_sstable_inter_dc_stream_throughput_outbound",
    "entire_sstable_stream_throughput_outbound",
    "epoch_aware_debounce_inflight_tracker_max_size",
    "failure_detector",
    "fields_per_udt_fail_threshold",
    "fields_per_udt_warn_threshold",
    "file_cache_enabled",
    "file_cache_round_up",
    "file_cache_size",
    "file_cache_size_in_mb",
    "flush_compression",
    "force_new_prepared_statement_behaviour",
    "force_optimized_index_status_format",
    "full_query_logging_options",
    "gc_concurrent_phase_log_threshold",
    "gc_concurrent_phase_warn_threshold",
    "gc_log_threshold",
    "gc_log_threshold_in_ms",
    "gc_warn_threshold",
    "gc_warn_threshold_in_ms",
    "group_by_enabled",
    "heap_dump_path",
    "hint_window_persistent_enabled",
    "hinted_handoff_disabled_datacenters",
    "hinted_handoff_throttle",
    "hinted_handoff_throttle_in_kb",
    "hints_compression",
    "hints_flush_period",
    "hints_flush_period_in_ms",
    "ideal_consistency_level",
    "in_select_cartesian_product_fail_threshold",
    "in_select_cartesian_product_warn_threshold",
    "incremental_backups",
    "incremental_repair_disk_headroom_reject_ratio",
    "index_summary_capacity",
    "index_summary_capacity_in_mb",
    "index_summary_resize_interval",
    "index_summary_resize_interval_in_minutes",
    "initial_location_provider",
    "initial_range_tombstone_list_allocation_size",
    "initial_token",
    "inter_dc_stream_throughput_outbound",
    "inter_dc_stream_throughput_outbound_megabits_per_sec",
    "inter_dc_tcp_nodelay",
    "internode_application_receive_queue_capacity",
    "internode_application_receive_queue_capacity_in_bytes",
    "internode_application_receive_queue_reserve_endpoint_capacity",
    "internode_application_receive_queue_reserve_endpoint_capacity_in_bytes",
    "internode_application_receive_queue_reserve_global_capacity",
    "internode_application_receive_queue_reserve_global_capacity_in_bytes",
    "internode_application_send_queue_capacity",
    "internode_application_send_queue_capacity_in_bytes",
    "internode_application_send_queue_reserve_endpoint_capacity",
    "internode_application_send_queue_reserve_endpoint_capacity_in_bytes",
    "internode_application_send_queue_reserve_global_capacity",
    "internode_application_send_queue_reserve_global_capacity_in_bytes",
    "internode_authenticator",
    "internode_compression",
    "internode_error_reporting_exclusions",
    "internode_max_message_size",
    "internode_max_message_size_in_bytes",
    "internode_recv_buff_size_in_bytes",
    "internode_send_buff_size_in_bytes",
    "internode_socket_receive_buffer_size",
    "internode_socket_receive_buffer_size_in_bytes",
    "internode_socket_send_buffer_size",
    "internode_socket_send_buffer_size_in_bytes",
    "internode_streaming_tcp_user_timeout",
    "internode_streaming_tcp_user_timeout_in_ms",
    "internode_tcp_connect_timeout",
    "internode_tcp_connect_timeout_in_ms",
    "internode_tcp_user_timeout",
    "internode_tcp_user_timeout_in_ms",
    "internode_timeout",
    "intersect_filtering_query_enabled",
    "intersect_filtering_query_warned",
    "invalid_legacy_protocol_magic_no_spam_enabled",
    "items_per_collection_fail_threshold",
    "items_per_collection_warn_threshold",
    "jmx_server_options",
    "key_cache_invalidate_after_sstable_deletion",
    "key_cache_keys_to_save",
    "key_cache_migrate_during_compaction",
    "key_cache_save_period",
    "key_cache_size",
    "key_cache_size_in_mb",
    "keyspace_count_warn_threshold",
    "keyspace_properties_disallowed",
    "keyspace_properties_ignored",
    "keyspace_properties_warned",
    "keyspaces_fail_threshold",
    "keyspaces_warn_threshold",
    "listen_interface",
    "listen_interface_prefer_ipv6",
    "listen_on_broadcast_address",
    "local_read_size_fail_threshold",
    "local_read_size_warn_threshold",
    "local_system_data_file_directory",
    "materialized_views_enabled",
    "materialized_views_on_repair_enabled",
    "materialized_views_per_table_fail_threshold",
    "materialized_views_per_table_warn_threshold",
    "max_comment_length",
    "max_concurrent_automatic_sstable_upgrades",
    "max_hints_delivery_threads",
    "max_hints_file_size",
    "max_hints_file_size_in_mb",
    "max_hints_size_per_host",
    "max_mutation_size",
    "max_mutation_size_in_kb",
    "max_security_label_length",
    "max_space_usable_for_compactions_in_percentage",
    "max_streaming_retries",
    "max_top_size_partition_count",
    "max_top_tombstone_partition_count",
    "max_value_size",
    "max_value_size_in_mb",
    "maximum_replication_factor_fail_threshold",
    "maximum_replication_factor_warn_threshold",
    "maximum_timestamp_fail_threshold",
    "maximum_timestamp_warn_threshold",
    "memtable",
    "memtable_allocation_type",
    "memtable_cleanup_threshold",
    "memtable_flush_writers",
    "memtable_offheap_space",
    "memtable_offheap_space_in_mb",
    "metadata_snapshot_frequency",
    "min_free_space_per_drive",
    "min_free_space_per_drive_in_mb",
    "min_tracked_partition_size",
    "min_tracked_partition_tombstone_count",
    "minimum_client_driver_versions_disallowed",
    "minimum_client_driver_versions_warned",
    "minimum_keyspace_rf",
    "minimum_replication_factor_fail_threshold",
    "minimum_replication_factor_warn_threshold",
    "minimum_timestamp_fail_threshold",
    "minimum_timestamp_warn_threshold",
    "native_transport_allow_older_protocols",
    "native_transport_flush_in_batches_legacy",
    "native_transport_idle_timeout",
    "native_transport_idle_timeout_in_ms",
    "native_transport_max_auth_threads",
    "native_transport_max_concurrent_connections",
    "native_transport_max_concurrent_connections_per_ip",
    "native_transport_max_concurrent_requests_in_bytes",
    "native_transport_max_concurrent_requests_in_bytes_per_ip",
    "native_transport_max_message_size",
    "native_transport_max_negotiable_protocol_version",
    "native_transport_max_request_data_in_flight",
    "native_transport_max_request_data_in_flight_per_ip",
    "native_transport_max_requests_per_second",
    "native_transport_max_threads",
    "native_transport_port_ssl",
    "native_transport_rate_limiting_enabled",
    "native_transport_receive_queue_capacity",
    "native_transport_receive_queue_capacity_in_bytes",
    "network_authorizer",
    "networking_cache_size",
    "networking_cache_size_in_mb",
    "node_proximity",
    "non_partition_restricted_index_query_enabled",
    "otc_backlog_expiration_interval_ms",
    "otc_coalescing_enough_coalesced_messages",
    "otc_coalescing_strategy",
    "otc_coalescing_window_us",
    "page_size_fail_threshold",
    "page_size_warn_threshold",
    "partition_denylist_enabled",
    "partition_keys_in_select_fail_threshold",
    "partition_keys_in_select_warn_threshold",
    "partition_size_fail_threshold",
    "partition_size_warn_threshold",
    "partition_tombstones_fail_threshold",
    "partition_tombstones_warn_threshold",
    "partitioner",
    "password_policy",
    "password_policy_reconfiguration_enabled",
    "paxos_cache_size",
    "paxos_contention_max_wait",
    "paxos_contention_min_delta",
    "paxos_contention_min_wait",
    "paxos_contention_wait_randomizer",
    "paxos_on_linearizability_violations",
    "paxos_purge_grace_period",
    "paxos_repair_enabled",
    "paxos_repair_parallelism",
    "paxos_state_purging",
    "paxos_topology_repair_no_dc_checks",
    "paxos_topology_repair_strict_each_quorum",
    "paxos_variant",
    "periodic_commitlog_sync_lag_block",
    "periodic_commitlog_sync_lag_block_in_ms",
    "permissions_cache_active_update",
    "permissions_cache_max_entries",
    "permissions_update_interval",
    "permissions_update_interval_in_ms",
    "permissions_validity",
    "permissions_validity_in_ms",
    "phi_convict_threshold",
    "prefer_local_connections",
    "prepared_statements_cache_size",
    "prepared_statements_cache_size_mb",
    "range_tombstone_list_growth_factor",
    "read_before_write_list_operations_enabled",
    "read_consistency_levels_disallowed",
    "read_consistency_levels_warned",
    "read_thresholds_enabled",
    "reject_repair_compaction_threshold",
    "repair",
    "repair_command_pool_full_strategy",
    "repair_command_pool_size",
    "repair_disk_headroom_reject_ratio",
    "repair_request_timeout",
    "repair_request_timeout_in_ms",
    "repair_session_max_tree_depth",
    "repair_session_space",
    "repair_session_space_in_mb",
    "repair_state_expires",
    "repair_state_size",
    "repaired_data_tracking_for_partition_reads_enabled",
    "repaired_data_tracking_for_range_reads_enabled",
    "replica_filtering_protection",
    "report_unconfirmed_repaired_data_mismatches",
    "request_timeout",
    "request_timeout_in_ms",
    "role_manager",
    "role_name_policy",
    "role_name_policy_reconfiguration_enabled",
    "roles_cache_active_update",
    "roles_cache_max_entries",
    "roles_update_interval",
    "roles_update_interval_in_ms",
    "roles_validity",
    "roles_validity_in_ms",
    "row_cache_class_name",
    "row_cache_keys_to_save",
    "row_cache_save_period",
    "row_cache_size",
    "row_cache_size_in_mb",
    "row_index_read_size_fail_threshold",
    "row_index_read_size_warn_threshold",
    "rpc_interface",
    "rpc_interface_prefer_ipv6",
    "rpc_keepalive",
    "sai_frozen_term_size_fail_threshold",
    "sai_frozen_term_size_warn_threshold",
    "sai_options",
    "sai_sstable_indexes_per_query_fail_threshold",
    "sai_sstable_indexes_per_query_warn_threshold",
    "sai_string_term_size_fail_threshold",
    "sai_string_term_size_warn_threshold",
    "sai_vector_term_size_fail_threshold",
    "sai_vector_term_size_warn_threshold",
    "sasi_indexes_enabled",
    "saved_caches_directory",
    "scripted_user_defined_functions_enabled",
    "secondary_indexes_enabled",
    "secondary_indexes_per_table_fail_threshold",
    "secondary_indexes_per_table_warn_threshold",
    "server_encryption_options",
    "short_rpc_timeout",
    "simplestrategy_enabled",
    "skip_paxos_repair_on_topology_change",
    "skip_paxos_repair_on_topology_change_keyspaces",
    "skip_stream_disk_space_check",
    "slow_query_log_timeout",
    "slow_query_log_timeout_in_ms",
    "snapshot_before_compaction",
    "snapshot_links_per_second",
    "snapshot_on_duplicate_row_detection",
    "snapshot_on_repaired_data_mismatch",
    "ssl_storage_port",
    "sstable",
    "sstable_preemptive_open_interval",
    "sstable_preemptive_open_interval_in_mb",
    "sstable_read_rate_persistence_enabled",
    "sstables_per_read_log_threshold",
    "start_native_transport",
    "start_rpc",
    "startup_checks",
    "storage_compatibility_mode",
    "stream_entire_sstables",
    "stream_throughput_outbound",
    "stream_throughput_outbound_megabits_per_sec",
    "stream_transfer_task_timeout",
    "streaming_connections_per_host",
    "streaming_keep_alive_period",
    "streaming_keep_alive_period_in_secs",
    "streaming_slow_events_log_timeout",
    "streaming_state_expires",
    "streaming_state_size",
    "streaming_stats_enabled",
    "table_count_warn_threshold",
    "table_properties_disallowed",
    "table_properties_ignored",
    "table_properties_warned",
    "tables_fail_threshold",
    "tables_warn_threshold",
    "thrift_framed_transport_size_in_mb",
    "thrift_prepared_statements_cache_size_mb",
    "tombstone_read_purgeable_metric_granularity",
    "top_partitions_enabled",
    "trace_type_query_ttl",
    "trace_type_repair_ttl",
    "tracetype_query_ttl",
    "tracetype_repair_ttl",
    "transfer_hints_on_decommission",
    "transient_replication_enabled",
    "transparent_data_encryption_options",
    "traverse_auth_from_root",
    "trickle_fsync",
    "trickle_fsync_interval",
    "trickle_fsync_interval_in_kb",
    "uncompressed_tables_enabled",
    "unlogged_batch_across_partitions_warn_threshold",
    "unset_training_min_frequency_enabled",
    "unset_training_min_frequency_warned",
    "use_creation_time_for_hint_ttl",
    "use_deterministic_table_id",
    "use_offheap_merkle_trees",
    "use_statements_enabled",
    "user_defined_function_fail_timeout",
    "user_defined_function_warn_timeout",
    "user_defined_functions_enabled",
    "user_defined_functions_fail_timeout",
    "user_defined_functions_threads_enabled",
    "user_defined_functions_warn_timeout",
    "user_function_timeout_policy",
    "user_timestamps_enabled",
    "uuid_sstable_identifiers_enabled",
    "validation_preview_purge_head_start",
    "validation_preview_purge_head_start_in_sec",
    "vector_dimensions_fail_threshold",
    "vector_dimensions_warn_threshold",
    "vector_type_enabled",
    "windows_timer_interval",
    "write_consistency_levels_disallowed",
    "write_consistency_levels_warned",
    "write_size_warn_threshold",
    "write_thresholds_enabled",
    "write_tombstone_warn_threshold",
    "zero_ttl_on_twcs_enabled",
    "zero_ttl_on_twcs_warned",
];
