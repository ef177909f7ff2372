//! Who this pod is: StatefulSet name and ordinal from the hostname, namespace and IP from the
//! downward API, dc/rack from the official image's variables.

use std::net::IpAddr;

/// A StatefulSet pod's identity: `<set>-<ordinal>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodIdentity {
    pub set: String,
    pub ordinal: u32,
}

/// Parses a StatefulSet pod hostname (`shoal-2`, or a FQDN whose first label is that).
/// Returns `None` for names without a trailing `-<number>`.
pub fn parse_pod_hostname(hostname: &str) -> Option<PodIdentity> {
    let first = hostname.split('.').next()?;
    let (set, ordinal) = first.rsplit_once('-')?;
    if set.is_empty() || ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(PodIdentity {
        set: set.to_string(),
        ordinal: ordinal.parse().ok()?,
    })
}

/// What the pod knows about itself before talking to anyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodEnv {
    pub hostname: String,
    /// `None` outside a StatefulSet (plain Docker, a laptop): such a node is never ordinal 0.
    pub pod: Option<PodIdentity>,
    /// `POD_NAMESPACE` (downward API `metadata.namespace`).
    pub namespace: Option<String>,
    /// `POD_IP` (downward API `status.podIP`); ignored when it does not parse.
    pub pod_ip: Option<IpAddr>,
    /// `CASSANDRA_DC` / `CASSANDRA_RACK`, the official image's names.
    pub dc: Option<String>,
    pub rack: Option<String>,
}

impl PodEnv {
    /// Reads the environment through `env` (injected so tests need not touch the process
    /// environment). The hostname comes from `HOSTNAME`, then `hostname_fallback`.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>, hostname_fallback: &str) -> PodEnv {
        let non_empty = |k: &str| {
            env(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let hostname = non_empty("HOSTNAME").unwrap_or_else(|| hostname_fallback.to_string());
        PodEnv {
            pod: parse_pod_hostname(&hostname),
            hostname,
            namespace: non_empty("POD_NAMESPACE"),
            pod_ip: non_empty("POD_IP").and_then(|v| v.parse().ok()),
            dc: non_empty("CASSANDRA_DC"),
            rack: non_empty("CASSANDRA_RACK"),
        }
    }

    pub fn ordinal(&self) -> Option<u32> {
        self.pod.as_ref().map(|p| p.ordinal)
    }
}

/// This machine's host name as the kernel reports it (what a pod's `HOSTNAME` also holds).
pub fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn parses_statefulset_hostnames() {
        assert_eq!(
            parse_pod_hostname("shoal-0"),
            Some(PodIdentity {
                set: "shoal".into(),
                ordinal: 0
            })
        );
        assert_eq!(
            parse_pod_hostname("db-r1-12.db-peers.ns.svc.cluster.local"),
            Some(PodIdentity {
                set: "db-r1".into(),
                ordinal: 12
            })
        );
        assert_eq!(parse_pod_hostname("shoal"), None);
        assert_eq!(parse_pod_hostname("shoal-"), None);
        assert_eq!(parse_pod_hostname("-3"), None);
        assert_eq!(parse_pod_hostname("shoal-x1"), None);
        assert_eq!(parse_pod_hostname(""), None);
        assert_eq!(parse_pod_hostname("shoal-99999999999999999999"), None);
    }

    #[test]
    fn reads_pod_env() {
        let vars: HashMap<&str, &str> = [
            ("HOSTNAME", "shoal-r2-3"),
            ("POD_NAMESPACE", "db"),
            ("POD_IP", "10.1.2.3"),
            ("CASSANDRA_DC", "dc1"),
            ("CASSANDRA_RACK", " r2 "),
        ]
        .into();
        let env = |k: &str| vars.get(k).map(|v| v.to_string());
        let p = PodEnv::from_env(&env, "ignored");
        assert_eq!(p.ordinal(), Some(3));
        assert_eq!(p.pod.unwrap().set, "shoal-r2");
        assert_eq!(p.namespace.as_deref(), Some("db"));
        assert_eq!(p.pod_ip, Some("10.1.2.3".parse().unwrap()));
        assert_eq!(p.dc.as_deref(), Some("dc1"));
        assert_eq!(p.rack.as_deref(), Some("r2"));

        let vars: HashMap<&str, &str> = [("POD_IP", "not-an-ip"), ("POD_NAMESPACE", "")].into();
        let env = |k: &str| vars.get(k).map(|v| v.to_string());
        let p = PodEnv::from_env(&env, "laptop");
        assert_eq!(p.hostname, "laptop");
        assert_eq!(p.pod, None);
        assert_eq!(p.pod_ip, None);
        assert_eq!(p.namespace, None);
    }
}
