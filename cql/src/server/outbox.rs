//! A connection's outgoing bytes. Whichever task has responses writes them to the socket
//! itself (no hand-off to a writer task, so no wake-up per response); tasks that find a
//! write under way append to the queue, and the writing task sends that too before it
//! lets go (flat combining). Only when the socket's buffer is full does a writer task wait
//! for it to drain. Readers stop reading while the queue is over [`HIGH_WATER`]: a client
//! that does not read its responses gets backpressure, not an unbounded queue.

use std::io::ErrorKind;
use std::sync::Mutex;

use bytes::BytesMut;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

/// Queued bytes above which the connection stops reading requests.
pub const HIGH_WATER: usize = 4 << 20;

pub struct Outbox {
    socket: OwnedWriteHalf,
    state: Mutex<State>,
    /// Wakes the writer task: the socket was full, or the connection is closing.
    blocked: Notify,
    /// Wakes readers waiting for the queue to fall under [`HIGH_WATER`].
    drained: Notify,
}

#[derive(Default)]
struct State {
    queued: BytesMut,
    /// Some task (a request's or the writer) owns the socket's write side now.
    writing: bool,
    /// ... and it is the writer task's, because the socket was full.
    handed: bool,
    /// The write side failed: drop everything from now on.
    failed: bool,
    /// No more bytes will come; the writer task ends once the queue is empty.
    closed: bool,
}

impl Outbox {
    pub fn new(socket: OwnedWriteHalf) -> Outbox {
        Outbox {
            socket,
            state: Mutex::new(State::default()),
            blocked: Notify::new(),
            drained: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `bytes` (emptying it) after everything pushed before, without waiting.
    pub fn push(&self, bytes: &mut BytesMut) {
        if bytes.is_empty() {
            return;
        }
        let mut st = self.lock();
        if st.failed {
            bytes.clear();
            return;
        }
        if st.queued.is_empty() {
            std::mem::swap(&mut st.queued, bytes);
        } else {
            st.queued.extend_from_slice(bytes);
            bytes.clear();
        }
        if st.writing {
            return;
        }
        st.writing = true;
        drop(st);
        if !self.write_queued() {
            self.blocked.notify_one();
        }
    }

    /// Writes the queue until it is empty (true: `writing` released) or the socket is
    /// full (false: the caller still owns `writing` and must hand it to the writer task).
    fn write_queued(&self) -> bool {
        let mut st = self.lock();
        loop {
            if st.queued.is_empty() || st.failed {
                st.writing = false;
                st.handed = false;
                let closing = st.closed;
                drop(st);
                if closing {
                    self.blocked.notify_one();
                }
                self.drained.notify_waiters();
                return true;
            }
            let mut data = std::mem::take(&mut st.queued);
            drop(st);
            let mut written = 0;
            let mut failed = false;
            while written < data.len() {
                match self.socket.try_write(&data[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            st = self.lock();
            if failed {
                st.failed = true;
                st.queued.clear();
                continue;
            }
            if written < data.len() {
                // The rest goes first, before anything queued meanwhile.
                let _ = data.split_to(written);
                data.extend_from_slice(&st.queued);
                st.queued = data;
                st.handed = true;
                return false;
            }
            if st.queued.is_empty() {
                // Keep the allocation for the next burst.
                data.clear();
                st.queued = data;
            }
        }
    }

    /// The writer task: waits for the socket whenever a push found it full, and finishes
    /// the queue once the connection closes.
    pub async fn run_writer(&self) {
        loop {
            self.blocked.notified().await;
            loop {
                {
                    let st = self.lock();
                    if !st.handed {
                        if st.closed && !st.writing {
                            return;
                        }
                        // A request's task is writing: it hands over or, when done while
                        // closing, wakes us again.
                        break;
                    }
                }
                if self.socket.writable().await.is_err() {
                    let mut st = self.lock();
                    st.failed = true;
                    st.queued.clear();
                    st.writing = false;
                    st.handed = false;
                    drop(st);
                    self.drained.notify_waiters();
                    return;
                }
                if self.write_queued() {
                    let st = self.lock();
                    if st.closed && !st.writing {
                        return;
                    }
                    break;
                }
            }
        }
    }

    /// No more pushes: the writer task ends once the queue is written.
    pub fn close(&self) {
        self.lock().closed = true;
        self.blocked.notify_one();
    }

    /// Waits while more than [`HIGH_WATER`] bytes are queued.
    pub async fn wait_for_room(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let st = self.lock();
                if st.failed || st.queued.len() < HIGH_WATER {
                    return;
                }
            }
            drained.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// An outbox on one end of a loopback connection, its writer task, and the other end.
    async fn pair() -> (Arc<Outbox>, TcpStream, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (_read, write) = accepted.expect("accept").0.into_split();
        let out = Arc::new(Outbox::new(write));
        let writer = tokio::spawn({
            let out = out.clone();
            async move { out.run_writer().await }
        });
        (out, client.expect("connect"), writer)
    }

    /// Message `i` of task `t`: a header, then a body long enough that pushes fill the
    /// socket and hand over to the writer task.
    fn message(t: u8, i: u32) -> Vec<u8> {
        let len = 1 + (i as usize * 7919) % 20_000;
        let mut m = vec![t];
        m.extend_from_slice(&i.to_le_bytes());
        m.extend_from_slice(&(len as u32).to_le_bytes());
        m.extend(std::iter::repeat_n(t ^ (i as u8), len));
        m
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_pushes_arrive_whole_and_in_order() {
        let (out, mut client, writer) = pair().await;
        const PER_TASK: u32 = 400;
        let pushers: Vec<_> = (0..4u8)
            .map(|t| {
                let out = out.clone();
                tokio::spawn(async move {
                    for i in 0..PER_TASK {
                        let mut b = BytesMut::from(&message(t, i)[..]);
                        out.push(&mut b);
                        assert!(b.is_empty(), "push takes the bytes");
                        if i % 50 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        // Read while they push, slowly at first so the socket fills up.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let reader = tokio::spawn(async move {
            let mut next = [0u32; 4];
            let mut header = [0u8; 9];
            while next.iter().any(|n| *n < PER_TASK) {
                client.read_exact(&mut header).await.expect("header");
                let t = header[0];
                let i = u32::from_le_bytes(header[1..5].try_into().unwrap());
                let len = u32::from_le_bytes(header[5..9].try_into().unwrap()) as usize;
                let mut body = vec![0u8; len];
                client.read_exact(&mut body).await.expect("body");
                assert_eq!(i, next[t as usize], "task {t}'s messages in push order");
                assert_eq!(message(t, i)[9..], body[..], "message {t}/{i} intact");
                next[t as usize] += 1;
            }
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.expect("eof");
            assert!(rest.is_empty(), "nothing after the last message");
        });
        for p in pushers {
            p.await.expect("pusher");
        }
        out.close();
        writer.await.expect("writer ends after close");
        drop(out); // the write half's drop sends FIN
        tokio::time::timeout(std::time::Duration::from_secs(20), reader)
            .await
            .expect("reader finished")
            .expect("reader");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_does_not_read_gets_backpressure() {
        let (out, mut client, writer) = pair().await;
        let chunk = vec![7u8; 64 * 1024];
        let mut pushed = 0usize;
        // The socket buffers take some; the rest queues until the high-water mark.
        while pushed < 64 * HIGH_WATER {
            let mut b = BytesMut::from(&chunk[..]);
            out.push(&mut b);
            pushed += chunk.len();
            if out.lock().queued.len() >= HIGH_WATER {
                break;
            }
        }
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(200), out.wait_for_room())
                .await
                .is_err(),
            "over the high-water mark a reader waits"
        );
        let drain = tokio::spawn(async move {
            let mut got = 0usize;
            let mut buf = vec![0u8; 1 << 20];
            while got < pushed {
                let n = client.read(&mut buf).await.expect("read");
                assert!(n > 0, "connection open");
                got += n;
            }
            got
        });
        tokio::time::timeout(std::time::Duration::from_secs(20), out.wait_for_room())
            .await
            .expect("room once the client reads");
        assert_eq!(drain.await.expect("drain"), pushed);
        out.close();
        writer.await.expect("writer");
    }
}
