//! Kubernetes integration. Today: the pod's identity from its hostname. Discovery through a
//! headless Service, probes, drain and the manifests come with the StatefulSet work.

/// A StatefulSet pod's identity: `<set>-<ordinal>`.
#[derive(Clone, Debug, PartialEq, Eq)]
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
