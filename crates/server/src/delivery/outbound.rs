//! The outbound HTTP/1.1 client of notifications: hyper's client connections over rustls, with
//! the SSRF guard as the connector's resolver. No proxies, no redirects (hyper follows none), no
//! retries of its own but a resend of a request its connection closed under, no default headers:
//! the sender builds every header itself.
//!
//! Each connection is driven by the task that sends on it ([ADR
//! 0009](../../../../docs/adr/0009-connections-driven-by-the-sending-task.md)): a connection is
//! taken from the idle list of its origin (or opened), the notification task polls hyper's
//! connection future itself while it waits for the answer and reads its body, and gives the
//! connection back once the answer was read to its end. hyper-util's pooled client, which runs
//! a task per connection and passes each request through a channel, cost 12–20% of `fanout10`'s
//! deliveries per second (docs/benchmarks.md; [ADR 0016](../../../../docs/adr/0016-stock-parts-under-the-engine.md)).

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1;
use hyper::header::HeaderMap;
use hyper::{Method, Request, Response, Uri};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::BuilderVerifierExt;
use tidings_core::fasthash::HashMap;
use tower::Service;

use super::answer_budget::{ANSWER_BYTES, Budget, Budgeted, BudgetingConnector};
use super::ssrf::{AddressPolicy, GuardedResolver};

/// A request body: the notification, in memory.
pub type Body = Full<Bytes>;

type Connector = HttpsConnector<BudgetingConnector>;
/// What a connection runs over: TCP, or TLS over TCP, its reads budgeted per answer.
pub type Io = MaybeHttpsStream<TokioIo<Budgeted>>;

/// Most header fields an answer (or its trailers) may have.
const MAX_HEADERS: usize = 100;

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
pub struct Outbound {
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
    conn: Connection,
    since: Instant,
}

/// One HTTP/1.1 connection: the handle requests go through and the future that does its I/O,
/// polled by whoever holds it (the pool's [`Lease`], or the bench's load loops, which keep one
/// connection each).
pub struct Connection {
    sender: http1::SendRequest<Body>,
    driver: Pin<Box<http1::Connection<Io, Body>>>,
    /// The driver finished (closed by either side, or failed): never polled again.
    ended: bool,
    /// What the answer to the request in flight may still take (set again for each request).
    budget: Budget,
}

impl Connection {
    /// An HTTP/1.1 connection over `io`.
    pub async fn handshake(io: Io) -> Result<Self, Error> {
        let budget = match &io {
            MaybeHttpsStream::Http(tcp) => tcp.inner().budget(),
            MaybeHttpsStream::Https(tls) => tls.inner().get_ref().0.inner().inner().budget(),
        };
        let (sender, driver) = http1::Builder::new()
            .max_headers(MAX_HEADERS)
            .handshake(io)
            .await?;
        Ok(Self {
            sender,
            driver: Box::pin(driver),
            ended: false,
            budget,
        })
    }

    /// Whether the connection has ended (closed by either side, or failed).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Sends `req` and returns the answer's head and body, driving the connection meanwhile.
    pub async fn request(&mut self, req: Request<Body>) -> Result<Response<Incoming>, Error> {
        self.try_request(req).await.map_err(|f| match f {
            Failed::NotSent(_, e) | Failed::Closed(e) | Failed::Error(e) => e,
        })
    }

    async fn try_request(&mut self, req: Request<Body>) -> Result<Response<Incoming>, Failed> {
        let Self {
            sender,
            driver,
            ended,
            budget,
        } = self;
        budget.reset(ANSWER_BYTES);
        let mut answer = std::pin::pin!(sender.try_send_request(req));
        poll_fn(|cx| {
            // The connection first: it writes the request and reads the answer, which the
            // request's future then finds in the same poll.
            let ended = drive(driver, ended, cx);
            match answer.as_mut().poll(cx) {
                Poll::Ready(Ok(response)) => Poll::Ready(Ok(response)),
                Poll::Ready(Err(mut e)) => Poll::Ready(Err(match e.take_message() {
                    Some(req) => Failed::NotSent(Box::new(req), e.into_error().into()),
                    None if closed_before_answer(e.error()) => {
                        Failed::Closed(e.into_error().into())
                    }
                    None => Failed::Error(e.into_error().into()),
                })),
                Poll::Pending if ended => Poll::Ready(Err(Failed::Closed(
                    "the connection closed before the answer".into(),
                ))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// The next frame of the answer's `body` (`None` at its end), the connection driven
    /// meanwhile.
    pub async fn frame(
        &mut self,
        body: &mut Incoming,
    ) -> Option<Result<Frame<Bytes>, hyper::Error>> {
        let mut next = std::pin::pin!(body.frame());
        poll_fn(|cx| {
            let ended = self.drive(cx);
            match next.as_mut().poll(cx) {
                Poll::Pending if ended => Poll::Ready(None),
                other => other,
            }
        })
        .await
    }

    /// Polls the connection's I/O; returns whether it has ended.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        drive(&mut self.driver, &mut self.ended, cx)
    }

    /// Whether a request can go out on it now (checked without waiting: the driver is polled
    /// once with a waker that does nothing, so a peer's close is seen).
    fn usable(&mut self) -> bool {
        !self.drive(&mut Context::from_waker(Waker::noop())) && self.sender.is_ready()
    }
}

/// Polls a connection's future until it finishes, then never again; returns whether it has
/// ended.
fn drive(
    driver: &mut Pin<Box<http1::Connection<Io, Body>>>,
    ended: &mut bool,
    cx: &mut Context<'_>,
) -> bool {
    if !*ended && driver.as_mut().poll(cx).is_ready() {
        *ended = true;
    }
    *ended
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbound")
    }
}

/// Builds a client.
pub fn build(s: &Settings) -> Result<Outbound, rustls::Error> {
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
        .wrap_connector(BudgetingConnector(http));
    Ok(Outbound {
        pool: Arc::new(Pool {
            connector,
            idle: Mutex::default(),
            idle_per_host: s.idle_per_host,
            sweeping: std::sync::atomic::AtomicBool::new(false),
        }),
    })
}

/// Why a request got no answer.
enum Failed {
    /// It never left: it comes back, to go out on another connection.
    NotSent(Box<Request<Body>>, Error),
    /// It was written, but the connection closed or was reset before an answer began.
    Closed(Error),
    Error(Error),
}

impl Outbound {
    /// `POST`s `body` to `path` (origin form) with `headers` (`Host` among them) at `origin`
    /// (`connect`: the URL's scheme and authority), over an idle connection of that origin or
    /// a new one; returns the answer's head and body with the connection it is read through.
    ///
    /// A kept-alive connection the receiver closed just as the request went out gives the
    /// request back unsent (hyper tells): it goes again on the next idle connection or a new
    /// one. One whose connection closed or was reset after it was written, before an answer
    /// began, goes once more on a new connection: a repeat the receiver may have seen is what
    /// delivery is anyway (at least once, de-duplicated on `webhook-id`), and it spares an
    /// attempt that failed for the connection's sake rather than the receiver's.
    pub async fn send(
        &self,
        origin: &Arc<str>,
        connect: &Uri,
        path: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<(Response<Incoming>, Lease), Error> {
        let request = || {
            let mut req = Request::new(Body::new(body.clone()));
            *req.method_mut() = Method::POST;
            *req.uri_mut() = path.clone();
            *req.headers_mut() = headers.clone();
            req
        };
        let mut req = request();
        let mut resent = false;
        loop {
            let (mut conn, reused) = match self.pool.take(origin) {
                Some(conn) => (conn, true),
                // Boxed: connecting (resolver, TCP, TLS handshake) is a large future, needed
                // once per connection; unboxed it would be moved with every request's.
                None => (Box::pin(self.connect(connect)).await?, false),
            };
            match conn.try_request(req).await {
                Ok(response) => {
                    let lease = Lease {
                        conn,
                        origin: origin.clone(),
                        pool: Arc::downgrade(&self.pool),
                    };
                    return Ok((response, lease));
                }
                Err(Failed::NotSent(back, _)) if reused => req = *back,
                Err(Failed::Closed(e)) if !resent => {
                    tracing::debug!(error = %e, "connection closed before the answer; sending again");
                    resent = true;
                    req = request();
                }
                Err(Failed::NotSent(_, e) | Failed::Closed(e) | Failed::Error(e)) => return Err(e),
            }
        }
    }

    async fn connect(&self, uri: &Uri) -> Result<Connection, Error> {
        let mut connector = self.pool.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx)).await?;
        Connection::handshake(connector.call(uri.clone()).await?).await
    }
}

impl Pool {
    /// The most recently used idle connection of `origin` that can still take a request.
    fn take(&self, origin: &str) -> Option<Connection> {
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
    fn put(self: &Arc<Self>, origin: Arc<str>, conn: Connection) {
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
                    list.retain_mut(|i| {
                        i.since.elapsed() < IDLE_TIMEOUT
                            && !i.conn.drive(&mut Context::from_waker(Waker::noop()))
                    });
                    !list.is_empty()
                });
            }
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A connection in use: the answer's body is read through it ([`Lease::frame`]); once read to
/// its end, [`Lease::finish`] gives the connection back. Dropped otherwise, it closes.
pub struct Lease {
    conn: Connection,
    origin: Arc<str>,
    pool: Weak<Pool>,
}

impl Lease {
    /// Reads `body` into `into` until it ends or `into` holds `limit` bytes, the connection
    /// driven meanwhile; returns whether it ended (only then may [`Lease::finish`] keep the
    /// connection).
    pub async fn read_body(
        &mut self,
        body: &mut Incoming,
        into: &mut Vec<u8>,
        limit: usize,
    ) -> Result<bool, Error> {
        while into.len() < limit {
            match self.conn.frame(body).await {
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

    /// The answer was read to its end: the connection goes back to its origin's idle list,
    /// unless it ended.
    pub fn finish(self) {
        let Self {
            mut conn,
            origin,
            pool,
        } = self;
        if let Some(pool) = pool.upgrade()
            && !conn.drive(&mut Context::from_waker(Waker::noop()))
        {
            pool.put(origin, conn);
        }
    }
}

/// Whether hyper failed a written request because its connection closed (or was reset)
/// before an answer began.
fn closed_before_answer(e: &hyper::Error) -> bool {
    if e.is_incomplete_message() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
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
mod tests;
