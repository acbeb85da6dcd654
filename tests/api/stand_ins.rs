//! Local stand-ins for what lies outside this machine: a customer's DNS server and web server.
//! They speak the real wire formats (DNS over UDP, HTTP), so the server's real resolver and
//! HTTP client talk to them exactly as they would to the internet.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;

/// An authoritative DNS server for whatever names a test gives it.
#[derive(Clone, Default)]
pub struct DnsServer {
    txt: Arc<Mutex<HashMap<String, Vec<String>>>>,
    a: Arc<Mutex<HashMap<String, Ipv4Addr>>>,
}

impl DnsServer {
    /// Starts answering on a free UDP port of 127.0.0.1; answers the server and its address.
    pub async fn start() -> (Self, SocketAddr) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("binds UDP");
        let address = socket.local_addr().unwrap();
        let server = Self::default();
        let answering = server.clone();
        tokio::spawn(async move {
            let mut buffer = [0u8; 1500];
            while let Ok((len, peer)) = socket.recv_from(&mut buffer).await {
                if let Some(reply) = answering.reply(&buffer[..len]) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        (server, address)
    }

    /// Publishes a TXT record.
    pub fn txt(&self, name: &str, value: &str) {
        self.txt
            .lock()
            .unwrap()
            .entry(name.trim_end_matches('.').to_owned())
            .or_default()
            .push(value.to_owned());
    }

    /// Publishes an A record.
    pub fn a(&self, name: &str, ip: Ipv4Addr) {
        self.a.lock().unwrap().insert(name.to_owned(), ip);
    }

    fn reply(&self, request: &[u8]) -> Option<Vec<u8>> {
        let request = Message::from_vec(request).ok()?;
        let query = request.queries().first()?.clone();
        let name = query.name().to_ascii().trim_end_matches('.').to_lowercase();
        let mut reply = Message::new();
        reply
            .set_id(request.id())
            .set_message_type(MessageType::Response)
            .set_op_code(request.op_code())
            .set_authoritative(true)
            .set_recursion_desired(request.recursion_desired())
            .add_query(query.clone());
        let records: Vec<RData> = match query.query_type() {
            RecordType::TXT => self
                .txt
                .lock()
                .unwrap()
                .get(&name)
                .into_iter()
                .flatten()
                .map(|v| RData::TXT(TXT::new(vec![v.clone()])))
                .collect(),
            RecordType::A => self
                .a
                .lock()
                .unwrap()
                .get(&name)
                .map(|ip| RData::A(A(*ip)))
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        let known = self.txt.lock().unwrap().contains_key(&name)
            || self.a.lock().unwrap().contains_key(&name);
        if !known {
            reply.set_response_code(ResponseCode::NXDomain);
        }
        for rdata in records {
            reply.add_answer(Record::from_rdata(query.name().clone(), 60, rdata));
        }
        reply.to_vec().ok()
    }
}

/// A customer's web server: serves the verification file with whatever body the test sets,
/// and the site's pages (where the embed snippet goes).
#[derive(Clone, Default)]
pub struct WebServer {
    body: Arc<Mutex<Option<String>>>,
    pages: Arc<Mutex<HashMap<String, String>>>,
}

impl WebServer {
    /// Starts serving on `127.0.0.1:port` (0 picks one); answers the server and its port.
    pub async fn start(port: u16) -> (Self, u16) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("binds HTTP");
        let port = listener.local_addr().unwrap().port();
        let server = Self::default();
        let app = Router::new()
            .route(
                "/.well-known/upzento-verification.txt",
                get(|State(s): State<WebServer>| async move {
                    match s.body.lock().unwrap().clone() {
                        Some(body) => Ok(body),
                        None => Err(StatusCode::NOT_FOUND),
                    }
                }),
            )
            .fallback(
                |State(s): State<WebServer>, uri: axum::http::Uri| async move {
                    match s.pages.lock().unwrap().get(uri.path()).cloned() {
                        Some(html) => Ok(axum::response::Html(html)),
                        None => Err(StatusCode::NOT_FOUND),
                    }
                },
            )
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (server, port)
    }

    /// Serves `html` at `path`.
    pub fn page(&self, path: &str, html: &str) {
        self.pages
            .lock()
            .unwrap()
            .insert(path.to_owned(), html.to_owned());
    }

    /// Serves `body` as the verification file.
    pub fn serve(&self, body: &str) {
        *self.body.lock().unwrap() = Some(body.to_owned());
    }
}
