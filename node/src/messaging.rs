//! Internode messaging: framed messages over TCP on `storage_port`
//! (`docs/formats/internode.md`).
//!
//! Each node keeps one outbound connection per peer for its own requests; the peer answers
//! on that same connection. Every connection starts with a HANDSHAKE frame naming the
//! connecting node's internode address, so the receiver knows who is talking even though
//! the TCP source port is ephemeral. Requests carry a per-node unique id; responses echo it.
//!
//! Backpressure: each peer has a bounded queue. One-way messages (gossip) are dropped and
//! counted when it is full; requests wait for room up to their timeout. Requests never
//! outlive their timeout: the caller gets `Timeout` and a late response is discarded.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use shoal_gossip::internode::{self, Frame, MessageType, flags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

/// Why a message could not be delivered or answered.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MessagingError {
    /// No response within the timeout.
    #[error("no response from {0} within the timeout")]
    Timeout(SocketAddr),
    /// The peer's queue is full (one-way messages are dropped, not queued).
    #[error("queue to {0} is full")]
    Overloaded(SocketAddr),
    /// The connection broke before the response arrived.
    #[error("connection to {0} lost")]
    ConnectionLost(SocketAddr),
    /// The peer answered with a failure.
    #[error("{0} failed the request: {1}")]
    Remote(SocketAddr, String),
    /// Messaging is shutting down.
    #[error("messaging service stopped")]
    Stopped,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct MessagingStats {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub timeouts: AtomicU64,
    pub connect_failures: AtomicU64,
}

/// The future a handler returns: the response frame for a request, nothing for one-way.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Option<Frame>> + Send>>;

/// Serves inbound frames. `from` is the sender's internode address (from its handshake).
pub trait InboundHandler: Send + Sync + 'static {
    fn handle(&self, from: SocketAddr, frame: Frame) -> HandlerFuture;
}

/// Settings.
#[derive(Clone, Debug)]
pub struct MessagingConfig {
    /// The address peers reach this node at (broadcast address + storage port).
    pub advertised: SocketAddr,
    /// Where to listen (listen address + storage port).
    pub bind: SocketAddr,
    pub connect_timeout: Duration,
    /// Frames queued per peer before backpressure applies.
    pub queue_len: usize,
    pub max_payload: usize,
}

impl MessagingConfig {
    pub fn new(advertised: SocketAddr, bind: SocketAddr) -> Self {
        MessagingConfig {
            advertised,
            bind,
            connect_timeout: Duration::from_secs(2),
            queue_len: 4096,
            max_payload: internode::DEFAULT_MAX_PAYLOAD,
        }
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Frame>>>>;

struct Outbound {
    tx: mpsc::Sender<Frame>,
    pending: Pending,
}

struct Inner {
    config: MessagingConfig,
    local: SocketAddr,
    peers: Mutex<HashMap<SocketAddr, Arc<Outbound>>>,
    next_id: AtomicU64,
    handler: Arc<dyn InboundHandler>,
    stats: MessagingStats,
    stop: watch::Receiver<bool>,
}

/// The messaging service. Cheap to clone.
#[derive(Clone)]
pub struct Messaging {
    inner: Arc<Inner>,
}

impl Messaging {
    /// Binds the internode port and starts accepting. Stops when `stop` turns true.
    pub async fn start(
        config: MessagingConfig,
        handler: Arc<dyn InboundHandler>,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<Messaging> {
        let listener = TcpListener::bind(config.bind).await?;
        let local = listener.local_addr()?;
        info!(%local, advertised = %config.advertised, "internode messaging listening");
        let inner = Arc::new(Inner {
            config,
            local,
            peers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            handler,
            stats: MessagingStats::default(),
            stop: stop.clone(),
        });
        tokio::spawn(accept_loop(listener, inner.clone()));
        Ok(Messaging { inner })
    }

    /// The bound listen address (useful when binding port 0 in tests).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    pub fn stats(&self) -> &MessagingStats {
        &self.inner.stats
    }

    /// Waits until every outbound queue is empty (handed to its socket) or `timeout` passes;
    /// true if they all emptied. Used after the shutdown announcement, so the process does
    /// not exit with it still queued.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let idle = {
                let peers = self.inner.peers.lock().expect("peers lock");
                peers
                    .values()
                    .all(|o| o.tx.is_closed() || o.tx.capacity() == o.tx.max_capacity())
            };
            if idle {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn outbound(&self, to: SocketAddr) -> Arc<Outbound> {
        let mut peers = self.inner.peers.lock().expect("peers lock");
        if let Some(o) = peers.get(&to)
            && !o.tx.is_closed()
        {
            return o.clone();
        }
        let (tx, rx) = mpsc::channel(self.inner.config.queue_len);
        let out = Arc::new(Outbound {
            tx,
            pending: Arc::new(Mutex::new(HashMap::new())),
        });
        tokio::spawn(outbound_loop(
            self.inner.clone(),
            to,
            rx,
            out.pending.clone(),
        ));
        peers.insert(to, out.clone());
        out
    }

    /// Sends a message that expects no answer. Dropped (and counted) if the peer's queue is
    /// full: gossip tolerates loss, a stuck peer must not grow memory.
    pub fn send_one_way(
        &self,
        to: SocketAddr,
        msg_type: MessageType,
        payload: Vec<u8>,
    ) -> Result<(), MessagingError> {
        let frame = Frame {
            msg_type,
            flags: flags::ONE_WAY,
            request_id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            payload,
        };
        match self.outbound(to).tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.inner.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Err(MessagingError::Overloaded(to))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(MessagingError::Stopped),
        }
    }

    /// Sends a request and waits for its response, at most `timeout` in all.
    pub async fn request(
        &self,
        to: SocketAddr,
        msg_type: MessageType,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Frame, MessagingError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let out = self.outbound(to);
        let (tx, rx) = oneshot::channel();
        out.pending.lock().expect("pending lock").insert(id, tx);
        let frame = Frame {
            msg_type,
            flags: 0,
            request_id: id,
            payload,
        };
        let result = tokio::time::timeout(timeout, async {
            out.tx
                .send(frame)
                .await
                .map_err(|_| MessagingError::Stopped)?;
            rx.await.map_err(|_| MessagingError::ConnectionLost(to))
        })
        .await;
        match result {
            Ok(Ok(frame)) if frame.flags & flags::FAILURE != 0 => Err(MessagingError::Remote(
                to,
                String::from_utf8_lossy(&frame.payload).into_owned(),
            )),
            Ok(Ok(frame)) => Ok(frame),
            Ok(Err(e)) => {
                out.pending.lock().expect("pending lock").remove(&id);
                Err(e)
            }
            Err(_) => {
                out.pending.lock().expect("pending lock").remove(&id);
                self.inner.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(MessagingError::Timeout(to))
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    let mut stop = inner.stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    tokio::spawn(inbound_conn(socket, peer, inner.clone()));
                }
                Err(e) => {
                    warn!(error = %e, "internode accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => {
                if *stop.borrow() {
                    return;
                }
            }
        }
    }
}

/// Reads whole frames from `reader` into `buf`; `Ok(None)` on a clean close.
async fn read_frame(
    reader: &mut (impl AsyncReadExt + Unpin),
    buf: &mut BytesMut,
    max_payload: usize,
) -> Result<Option<Frame>, String> {
    loop {
        match internode::decode_frame(buf, max_payload) {
            Ok(Some((frame, used))) => {
                let _ = buf.split_to(used);
                return Ok(Some(frame));
            }
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        match reader.read_buf(buf).await {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

async fn inbound_conn(socket: TcpStream, tcp_peer: SocketAddr, inner: Arc<Inner>) {
    let (mut reader, mut writer) = socket.into_split();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let from = match read_frame(&mut reader, &mut buf, inner.config.max_payload).await {
        Ok(Some(f)) if f.msg_type == MessageType::Handshake => {
            match std::str::from_utf8(&f.payload)
                .ok()
                .and_then(|s| s.parse::<SocketAddr>().ok())
            {
                Some(a) => a,
                None => {
                    warn!(%tcp_peer, "internode handshake with a bad address; closing");
                    return;
                }
            }
        }
        Ok(_) => {
            warn!(%tcp_peer, "internode connection did not start with a handshake; closing");
            return;
        }
        Err(e) => {
            debug!(%tcp_peer, error = %e, "internode handshake failed");
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel::<Frame>(inner.config.queue_len);
    let write_task = tokio::spawn(async move {
        let mut out = Vec::with_capacity(64 * 1024);
        while let Some(f) = rx.recv().await {
            out.clear();
            f.encode_into(&mut out);
            while out.len() < 256 * 1024 {
                match rx.try_recv() {
                    Ok(more) => more.encode_into(&mut out),
                    Err(_) => break,
                }
            }
            if writer.write_all(&out).await.is_err() {
                break;
            }
        }
    });
    let mut stop = inner.stop.clone();
    loop {
        let read = tokio::select! {
            r = read_frame(&mut reader, &mut buf, inner.config.max_payload) => r,
            _ = stop.changed() => break,
        };
        let frame = match read {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                warn!(%from, error = %e, "closing internode connection after a bad frame");
                break;
            }
        };
        inner.stats.received.fetch_add(1, Ordering::Relaxed);
        let one_way = frame.flags & flags::ONE_WAY != 0;
        let id = frame.request_id;
        let handler = inner.handler.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let response = handler.handle(from, frame).await;
            if one_way {
                return;
            }
            let response = response.unwrap_or_else(|| Frame {
                msg_type: MessageType::Unknown(0xff),
                flags: flags::FAILURE,
                request_id: id,
                payload: b"request not understood".to_vec(),
            });
            let _ = tx
                .send(Frame {
                    request_id: id,
                    ..response
                })
                .await;
        });
    }
    drop(tx);
    let _ = write_task.await;
}

async fn outbound_loop(
    inner: Arc<Inner>,
    to: SocketAddr,
    mut rx: mpsc::Receiver<Frame>,
    pending: Pending,
) {
    let mut backoff = Duration::from_millis(100);
    let stop = inner.stop.clone();
    loop {
        if *stop.borrow() {
            return;
        }
        // Connect lazily: only when there is something to send.
        let Some(first) = rx.recv().await else { return };
        let socket = match tokio::time::timeout(
            inner.config.connect_timeout,
            TcpStream::connect(to),
        )
        .await
        {
            Ok(Ok(s)) => s,
            _ => {
                inner.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                // The message that triggered the attempt is lost; requests see ConnectionLost.
                pending
                    .lock()
                    .expect("pending lock")
                    .remove(&first.request_id);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let _ = socket.set_nodelay(true);
        let (mut reader, mut writer) = socket.into_split();
        let hello = Frame {
            msg_type: MessageType::Handshake,
            flags: flags::ONE_WAY,
            request_id: 0,
            payload: inner.config.advertised.to_string().into_bytes(),
        };
        let mut out = Vec::with_capacity(64 * 1024);
        hello.encode_into(&mut out);
        first.encode_into(&mut out);
        if writer.write_all(&out).await.is_err() {
            fail_all(&pending);
            continue;
        }
        inner.stats.sent.fetch_add(1, Ordering::Relaxed);
        let reader_pending = pending.clone();
        let max_payload = inner.config.max_payload;
        let mut read_task = tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(64 * 1024);
            while let Ok(Some(frame)) = read_frame(&mut reader, &mut buf, max_payload).await {
                if let Some(tx) = reader_pending
                    .lock()
                    .expect("pending lock")
                    .remove(&frame.request_id)
                {
                    let _ = tx.send(frame);
                }
            }
        });
        loop {
            tokio::select! {
                next = rx.recv() => {
                    let Some(frame) = next else {
                        read_task.abort();
                        return;
                    };
                    out.clear();
                    frame.encode_into(&mut out);
                    let mut n = 1;
                    while out.len() < 256 * 1024 {
                        match rx.try_recv() {
                            Ok(more) => {
                                more.encode_into(&mut out);
                                n += 1;
                            }
                            Err(_) => break,
                        }
                    }
                    if writer.write_all(&out).await.is_err() {
                        break;
                    }
                    inner.stats.sent.fetch_add(n, Ordering::Relaxed);
                }
                _ = &mut read_task => break,
            }
        }
        read_task.abort();
        fail_all(&pending);
        debug!(%to, "internode connection lost; reconnecting on the next message");
    }
}

/// Wakes every waiter of a broken connection with `ConnectionLost` (their senders drop).
fn fail_all(pending: &Pending) {
    pending.lock().expect("pending lock").clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl InboundHandler for Echo {
        fn handle(&self, from: SocketAddr, frame: Frame) -> HandlerFuture {
            Box::pin(async move {
                if frame.payload == b"slow" {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                let mut payload = from.to_string().into_bytes();
                payload.push(b'|');
                payload.extend_from_slice(&frame.payload);
                Some(Frame {
                    msg_type: MessageType::MutationResponse,
                    flags: 0,
                    request_id: frame.request_id,
                    payload,
                })
            })
        }
    }

    struct Collect(mpsc::UnboundedSender<(SocketAddr, Vec<u8>)>);

    impl InboundHandler for Collect {
        fn handle(&self, from: SocketAddr, frame: Frame) -> HandlerFuture {
            let _ = self.0.send((from, frame.payload));
            Box::pin(async { None })
        }
    }

    async fn node(handler: Arc<dyn InboundHandler>, stop: watch::Receiver<bool>) -> Messaging {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        // Bind first to learn the port, then advertise it.
        let probe = TcpListener::bind(any).await.unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        Messaging::start(MessagingConfig::new(addr, addr), handler, stop)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn request_response_and_handshake_address() {
        let (_stop_tx, stop) = watch::channel(false);
        let a = node(Arc::new(Echo), stop.clone()).await;
        let b = node(Arc::new(Echo), stop.clone()).await;
        let r = a
            .request(
                b.local_addr(),
                MessageType::MutationRequest,
                b"hi".to_vec(),
                Duration::from_secs(2),
            )
            .await
            .unwrap();
        assert_eq!(r.payload, format!("{}|hi", a.local_addr()).into_bytes());
        // Many in flight at once on one connection.
        let mut tasks = Vec::new();
        for i in 0..200 {
            let a = a.clone();
            let to = b.local_addr();
            tasks.push(tokio::spawn(async move {
                let r = a
                    .request(
                        to,
                        MessageType::ReadRequest,
                        format!("{i}").into_bytes(),
                        Duration::from_secs(5),
                    )
                    .await
                    .unwrap();
                assert!(r.payload.ends_with(format!("|{i}").as_bytes()));
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }

    #[tokio::test]
    async fn timeouts_and_unreachable_peers() {
        let (_stop_tx, stop) = watch::channel(false);
        let a = node(Arc::new(Echo), stop.clone()).await;
        let b = node(Arc::new(Echo), stop.clone()).await;
        let e = a
            .request(
                b.local_addr(),
                MessageType::MutationRequest,
                b"slow".to_vec(),
                Duration::from_millis(100),
            )
            .await
            .unwrap_err();
        assert_eq!(e, MessagingError::Timeout(b.local_addr()));
        // Nobody listens on this port.
        let dead: SocketAddr = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let e = a
            .request(
                dead,
                MessageType::MutationRequest,
                b"x".to_vec(),
                Duration::from_millis(500),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                MessagingError::ConnectionLost(_) | MessagingError::Timeout(_)
            ),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn one_way_messages_arrive_with_the_sender_address() {
        let (_stop_tx, stop) = watch::channel(false);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let a = node(Arc::new(Echo), stop.clone()).await;
        let b = node(Arc::new(Collect(tx)), stop.clone()).await;
        for i in 0..10u8 {
            a.send_one_way(b.local_addr(), MessageType::GossipSyn, vec![i])
                .unwrap();
        }
        for i in 0..10u8 {
            let (from, payload) = tokio::time::timeout(Duration::from_secs(2), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(from, a.local_addr());
            assert_eq!(payload, vec![i]);
        }
    }

    #[tokio::test]
    async fn flush_waits_for_queues_to_drain() {
        let (_stop_tx, stop) = watch::channel(false);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let a = node(Arc::new(Echo), stop.clone()).await;
        let b = node(Arc::new(Collect(tx)), stop.clone()).await;
        for i in 0..100u8 {
            a.send_one_way(b.local_addr(), MessageType::GossipAck2, vec![i])
                .unwrap();
        }
        assert!(a.flush(Duration::from_secs(2)).await);
        for _ in 0..100 {
            tokio::time::timeout(Duration::from_secs(2), rx.recv())
                .await
                .unwrap()
                .unwrap();
        }
        // Nobody listens there: each connect attempt drops one frame and backs off, so the
        // queue cannot drain within the timeout.
        let dead: SocketAddr = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        for i in 0..10u8 {
            a.send_one_way(dead, MessageType::GossipAck2, vec![i])
                .unwrap();
        }
        assert!(!a.flush(Duration::from_millis(150)).await);
    }

    #[tokio::test]
    async fn reconnects_after_the_peer_restarts() {
        let (stop_tx, stop) = watch::channel(false);
        let a = node(Arc::new(Echo), stop.clone()).await;
        let (b_stop_tx, b_stop) = watch::channel(false);
        let b = node(Arc::new(Echo), b_stop).await;
        let addr = b.local_addr();
        a.request(
            addr,
            MessageType::ReadRequest,
            b"1".to_vec(),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        // Stop b's listener; restart a new node on the same address.
        b_stop_tx.send(true).unwrap();
        drop(b);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let b2 = Messaging::start(
            MessagingConfig::new(addr, addr),
            Arc::new(Echo),
            stop.clone(),
        )
        .await
        .unwrap();
        let mut ok = false;
        for _ in 0..20 {
            if a.request(
                b2.local_addr(),
                MessageType::ReadRequest,
                b"2".to_vec(),
                Duration::from_millis(500),
            )
            .await
            .is_ok()
            {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ok, "a reconnects to the restarted peer");
        stop_tx.send(true).unwrap();
    }
}
