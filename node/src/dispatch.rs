//! Inbound internode dispatch: one [`InboundHandler`] for [`Messaging`](crate::messaging)
//! that routes each frame by its [`MessageType`] to the handler registered for that type.
//!
//! Handlers can be registered at any time, also after messaging has started (gossip first,
//! then the services that need the executor). A request of a type nobody registered is
//! answered with a FAILURE frame naming the type; a one-way frame of such a type is dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};

use shoal_gossip::internode::{Frame, MessageType, flags};
use tracing::debug;

use crate::messaging::{HandlerFuture, InboundHandler};

/// A handler for one message type: gets the sender's internode address and the frame,
/// returns the response frame for a request (its request id is set by messaging), `None`
/// for one-way messages.
pub type Handler = Arc<dyn Fn(SocketAddr, Frame) -> HandlerFuture + Send + Sync>;

/// Called with the type id of every inbound frame before it is routed (the
/// `/metrics` internode counters).
pub type Observer = Arc<dyn Fn(u8) + Send + Sync>;

/// Routes inbound frames by message type.
#[derive(Default)]
pub struct Dispatcher {
    handlers: RwLock<HashMap<MessageType, Handler>>,
    observer: OnceLock<Observer>,
}

impl Dispatcher {
    pub fn new() -> Arc<Dispatcher> {
        Arc::new(Dispatcher::default())
    }

    /// Registers (or replaces) the handler of `msg_type`.
    pub fn register(&self, msg_type: MessageType, handler: Handler) {
        self.handlers
            .write()
            .expect("dispatch lock")
            .insert(msg_type, handler);
    }

    /// Registers one handler for several types (gossip's SYN/ACK/ACK2/ECHO/ECHO_REPLY).
    pub fn register_all(&self, types: &[MessageType], handler: Handler) {
        let mut map = self.handlers.write().expect("dispatch lock");
        for t in types {
            map.insert(*t, handler.clone());
        }
    }

    /// Sets the observer of inbound frames (once; later calls are ignored).
    pub fn set_observer(&self, observer: Observer) {
        let _ = self.observer.set(observer);
    }

    pub fn unregister(&self, msg_type: MessageType) -> Option<Handler> {
        self.handlers
            .write()
            .expect("dispatch lock")
            .remove(&msg_type)
    }
}

/// The FAILURE response to a request of type `msg_type` that nobody handles.
pub fn unsupported(msg_type: MessageType, request_id: u64) -> Frame {
    Frame {
        msg_type,
        flags: flags::FAILURE,
        request_id,
        payload: format!("message type 0x{:02x} is not supported", msg_type.id()).into_bytes(),
    }
}

impl InboundHandler for Dispatcher {
    fn handle(&self, from: SocketAddr, frame: Frame) -> HandlerFuture {
        if let Some(observe) = self.observer.get() {
            observe(frame.msg_type.id());
        }
        let handler = self
            .handlers
            .read()
            .expect("dispatch lock")
            .get(&frame.msg_type)
            .cloned();
        match handler {
            Some(h) => h(from, frame),
            None => {
                debug!(%from, msg_type = ?frame.msg_type, "no handler for an internode message");
                let one_way = frame.flags & flags::ONE_WAY != 0;
                let response = (!one_way).then(|| unsupported(frame.msg_type, frame.request_id));
                Box::pin(async move { response })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::{mpsc, watch};

    use super::*;
    use crate::messaging::{Messaging, MessagingConfig, MessagingError};

    async fn start(d: Arc<Dispatcher>, stop: watch::Receiver<bool>) -> Messaging {
        let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        Messaging::start(MessagingConfig::new(addr, addr), d, stop)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn routes_by_type_and_fails_unknown_requests() {
        let (_stop_tx, stop) = watch::channel(false);
        let a = start(Dispatcher::new(), stop.clone()).await;
        let d = Dispatcher::new();
        let b = start(d.clone(), stop.clone()).await;
        let to = b.local_addr();

        // Nothing registered yet: a request fails with the remote's message.
        let e = a
            .request(
                to,
                MessageType::ReadRequest,
                b"q".to_vec(),
                Duration::from_secs(2),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&e, MessagingError::Remote(_, m) if m.contains("0x12")),
            "{e:?}"
        );

        // Registered after messaging started.
        d.register(
            MessageType::ReadRequest,
            Arc::new(|from: SocketAddr, f: Frame| -> HandlerFuture {
                Box::pin(async move {
                    let mut payload = f.payload.clone();
                    payload.extend_from_slice(from.to_string().as_bytes());
                    Some(Frame {
                        msg_type: MessageType::ReadResponse,
                        flags: 0,
                        request_id: f.request_id,
                        payload,
                    })
                })
            }),
        );
        let (tx, mut rx) = mpsc::unbounded_channel();
        d.register_all(
            &[MessageType::GossipSyn, MessageType::GossipAck],
            Arc::new(move |_from: SocketAddr, f: Frame| -> HandlerFuture {
                let _ = tx.send(f.msg_type);
                Box::pin(async { None })
            }),
        );
        let r = a
            .request(
                to,
                MessageType::ReadRequest,
                b"q".to_vec(),
                Duration::from_secs(2),
            )
            .await
            .unwrap();
        assert_eq!(r.msg_type, MessageType::ReadResponse);
        assert_eq!(r.payload, format!("q{}", a.local_addr()).into_bytes());
        // Another type is still unsupported.
        assert!(
            a.request(
                to,
                MessageType::MutationRequest,
                vec![],
                Duration::from_secs(2)
            )
            .await
            .is_err()
        );
        // One-way frames reach their handler; an unhandled one-way type is dropped quietly.
        a.send_one_way(to, MessageType::SchemaPush, vec![]).unwrap();
        a.send_one_way(to, MessageType::GossipAck, vec![]).unwrap();
        a.send_one_way(to, MessageType::GossipSyn, vec![]).unwrap();
        let mut got = Vec::new();
        for _ in 0..2 {
            got.push(
                tokio::time::timeout(Duration::from_secs(2), rx.recv())
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        got.sort_by_key(|t| t.id());
        assert_eq!(got, [MessageType::GossipSyn, MessageType::GossipAck]);

        assert!(d.unregister(MessageType::ReadRequest).is_some());
        assert!(
            a.request(to, MessageType::ReadRequest, vec![], Duration::from_secs(2))
                .await
                .is_err()
        );
    }
}
