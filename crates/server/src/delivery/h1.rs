//! One HTTP/1.1 connection of the notification client, spoken directly: the request written in
//! one piece, the answer's head parsed by `httparse`, its body read by its framing (RFC 9112
//! §6.3: none, `Content-Length`, chunked, or up to the close). hyper's client connection did the
//! same through a request channel, a dispatcher and a connection task's state machine, which
//! cost about a fifth of a delivery thread's samples outside the system calls
//! (docs/benchmarks.md, twenty-first round; ADR 0014).
//!
//! No pipelining: one request at a time, the next only after the answer was read to its end.
//! No `Expect: 100-continue` is sent; an interim `1xx` answer a receiver sends anyway is
//! skipped, and `101 Switching Protocols` is an error.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use hyper::StatusCode;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::client::Error;

/// What a connection runs over: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Headers an answer may carry (hyper's default).
const MAX_HEADERS: usize = 100;
/// The longest answer head, chunk-size line or trailer section read.
const MAX_HEAD: usize = 64 * 1024;

/// The head of an answer.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
}

/// How the answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes are left.
    Length(u64),
    /// Chunked: a chunk-size line comes next.
    ChunkSize,
    /// Chunked: in a chunk with this many bytes left (never 0).
    Chunk(u64),
    /// Chunked, after a chunk's data: its CRLF comes next.
    ChunkEnd,
    /// Chunked, after the last chunk: the trailer section comes next.
    Trailers,
    /// Up to the close of the connection.
    Close,
    Done,
}

/// A connection, idle or with one answer being read.
pub struct Conn {
    io: Box<dyn Io>,
    /// Read but not used yet.
    buf: BytesMut,
    /// The request being written (kept for its capacity).
    out: Vec<u8>,
    /// How the current answer's body ends.
    framing: Framing,
    /// Whether the connection may carry another request once the body is read.
    keep_alive: bool,
}

/// Why a request got no answer.
pub enum Failed {
    /// Writing it failed: the receiver had closed the connection, so it can go again on
    /// another.
    NotSent(Error),
    Error(Error),
}

impl Conn {
    pub fn new(io: Box<dyn Io>) -> Self {
        Self {
            io,
            buf: BytesMut::with_capacity(4096),
            out: Vec::with_capacity(1024),
            framing: Framing::Done,
            keep_alive: true,
        }
    }

    /// Whether the answer's body was read to its end and the connection may carry another
    /// request.
    pub fn reusable(&self) -> bool {
        self.framing == Framing::Done && self.keep_alive
    }

    /// Whether an idle connection can take a request now: nothing arrived on it, not even its
    /// close (checked without waiting, by one read polled with a waker that does nothing).
    pub fn usable(&mut self) -> bool {
        if !self.reusable() || !self.buf.is_empty() {
            return false;
        }
        let mut byte = [0u8; 1];
        let mut rb = ReadBuf::new(&mut byte);
        let mut cx = Context::from_waker(Waker::noop());
        // Pending: nothing to read, the peer has not closed. Anything else (data the receiver
        // should not have sent, its close, an error) ends the connection.
        matches!(
            Pin::new(&mut *self.io).poll_read(&mut cx, &mut rb),
            Poll::Pending
        )
    }

    /// Sends a `POST` of `body` to `path` with `headers` (`Host` among them; `Content-Length`
    /// is added) and reads the answer's head; the body is then read with [`Conn::read_body`].
    pub async fn post(
        &mut self,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Head, Failed> {
        self.out.clear();
        encode(&mut self.out, path, headers, body);
        if let Err(e) = self.io.write_all(&self.out).await {
            self.keep_alive = false;
            return Err(Failed::NotSent(e.into()));
        }
        if let Err(e) = self.io.flush().await {
            self.keep_alive = false;
            return Err(Failed::Error(e.into()));
        }
        self.read_head().await.map_err(|e| {
            self.keep_alive = false;
            Failed::Error(e)
        })
    }

    async fn read_head(&mut self) -> Result<Head, Error> {
        loop {
            if let Some(head) = self.parse_head()? {
                // An interim answer: the final one follows.
                if head.status.is_informational() {
                    if head.status == StatusCode::SWITCHING_PROTOCOLS {
                        return Err("the receiver switched protocols".into());
                    }
                    continue;
                }
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD {
                return Err("the answer's head is too large".into());
            }
            if self.fill().await? == 0 {
                return Err(if self.buf.is_empty() {
                    "the connection closed before the answer".into()
                } else {
                    "the connection closed in the answer's head".into()
                });
            }
        }
    }

    /// The head at the front of the buffer, if it is all there; sets the body's framing.
    fn parse_head(&mut self) -> Result<Option<Head>, Error> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut slots);
        let len = match parsed.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(format!("invalid answer: {e}").into()),
        };
        let status = parsed
            .code
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or("invalid answer: no status")?;
        let http10 = parsed.version == Some(0);
        let mut headers = HeaderMap::with_capacity(parsed.headers.len());
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut coded = false;
        let mut close = http10;
        for h in parsed.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| format!("invalid answer header name {:?}", h.name))?;
            let value = HeaderValue::from_bytes(h.value)
                .map_err(|_| format!("invalid value of answer header {name}"))?;
            if name == hyper::header::CONTENT_LENGTH {
                let n = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or("invalid answer: bad content-length")?;
                if length.is_some_and(|l| l != n) {
                    return Err("invalid answer: conflicting content-length".into());
                }
                length = Some(n);
            } else if name == hyper::header::TRANSFER_ENCODING {
                coded = true;
                // Only the last coding decides: chunked must be it.
                chunked = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.rsplit(',').next())
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            } else if name == hyper::header::CONNECTION {
                let tokens = value.to_str().unwrap_or("");
                let has = |t: &str| tokens.split(',').any(|x| x.trim().eq_ignore_ascii_case(t));
                if has("close") {
                    close = true;
                } else if http10 && has("keep-alive") {
                    close = false;
                }
            }
            headers.append(name, value);
        }
        self.buf.advance(len);
        self.keep_alive = !close;
        self.framing = if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Framing::Done
        } else if coded {
            if chunked {
                Framing::ChunkSize
            } else {
                Framing::Close
            }
        } else {
            match length {
                Some(0) => Framing::Done,
                Some(n) => Framing::Length(n),
                None => Framing::Close,
            }
        };
        // Up to the close, or framed by both a coding and a length (RFC 9112 §6.3: the coding
        // wins, and such an answer may be an attempt at response splitting): not kept.
        if self.framing == Framing::Close || (coded && length.is_some()) {
            self.keep_alive = false;
        }
        Ok(Some(Head { status, headers }))
    }

    /// Whether the answer's body has been read to its end.
    pub fn body_done(&self) -> bool {
        self.framing == Framing::Done
    }

    /// Reads the answer's body into `into` until it ends or `into` holds `limit` bytes.
    pub async fn read_body(&mut self, into: &mut Vec<u8>, limit: usize) -> Result<(), Error> {
        let result = self.body(into, limit).await;
        if result.is_err() {
            self.keep_alive = false;
        }
        result
    }

    async fn body(&mut self, into: &mut Vec<u8>, limit: usize) -> Result<(), Error> {
        while self.framing != Framing::Done && into.len() < limit {
            match self.framing {
                Framing::Length(left) | Framing::Chunk(left) => {
                    if self.buf.is_empty() && self.fill().await? == 0 {
                        return Err("the connection closed in the answer's body".into());
                    }
                    let take = (self.buf.len() as u64).min(left) as usize;
                    let keep = take.min(limit - into.len());
                    into.extend_from_slice(&self.buf[..keep]);
                    self.buf.advance(take);
                    let left = left - take as u64;
                    self.framing = match self.framing {
                        Framing::Length(_) if left == 0 => Framing::Done,
                        Framing::Length(_) => Framing::Length(left),
                        _ if left == 0 => Framing::ChunkEnd,
                        _ => Framing::Chunk(left),
                    };
                }
                Framing::ChunkSize => {
                    let line = self.line().await?;
                    let size = std::str::from_utf8(&line)
                        .ok()
                        .map(|l| l.split(';').next().unwrap_or("").trim())
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or("invalid answer: bad chunk size")?;
                    self.framing = if size == 0 {
                        Framing::Trailers
                    } else {
                        Framing::Chunk(size)
                    };
                }
                Framing::ChunkEnd => {
                    if !self.line().await?.is_empty() {
                        return Err("invalid answer: chunk longer than its size".into());
                    }
                    self.framing = Framing::ChunkSize;
                }
                Framing::Trailers => {
                    if self.line().await?.is_empty() {
                        self.framing = Framing::Done;
                    }
                }
                Framing::Close => {
                    if self.buf.is_empty() && self.fill().await? == 0 {
                        self.framing = Framing::Done;
                        continue;
                    }
                    let keep = self.buf.len().min(limit - into.len());
                    into.extend_from_slice(&self.buf[..keep]);
                    let all = self.buf.len();
                    self.buf.advance(all);
                }
                Framing::Done => {}
            }
        }
        Ok(())
    }

    /// The next line of the body's framing, without its CRLF.
    async fn line(&mut self) -> Result<Vec<u8>, Error> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..end].to_vec();
                self.buf.advance(end + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err("invalid answer: chunk framing line too long".into());
            }
            if self.fill().await? == 0 {
                return Err("the connection closed in the answer's body".into());
            }
        }
    }

    /// Reads what is there into the buffer; 0 at the connection's end.
    async fn fill(&mut self) -> Result<usize, Error> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(4096);
        }
        Ok(self.io.read_buf(&mut self.buf).await?)
    }
}

/// The request's head and body, as one buffer: written at once.
fn encode(out: &mut Vec<u8>, path: &str, headers: &HeaderMap, body: &[u8]) {
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == hyper::header::CONTENT_LENGTH {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // Writing into a `Vec` cannot fail.
    let _ = write!(out, "content-length: {}\r\n\r\n", body.len());
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection whose peer is the other end of an in-memory pipe that already holds
    /// `answer`, and, if `close`, the peer's close after it.
    async fn answered(answer: &[u8], close: bool) -> (Conn, tokio::io::DuplexStream) {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        theirs.write_all(answer).await.unwrap();
        if close {
            theirs.shutdown().await.unwrap();
        }
        (Conn::new(Box::new(ours)), theirs)
    }

    async fn exchange(answer: &[u8]) -> (Result<(u16, Vec<u8>), String>, Conn, Vec<u8>) {
        // The peer closes after its answer: bodies that run to the close end, and cut ones fail.
        let (mut conn, mut theirs) = answered(answer, true).await;
        let mut headers = HeaderMap::new();
        headers.insert(
            hyper::header::HOST,
            HeaderValue::from_static("example.test"),
        );
        let result = match conn.post("/hook?a=1", &headers, b"{}").await {
            Ok(head) => {
                let mut body = Vec::new();
                match conn.read_body(&mut body, 1024).await {
                    Ok(()) => Ok((head.status.as_u16(), body)),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(Failed::NotSent(e) | Failed::Error(e)) => Err(e.to_string()),
        };
        let mut sent = Vec::new();
        let mut chunk = [0u8; 4096];
        // What the request wrote, up to what the pipe held.
        if let Ok(Ok(n)) = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            theirs.read(&mut chunk),
        )
        .await
        {
            sent.extend_from_slice(&chunk[..n]);
        }
        (result, conn, sent)
    }

    #[tokio::test]
    async fn the_request_is_one_post_with_its_length() {
        let (result, conn, sent) = exchange(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        assert_eq!(result.unwrap(), (204, Vec::new()));
        assert!(conn.body_done());
        assert_eq!(
            String::from_utf8(sent).unwrap(),
            "POST /hook?a=1 HTTP/1.1\r\nhost: example.test\r\ncontent-length: 2\r\n\r\n{}"
        );
        assert!(conn.reusable());
    }

    #[tokio::test]
    async fn bodies_are_read_by_their_framing() {
        for (answer, body, reusable) in [
            (&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..], "hello", true),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
                "hello world",
                true,
            ),
            // No length: the body runs to the close, and the connection is not kept.
            (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", "until the end", false),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", "ok", false),
            // HTTP/1.0 closes unless asked to keep the connection.
            (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", false),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok", "ok", true),
            // A coding and a length: the coding wins, and the connection is not kept.
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                "ok",
                false,
            ),
            // An interim answer is skipped.
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", true),
        ] {
            let (result, conn, _) = exchange(answer).await;
            let text = String::from_utf8_lossy(answer).into_owned();
            assert_eq!(result.unwrap(), (200, body.as_bytes().to_vec()), "{text}");
            assert_eq!(conn.reusable(), reusable, "{text}");
        }
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_cut_and_its_connection_kept_only_once_all_of_it_was_read() {
        // Six bytes of ten have arrived: four are kept, and the rest is never waited for.
        let (mut conn, _theirs) = answered(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n012345",
            false,
        )
        .await;
        conn.post("/", &HeaderMap::new(), b"").await.ok().unwrap();
        let mut body = Vec::new();
        conn.read_body(&mut body, 4).await.unwrap();
        assert_eq!(body, b"0123");
        assert!(!conn.body_done() && !conn.reusable());
        // All of it there: the bytes past the limit are dropped, and the connection is kept.
        let (mut conn, _theirs) =
            answered(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n012345", false).await;
        conn.post("/", &HeaderMap::new(), b"").await.ok().unwrap();
        let mut body = Vec::new();
        conn.read_body(&mut body, 4).await.unwrap();
        assert_eq!(body, b"0123");
        assert!(conn.reusable());
    }

    #[tokio::test]
    async fn broken_answers_are_errors_that_say_why() {
        for (answer, why) in [
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"[..],
                "closed in the answer's body",
            ),
            (b"", "closed before the answer"),
            (b"HTTP/1.1 200 O", "closed in the answer's head"),
            (b"NOT HTTP\r\n\r\n", "invalid answer"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                "bad content-length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok",
                "conflicting content-length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "bad chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokay\r\n0\r\n\r\n",
                "chunk longer than its size",
            ),
            (
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                "switched protocols",
            ),
        ] {
            let (result, conn, _) = exchange(answer).await;
            let e = result.unwrap_err();
            assert!(
                e.contains(why),
                "{e} for {}",
                String::from_utf8_lossy(answer)
            );
            assert!(!conn.reusable());
        }
    }

    #[tokio::test]
    async fn an_idle_connection_is_unusable_once_its_peer_closed_or_spoke() {
        let (mut conn, theirs) = answered(b"", false).await;
        assert!(conn.usable(), "nothing arrived");
        drop(theirs);
        assert!(!conn.usable(), "the peer closed");
        let (mut conn, _theirs) = answered(b"HTTP/1.1 200 OK\r\n\r\n", false).await;
        assert!(!conn.usable(), "unasked data");
    }
}
