//! The outbound HTTP/1.1 client of notifications: hyper-util's pooled client over rustls, with
//! the SSRF guard as the connector's resolver. Keep-alive connections per origin; no proxies, no
//! redirects (hyper follows none), no retries of its own but the one hyper-util makes for a
//! request that a reused connection closed before it could be written; no default headers
//! (the sender builds every header itself, `Host` included).
//!
//! A response whose body is not read to its end (too large, failed, late) is dropped, and
//! hyper closes its connection instead of pooling it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::BuilderVerifierExt;

use super::ssrf::{AddressPolicy, GuardedResolver};

type Connector = HttpsConnector<HttpConnector<GuardedResolver>>;

/// A request body: the notification, in memory.
pub type Body = Full<Bytes>;

/// An error of the client, with its causes (the resolver's among them) as sources.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// How a client is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: Arc<AddressPolicy>,
    pub connect_timeout: Duration,
    /// Keep-alive connections kept per origin.
    pub idle_per_host: usize,
    /// Whether server certificates are verified (the platform's roots) or accepted as they come.
    pub verify: bool,
}

/// An idle connection is closed after this long unused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Most header fields an answer may have.
const MAX_HEADERS: usize = 100;

/// The client. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct Client(hyper_util::client::legacy::Client<Connector, Body>);

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

/// Builds a client.
pub fn build(s: &Settings) -> Result<Client, rustls::Error> {
    let mut http = HttpConnector::new_with_resolver(GuardedResolver {
        policy: s.policy.clone(),
    });
    // `https://` URLs pass on to the TLS layer.
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(s.connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(s.verify)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(s.idle_per_host.max(1))
        .retry_canceled_requests(true)
        .set_host(false)
        .http1_max_headers(MAX_HEADERS)
        .build(connector);
    Ok(Client(client))
}

impl Client {
    /// `POST`s `body` to `uri` (absolute: the pool's key and where to connect) with `headers`
    /// (`Host` among them) and returns the answer's head and body.
    ///
    /// A kept-alive connection the receiver closes just as a request goes out fails that
    /// request before any answer; hyper-util resends it only when nothing was written yet.
    /// Here it goes once more, on a new connection, whenever a connection closed or reset
    /// before an answer began: a repeat the receiver may already have seen is what delivery is
    /// anyway (at least once, de-duplicated on `webhook-id`), and it spares an attempt that
    /// failed for the connection's sake rather than the receiver's.
    pub async fn send(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Response<Incoming>, Error> {
        let request = || {
            let mut req = Request::new(Body::new(body.clone()));
            *req.method_mut() = Method::POST;
            *req.uri_mut() = uri.clone();
            *req.headers_mut() = headers.clone();
            req
        };
        match self.0.request(request()).await {
            Err(e) if closed_before_answer(&e) => Ok(self.0.request(request()).await?),
            other => Ok(other?),
        }
    }
}

/// Whether a request failed because its connection closed (or was reset) before an answer
/// began, rather than because nothing could be reached.
fn closed_before_answer(e: &hyper_util::client::legacy::Error) -> bool {
    if e.is_connect() {
        return false;
    }
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_canceled())
        {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
            );
        }
        source = err.source();
    }
    false
}

/// Reads `body` into `into` until it ends or `into` holds `limit` bytes; returns whether it
/// ended (a body cut short must be dropped, which closes its connection).
pub async fn read_body(
    body: &mut Incoming,
    into: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, Error> {
    while into.len() < limit {
        match body.frame().await {
            Some(frame) => {
                if let Ok(data) = frame?.into_data() {
                    let room = limit - into.len();
                    into.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            None => return Ok(true),
        }
    }
    Ok(hyper::body::Body::is_end_stream(body))
}

fn tls_config(verify: bool) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    Ok(if verify {
        builder.with_platform_verifier()?.with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    })
}

/// `sslVerification: disabled`: any certificate is accepted (the handshake's signatures are
/// still checked, so the peer holds the key of the certificate it showed).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A receiver speaking just enough HTTP/1.1: it answers each request on a connection with
    /// `answer`, then, if `close_after` is set, closes the connection that long after its
    /// first answer. Counts the connections it accepted.
    async fn receiver(
        answer: &'static str,
        close_after: Option<Duration>,
    ) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut seen = Vec::new();
                    loop {
                        let Ok(n) = tcp.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        // Requests carry a small body; one read holds each whole request here.
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&seen[..end]).to_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length: "))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if seen.len() < end + 4 + length {
                                break;
                            }
                            seen.drain(..end + 4 + length);
                            if tcp.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                            if let Some(after) = close_after {
                                tokio::time::sleep(after).await;
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn client() -> Client {
        build(&Settings {
            policy: Arc::new(AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()])),
            connect_timeout: Duration::from_secs(5),
            idle_per_host: 8,
            verify: true,
        })
        .unwrap()
    }

    /// Sends one request and reads its answer to the end, as the sender does; returns the
    /// status and the body.
    async fn post(client: &Client, addr: std::net::SocketAddr) -> Result<(u16, Vec<u8>), Error> {
        let uri: Uri = format!("http://{addr}/hook").parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(hyper::header::HOST, addr.to_string().parse().unwrap());
        let (head, mut body) = client
            .send(&uri, &headers, &Bytes::from_static(b"{}"))
            .await?
            .into_parts();
        let mut got = Vec::new();
        read_body(&mut body, &mut got, 1024).await?;
        Ok((head.status.as_u16(), got))
    }

    const KEEP: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    #[tokio::test]
    async fn an_answer_read_to_its_end_leaves_its_connection_for_the_next_request() {
        let (addr, accepted) = receiver(KEEP, None).await;
        let client = client();
        for _ in 0..5 {
            assert_eq!(post(&client, addr).await.unwrap(), (200, b"ok".to_vec()));
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for all five"
        );
    }

    /// Tasks sending at once each hold a connection and take back ones others finished with:
    /// 500 requests over about as many connections as there are senders (hyper-util may open
    /// one while it waits for an idle one, and keeps both).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_senders_share_the_kept_alive_connections() {
        let (addr, accepted) = receiver("HTTP/1.1 204 No Content\r\n\r\n", None).await;
        let client = client();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    assert_eq!(post(&client, addr).await.unwrap().0, 204);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let opened = accepted.load(Ordering::SeqCst);
        assert!(opened <= 40, "{opened} connections for 20 senders");
    }

    #[tokio::test]
    async fn a_kept_alive_connection_the_receiver_closed_is_replaced() {
        let (addr, accepted) = receiver(KEEP, Some(Duration::from_millis(20))).await;
        let client = client();
        for _ in 0..3 {
            assert_eq!(post(&client, addr).await.unwrap().0, 200);
            // The receiver closes its side meanwhile: the idle connection must not be used.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    /// Receivers that close each kept-alive connection right after their answer: whichever
    /// request meets a connection closing under it goes out again on a new one, so no attempt
    /// fails.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_closed_right_after_their_answer_fail_no_request() {
        let (addr, accepted) = receiver(KEEP, Some(Duration::ZERO)).await;
        let client = client();
        for _ in 0..50 {
            assert_eq!(post(&client, addr).await.unwrap().0, 200);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 50, "a connection each");
    }

    #[tokio::test]
    async fn connection_close_is_honoured() {
        let (addr, accepted) =
            receiver("HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n", None).await;
        let client = client();
        for _ in 0..3 {
            assert_eq!(post(&client, addr).await.unwrap().0, 204);
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            3,
            "a closed connection is not kept"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_error_with_its_cause() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = post(&client(), port).await.unwrap_err();
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        assert!(text.to_lowercase().contains("refused"), "{text}");
    }
}
