//! The `shoal` binary.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use shoal_node::run::RunOptions;
use tokio::sync::watch;

/// Memtable churn (millions of small nodes allocated by request threads, freed in bulk by
/// flushes) is what glibc malloc handles worst; see docs/benchmarks.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Shoal-only flag (not a cassandra.yaml key), taken out of argv before the config parser
/// sees it: `--drain-delay-ms N` / `--drain-delay-ms=N`, else `SHOAL_DRAIN_DELAY_MS`.
const DRAIN_DELAY_FLAG: &str = "--drain-delay-ms";

fn main() -> ExitCode {
    // Memtable churn: freed memory is kept for the next memtable (see the function).
    shoal_engine::alloc::keep_freed_memory();
    let argv: Vec<OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "status") {
        return status(argv);
    }
    shoal_node::logging::init();
    let env = |k: &str| std::env::var(k).ok();
    let (args, drain_delay) = match take_drain_delay(argv, &env) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("shoal: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match shoal_node::config::load(args, &env) {
        Ok(c) => c,
        // --help and --version arrive as clap errors: let clap print them and exit.
        Err(shoal_node::config::ConfigError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("shoal: {e}");
            return ExitCode::from(2);
        }
    };
    let mut options = RunOptions::default();
    if let Some(d) = drain_delay {
        options.drain_delay = d;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("shoal")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("shoal: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(handle_signals(tx));
        shoal_node::run::run_with(config, rx, options).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("shoal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `shoal status [--host H] [--admin-port P] [KEYSPACE]`: the ring of a running node.
fn status(argv: Vec<OsString>) -> ExitCode {
    use clap::Parser;
    let args = match shoal_node::status::StatusArgs::try_parse_from(argv.into_iter().skip(1)) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    match shoal_node::status::run(&args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shoal status: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Removes the drain-delay flag from `args`; the flag wins over the environment variable.
fn take_drain_delay(
    args: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<OsString>, Option<Duration>), String> {
    let parse = |v: &str, from: &str| {
        v.trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("{from}: expected milliseconds, got {v:?}"))
    };
    let mut delay = match env("SHOAL_DRAIN_DELAY_MS") {
        Some(v) if !v.trim().is_empty() => Some(parse(&v, "SHOAL_DRAIN_DELAY_MS")?),
        _ => None,
    };
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let s = arg.to_string_lossy();
        if s == DRAIN_DELAY_FLAG {
            let v = it
                .next()
                .ok_or_else(|| format!("{DRAIN_DELAY_FLAG} needs a value"))?;
            delay = Some(parse(&v.to_string_lossy(), DRAIN_DELAY_FLAG)?);
        } else if let Some(v) = s.strip_prefix("--drain-delay-ms=") {
            delay = Some(parse(v, DRAIN_DELAY_FLAG)?);
        } else {
            out.push(arg);
        }
    }
    Ok((out, delay))
}

/// The first SIGTERM/SIGINT starts the drain; later ones are only logged, so an impatient
/// second signal cannot interrupt a flush (the kubelet's SIGKILL at the end of the grace
/// period remains the hard stop).
async fn handle_signals(tx: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut first = true;
    loop {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        if !first {
            tracing::info!("already draining; the signal changes nothing");
        }
        first = false;
        let _ = tx.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn drain_delay_flag_is_taken_out() {
        let none = |_: &str| None;
        let (rest, d) = take_drain_delay(
            args(&["shoal", "--drain-delay-ms", "250", "--cql-port", "1"]),
            &none,
        )
        .unwrap();
        assert_eq!(rest, args(&["shoal", "--cql-port", "1"]));
        assert_eq!(d, Some(Duration::from_millis(250)));
        let (_, d) = take_drain_delay(args(&["shoal", "--drain-delay-ms=0"]), &none).unwrap();
        assert_eq!(d, Some(Duration::ZERO));
        let env = |k: &str| (k == "SHOAL_DRAIN_DELAY_MS").then(|| "100".to_string());
        let (_, d) = take_drain_delay(args(&["shoal"]), &env).unwrap();
        assert_eq!(d, Some(Duration::from_millis(100)));
        let (_, d) = take_drain_delay(args(&["shoal", "--drain-delay-ms", "7"]), &env).unwrap();
        assert_eq!(d, Some(Duration::from_millis(7)));
        assert!(take_drain_delay(args(&["shoal", "--drain-delay-ms"]), &none).is_err());
        assert!(take_drain_delay(args(&["shoal", "--drain-delay-ms=x"]), &none).is_err());
    }
}
