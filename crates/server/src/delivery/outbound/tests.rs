use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A receiver speaking just enough HTTP/1.1: it answers each request on a connection with
/// `answer`, then, if `close_after` is set, closes the connection that long after its
/// first answer (and says so on the `Notify`). Counts the connections it accepted.
async fn receiver(
    answer: &'static str,
    close_after: Option<Duration>,
) -> (
    std::net::SocketAddr,
    Arc<AtomicUsize>,
    Arc<tokio::sync::Notify>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let closed = Arc::new(tokio::sync::Notify::new());
    let closing = closed.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let closing = closing.clone();
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
                            drop(tcp);
                            closing.notify_one();
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, accepted, closed)
}

fn client() -> Outbound {
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
async fn post(client: &Outbound, addr: std::net::SocketAddr) -> Result<(u16, Vec<u8>), Error> {
    let origin: Arc<str> = format!("http://{addr}").into();
    let connect: Uri = format!("http://{addr}/").parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(hyper::header::HOST, addr.to_string().parse().unwrap());
    let (response, mut lease) = client
        .send(
            &origin,
            &connect,
            &Uri::from_static("/hook"),
            &headers,
            &Bytes::from_static(b"{}"),
        )
        .await?;
    let (head, mut body) = response.into_parts();
    let mut got = Vec::new();
    if lease.read_body(&mut body, &mut got, 1024).await? {
        lease.finish();
    }
    Ok((head.status.as_u16(), got))
}

const KEEP: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

#[tokio::test]
async fn an_answer_read_to_its_end_leaves_its_connection_for_the_next_request() {
    let (addr, accepted, _) = receiver(KEEP, None).await;
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
    let (addr, accepted, _) = receiver("HTTP/1.1 204 No Content\r\n\r\n", None).await;
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
    let (addr, accepted, closed) = receiver(KEEP, Some(Duration::from_millis(20))).await;
    let client = client();
    for _ in 0..3 {
        assert_eq!(post(&client, addr).await.unwrap().0, 200);
        // The receiver closes its side meanwhile: the idle connection must not be used.
        tokio::time::timeout(Duration::from_secs(5), closed.notified())
            .await
            .expect("the receiver closed the connection");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

/// Receivers that close each kept-alive connection right after their answer: whichever
/// request meets a connection closing under it goes out again on a new one, so no attempt
/// fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closed_right_after_their_answer_fail_no_request() {
    let (addr, accepted, _) = receiver(KEEP, Some(Duration::ZERO)).await;
    let client = client();
    for _ in 0..50 {
        assert_eq!(post(&client, addr).await.unwrap().0, 200);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 50, "a connection each");
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let (addr, accepted, _) =
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
    // A port of our own, bound but not listening: connecting is refused, and nothing else
    // can take the port meanwhile (a just-freed port could be).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap();
    let e = post(&client(), port).await.unwrap_err();
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(text.to_lowercase().contains("refused"), "{text}");
}
