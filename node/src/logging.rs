//! Process-wide logging: `tracing` events formatted to stderr.

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber. The filter comes from `SHOAL_LOG`, else `RUST_LOG`, else
/// `info`; it uses `EnvFilter` syntax (`info,shoal_engine=debug`). A second call is a no-op,
/// so tests and embedders may call it freely.
pub fn init() {
    let (source, spec) = match filter_spec(&|name| std::env::var(name).ok()) {
        Some((source, spec)) => (Some(source), spec),
        None => (None, "info".to_string()),
    };
    let (filter, bad) = match EnvFilter::try_new(&spec) {
        Ok(f) => (f, None),
        // A typo in the log filter should not keep the node from starting.
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    let installed = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only help a terminal; in files and container logs they are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .try_init()
        .is_ok();
    if let (true, Some(e), Some(source)) = (installed, bad, source) {
        tracing::warn!("ignoring {source}={spec:?} ({e}); logging at info");
    }
}

/// The variable that sets the filter and its value; empty values count as unset.
fn filter_spec(env: &dyn Fn(&str) -> Option<String>) -> Option<(&'static str, String)> {
    ["SHOAL_LOG", "RUST_LOG"].into_iter().find_map(|name| {
        env(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shoal_log_wins_over_rust_log() {
        let env = |n: &str| match n {
            "SHOAL_LOG" => Some("debug".to_string()),
            "RUST_LOG" => Some("warn".to_string()),
            _ => None,
        };
        assert_eq!(filter_spec(&env), Some(("SHOAL_LOG", "debug".to_string())));
        let env = |n: &str| (n == "RUST_LOG").then(|| "warn".to_string());
        assert_eq!(filter_spec(&env), Some(("RUST_LOG", "warn".to_string())));
        assert_eq!(filter_spec(&|_| None), None);
        let env = |n: &str| (n == "SHOAL_LOG").then(String::new);
        assert_eq!(filter_spec(&env), None);
    }

    #[test]
    fn init_twice_is_harmless() {
        init();
        init();
    }
}
