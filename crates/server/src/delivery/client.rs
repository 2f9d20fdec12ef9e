//! The outbound HTTP/1.1 client of notifications: keep-alive connections over rustls, with the
//! SSRF guard as the connector's resolver. No proxies, no redirects, no retries of its own (the
//! delivery queue retries), no default headers: the sender builds every header itself.
//!
//! Each connection is spoken to directly by the task that sends on it (`h1.rs`): a connection
//! is taken from the idle list of its origin (or opened), the notification task writes the
//! request and reads the answer itself, and gives the connection back once the answer was read
//! to its end. No task per connection, no request crossing tasks through a channel, no
//! dispatcher: hyper's client connection cost about a fifth of a delivery thread's samples
//! outside the system calls (docs/benchmarks.md, twenty-first round; ADR 0014), hyper-util's
//! pooled client before it a quarter of a delivery task's instructions (tenth round), reqwest
//! a fifth of the server's CPU per delivery (fifth round).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use hyper::Uri;
use hyper::header::HeaderMap;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::BuilderVerifierExt;
use tidings_core::fasthash::HashMap;
use tower::Service;

use super::guard::{AddressPolicy, GuardedResolver};
use super::h1;

type Connector = HttpsConnector<HttpConnector<GuardedResolver>>;

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

/// The client: idle connections by origin. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    pool: Arc<Pool>,
}

struct Pool {
    connector: Connector,
    idle: Mutex<HashMap<Arc<str>, VecDeque<Idle>>>,
    idle_per_host: usize,
    /// Whether the task that closes expired idle connections runs.
    sweeping: std::sync::atomic::AtomicBool,
}

struct Idle {
    conn: h1::Conn,
    since: Instant,
}

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
    Ok(Client {
        pool: Arc::new(Pool {
            connector,
            idle: Mutex::default(),
            idle_per_host: s.idle_per_host,
            sweeping: std::sync::atomic::AtomicBool::new(false),
        }),
    })
}

impl Client {
    /// Sends a `POST` of `body` to `path` (origin form) with `headers` (`Host` among them) to
    /// `origin` (`connect`: the URL's scheme and authority) over an idle connection of that
    /// origin, or a new one, and returns the answer's head with the connection, which the body
    /// is read through.
    pub async fn send(
        &self,
        origin: &Arc<str>,
        connect: &Uri,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(h1::Head, Lease), Error> {
        // A kept-alive connection the receiver closed just as the request went out fails the
        // write: the request goes again, on the next idle connection or a new one (which is the
        // last try: a new connection that cannot take it has a reason worth reporting).
        loop {
            let (mut conn, reused) = match self.pool.take(origin) {
                Some(conn) => (conn, true),
                // Boxed: connecting (resolver, TCP, TLS handshake) is a large future, needed
                // once per connection; unboxed it would be moved with every request's.
                None => (Box::pin(self.connect(connect)).await?, false),
            };
            match conn.post(path, headers, body).await {
                Ok(head) => {
                    let lease = Lease {
                        conn,
                        origin: origin.clone(),
                        pool: Arc::downgrade(&self.pool),
                    };
                    return Ok((head, lease));
                }
                Err(h1::Failed::NotSent(_)) if reused => {}
                Err(h1::Failed::NotSent(e) | h1::Failed::Error(e)) => return Err(e),
            }
        }
    }

    async fn connect(&self, uri: &Uri) -> Result<h1::Conn, Error> {
        let mut connector = self.pool.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx)).await?;
        let io: Box<dyn h1::Io> = match connector.call(uri.clone()).await? {
            MaybeHttpsStream::Http(tcp) => Box::new(tcp.into_inner()),
            MaybeHttpsStream::Https(tls) => Box::new(tls.into_inner()),
        };
        Ok(h1::Conn::new(io))
    }
}

impl Pool {
    /// The most recently used idle connection of `origin` that can still take a request.
    fn take(&self, origin: &str) -> Option<h1::Conn> {
        let mut idle = lock(&self.idle);
        let list = idle.get_mut(origin)?;
        while let Some(Idle { mut conn, since }) = list.pop_back() {
            if since.elapsed() < IDLE_TIMEOUT && conn.usable() {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps `conn` for the next request to `origin` (the oldest goes when the list is full).
    fn put(self: &Arc<Self>, origin: Arc<str>, conn: h1::Conn) {
        {
            let mut idle = lock(&self.idle);
            let list = idle.entry(origin).or_default();
            if list.len() >= self.idle_per_host.max(1) {
                list.pop_front();
            }
            list.push_back(Idle {
                conn,
                since: Instant::now(),
            });
        }
        self.sweep_later();
    }

    /// Starts, once, the task that closes idle connections past their time (it ends with the
    /// client).
    fn sweep_later(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        // Read first: this runs for every connection given back, and only the first starts it.
        if self.sweeping.load(Ordering::Relaxed) || self.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.sweeping.store(false, Ordering::Relaxed);
            return;
        };
        let pool = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut every = tokio::time::interval(IDLE_TIMEOUT / 2);
            every.tick().await;
            loop {
                every.tick().await;
                let Some(pool) = pool.upgrade() else { return };
                let mut idle = lock(&pool.idle);
                idle.retain(|_, list| {
                    list.retain_mut(|i| i.since.elapsed() < IDLE_TIMEOUT && i.conn.usable());
                    !list.is_empty()
                });
            }
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A connection in use: the answer's body is read through it ([`Lease::read_body`]); once
/// read to its end, [`Lease::finish`] gives the connection back. Otherwise it closes.
pub struct Lease {
    conn: h1::Conn,
    origin: Arc<str>,
    pool: Weak<Pool>,
}

impl Lease {
    /// Whether the answer's body has been read to its end (at once for `204` or
    /// `Content-Length: 0`).
    pub fn body_done(&self) -> bool {
        self.conn.body_done()
    }

    /// Reads the answer's body into `into` until it ends or `into` holds `limit` bytes.
    pub async fn read_body(&mut self, into: &mut Vec<u8>, limit: usize) -> Result<(), Error> {
        self.conn.read_body(into, limit).await
    }

    /// Done with the answer: the connection goes back to its origin's idle list if the body was
    /// read to its end and the receiver keeps it open; otherwise it closes.
    pub fn finish(self) {
        let Self { conn, origin, pool } = self;
        if conn.reusable()
            && let Some(pool) = pool.upgrade()
        {
            pool.put(origin, conn);
        }
    }
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
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

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
        let origin: Arc<str> = format!("http://{addr}").into();
        let connect: Uri = format!("http://{addr}/").parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(hyper::header::HOST, addr.to_string().parse().unwrap());
        let (head, mut lease) = client
            .send(&origin, &connect, "/hook", &headers, b"{}")
            .await?;
        let mut got = Vec::new();
        lease.read_body(&mut got, 1024).await?;
        lease.finish();
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

    /// Tasks sending at once each hold a connection, and each takes one back that another
    /// finished with: never more connections than requests in flight.
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
        assert!(opened <= 20, "{opened} connections for 20 senders");
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

    /// A kept-alive connection that still looks idle but whose writes fail, as when the
    /// receiver closes it just as the request goes out: reads wait, writes are refused.
    struct ClosedUnderfoot(Arc<AtomicUsize>);

    impl tokio::io::AsyncRead for ClosedUnderfoot {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Pending
        }
    }

    impl tokio::io::AsyncWrite for ClosedUnderfoot {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// The idle check cannot see a close that comes after it: the write then fails, and the
    /// request goes again on a new connection instead of failing the attempt.
    #[tokio::test]
    async fn a_request_a_reused_connection_could_not_send_goes_on_a_new_one() {
        let (addr, accepted) = receiver(KEEP, None).await;
        let client = client();
        let writes = Arc::new(AtomicUsize::new(0));
        lock(&client.pool.idle)
            .entry(format!("http://{addr}").into())
            .or_default()
            .push_back(Idle {
                conn: h1::Conn::new(Box::new(ClosedUnderfoot(writes.clone()))),
                since: Instant::now(),
            });
        assert_eq!(post(&client, addr).await.unwrap(), (200, b"ok".to_vec()));
        assert_eq!(writes.load(Ordering::SeqCst), 1, "the broken one was tried");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "then a new one was opened"
        );
    }

    #[tokio::test]
    async fn connection_close_is_honoured() {
        let (addr, accepted) =
            receiver("HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n", None).await;
        let client = client();
        for _ in 0..3 {
            assert_eq!(post(&client, addr).await.unwrap().0, 204);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        assert!(
            lock(&client.pool.idle).values().all(VecDeque::is_empty),
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
