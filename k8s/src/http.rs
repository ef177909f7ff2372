//! Just enough HTTP/1.1 for probes, Prometheus and `curl`: one request per connection, no
//! bodies read beyond the head, `Connection: close` on every answer.
//!
//! Hand-written instead of hyper: the admin port serves five fixed GET/POST paths to kubelet
//! and scrapers, and a 150-line parser with a hard size limit and a read timeout is easier to
//! audit (and to keep answering under load) than an HTTP stack plus its dependency tree.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::debug;

/// Largest request head accepted; probes and scrapers send a few hundred bytes.
pub const MAX_HEAD: usize = 8 * 1024;
/// A client that has not sent its head by then is dropped (slowloris, half-open sockets).
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Concurrent admin connections; more wait in the accept queue instead of growing memory.
pub const MAX_CONNECTIONS: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Malformed request line or header: answer 400.
    Bad,
    /// The head exceeds [`MAX_HEAD`]: answer 431.
    TooLarge,
}

/// Parses a request head from the bytes received so far. `Ok(None)`: not complete yet.
pub fn parse_request(buf: &[u8]) -> Result<Option<Request>, ParseError> {
    let Some(end) = find_head_end(buf) else {
        return if buf.len() >= MAX_HEAD {
            Err(ParseError::TooLarge)
        } else {
            Ok(None)
        };
    };
    if end > MAX_HEAD {
        return Err(ParseError::TooLarge);
    }
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| ParseError::Bad)?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().ok_or(ParseError::Bad)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Bad);
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ParseError::Bad);
    }
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") || !target.starts_with('/') {
        return Err(ParseError::Bad);
    }
    for line in lines.filter(|l| !l.is_empty()) {
        match line.split_once(':') {
            Some((name, _)) if !name.is_empty() && !name.contains([' ', '\t']) => {}
            _ => return Err(ParseError::Bad),
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (target, None),
    };
    Ok(Some(Request {
        method: method.to_string(),
        path: path.to_string(),
        query,
    }))
}

/// Index just past the blank line ending the head (`\r\n\r\n`, or bare `\n\n`).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    pub fn json(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: body.into(),
        }
    }

    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "",
        };
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

pub type BoxResponse = Pin<Box<dyn Future<Output = Response> + Send>>;
pub type Handler = Arc<dyn Fn(Request) -> BoxResponse + Send + Sync>;

/// Serves `handler` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, handler: Handler) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((socket, _)) => {
                let handler = handler.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = connection(socket, handler).await {
                        debug!(error = %e, "admin connection failed");
                    }
                });
            }
            Err(e) => {
                debug!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn connection(mut socket: TcpStream, handler: Handler) -> std::io::Result<()> {
    let _ = socket.set_nodelay(true);
    let mut buf = Vec::with_capacity(512);
    let parsed = tokio::time::timeout(READ_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        loop {
            match parse_request(&buf) {
                Ok(Some(r)) => return Ok(r),
                Err(e) => return Err(e),
                Ok(None) => {}
            }
            let n = socket.read(&mut chunk).await.map_err(|_| ParseError::Bad)?;
            if n == 0 {
                return Err(ParseError::Bad);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    let (response, head_only) = match parsed {
        Err(_) => (
            Response::text(408, "request head not received in time\n"),
            false,
        ),
        Ok(Err(ParseError::TooLarge)) => (Response::text(431, "request head too large\n"), false),
        Ok(Err(ParseError::Bad)) => (Response::text(400, "bad request\n"), false),
        Ok(Ok(req)) => {
            let head_only = req.method == "HEAD";
            (handler(req).await, head_only)
        }
    };
    socket.write_all(&response.to_bytes(head_only)).await?;
    socket.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_probe_requests() {
        let r = parse_request(
            b"GET /readyz HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nUser-Agent: kube-probe/1.32\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/readyz");
        assert_eq!(r.query, None);
        let r = parse_request(b"POST /drain?wait=1 HTTP/1.0\n\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_deref()),
            ("POST", "/drain", Some("wait=1"))
        );
    }

    #[test]
    fn incomplete_heads_ask_for_more() {
        assert_eq!(parse_request(b""), Ok(None));
        assert_eq!(
            parse_request(b"GET /livez HTTP/1.1\r\nHost: x\r\n"),
            Ok(None)
        );
    }

    #[test]
    fn bad_requests_are_rejected() {
        for bad in [
            &b"\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET /x\r\n\r\n",
            b"GET /x HTTP/2.0\r\n\r\n",
            b"GET x HTTP/1.1\r\n\r\n",
            b"get /x HTTP/1.1\r\n\r\n",
            b"GET /x HTTP/1.1 extra\r\n\r\n",
            b"GET /x HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                parse_request(bad),
                Err(ParseError::Bad),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let huge = vec![b'a'; MAX_HEAD + 10];
        assert_eq!(parse_request(&huge), Err(ParseError::TooLarge));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every prefix of mangled heads, every byte value.
        let seeds: [&[u8]; 3] = [
            b"GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /drain HTTP/1.0\n\n",
            b"\r\n\n\r: :\r\n\r\n",
        ];
        let mut x: u32 = 12345;
        for seed in seeds {
            for i in 0..seed.len() {
                let _ = parse_request(&seed[..i]);
                for _ in 0..64 {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    let mut m = seed.to_vec();
                    m[i] = (x >> 16) as u8;
                    let _ = parse_request(&m);
                }
            }
        }
    }

    #[test]
    fn responses_carry_length_and_close() {
        let bytes = Response::text(503, "no\n").to_bytes(false);
        let s = String::from_utf8(bytes).unwrap();
        assert!(s.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(s.contains("Content-Length: 3\r\n") && s.contains("Connection: close\r\n"));
        assert!(s.ends_with("\r\n\r\nno\n"));
        let head = String::from_utf8(Response::text(200, "body").to_bytes(true)).unwrap();
        assert!(head.ends_with("\r\n\r\n"));
    }
}
