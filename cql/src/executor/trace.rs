//! Request tracing (frame flag 0x02): a session row and events in `system_traces`, in the
//! layout of Cassandra's `TraceKeyspace`, which drivers read back by the tracing id the
//! response carries.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use uuid::Uuid;

use super::Executor;
use crate::auth::internal::{self, KEYSPACE, quote};
use crate::error::CqlResult;

/// Cassandra keeps query traces for a day (`trace_type_query_ttl`).
const TTL_SECONDS: u32 = 86_400;

struct TraceEvent {
    id: Uuid,
    activity: String,
    elapsed_micros: i64,
    thread: String,
}

/// One traced request.
#[derive(Debug)]
pub struct Trace {
    /// A timeuuid, as Cassandra's session ids.
    pub id: Uuid,
    started: Instant,
    started_at_millis: i64,
    events: Mutex<Vec<TraceEvent>>,
}

impl std::fmt::Debug for TraceEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.activity)
    }
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            id: crate::types::functions::timeuuid_now(),
            started: Instant::now(),
            started_at_millis: super::now_micros() / 1000,
            events: Mutex::new(Vec::new()),
        }
    }
}

impl Trace {
    pub fn event(&self, activity: impl Into<String>) {
        let thread = std::thread::current()
            .name()
            .unwrap_or("Native-Transport-Requests")
            .to_string();
        self.events.lock().expect("trace lock").push(TraceEvent {
            id: crate::types::functions::timeuuid_now(),
            activity: activity.into(),
            elapsed_micros: self.started.elapsed().as_micros() as i64,
            thread,
        });
    }

    /// Writes the session and its events. Called before the response goes out, so a
    /// driver that fetches the trace right away finds it complete.
    pub async fn finish(
        &self,
        ex: &Executor,
        client: IpAddr,
        command: &str,
        request: &str,
        parameters: &[(String, String)],
    ) -> CqlResult<()> {
        let node = ex.node();
        let source = node.broadcast_address;
        let id = self.id;
        let mut writes: Vec<String> = self
            .events
            .lock()
            .expect("trace lock")
            .iter()
            .map(|e| {
                format!(
                    "INSERT INTO {KEYSPACE}.events (session_id, event_id, activity, source, source_port, source_elapsed, thread) \
                     VALUES ({id}, {}, {}, '{source}', {}, {}, {}) USING TTL {TTL_SECONDS}",
                    e.id,
                    quote(&e.activity),
                    node.storage_port,
                    e.elapsed_micros.min(i32::MAX as i64),
                    quote(&e.thread),
                )
            })
            .collect();
        let params: Vec<String> = parameters
            .iter()
            .map(|(k, v)| format!("{}: {}", quote(k), quote(v)))
            .collect();
        writes.push(format!(
            "INSERT INTO {KEYSPACE}.sessions (session_id, client, command, coordinator, coordinator_port, duration, parameters, request, started_at) \
             VALUES ({id}, '{client}', {}, '{source}', {}, {}, {{{}}}, {}, {}) USING TTL {TTL_SECONDS}",
            quote(command),
            node.storage_port,
            self.started.elapsed().as_micros().min(i32::MAX as u128),
            params.join(", "),
            quote(request),
            self.started_at_millis,
        ));
        internal::write(ex, &writes).await
    }
}
