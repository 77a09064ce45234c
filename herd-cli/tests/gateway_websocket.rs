//! WebSockets through the gateway, with a real client (tokio-tungstenite):
//! echo both ways, held open past the session's TTL without eviction, and
//! closed with a close frame naming the reason when herd ends the session
//! or stops.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(gw: &Gateway, session: &str) -> Ws {
    let mut req = format!("ws://{}/socket", gw.addr).into_client_request().unwrap();
    req.headers_mut().insert("X-Session-ID", HeaderValue::from_str(session).unwrap());
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.expect("WebSocket handshake through herd");
    assert_eq!(resp.status(), 101);
    ws
}

async fn echo(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Text(got)))) => assert_eq!(got.as_str(), text),
        other => panic!("expected the echo of {text:?}, got {other:?}"),
    }
}

/// Waits for the close frame herd sends; returns it.
async fn close_frame(ws: &mut Ws, within: Duration) -> CloseFrame {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => return frame,
            Ok(Some(Ok(Message::Close(None)))) => panic!("a close frame without a reason"),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_outlives_the_ttl_and_closes_with_a_reason_when_its_session_ends() {
    let gw = Gateway::demo(&["--min", "0", "--ttl", "1s"]);
    let mut ws = connect(&gw, "live").await;
    echo(&mut ws, "hello").await;
    let big = "b".repeat(200_000);
    echo(&mut ws, &big).await;
    assert_eq!(gw.open_leases(), 1, "an open WebSocket holds its lease");

    // Idle on the wire for three TTLs: the session must stay bound.
    let quiet_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < quiet_until {
        assert_eq!(gw.stats()["sessions"], 1, "the session was evicted under an open WebSocket");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gw.stats()["counters"]["sessions_ended"]["idle_timeout"], 0);
    echo(&mut ws, "still here").await;

    let ended = request(gw.admin, "DELETE", "/sessions/live", &[], b"");
    assert_eq!(ended.status, 204);
    let frame = close_frame(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(frame.code, CloseCode::Away);
    assert!(frame.reason.contains("session ended: ended"), "{:?}", frame.reason);
    // The client answers and the tunnel goes; the lease with it.
    let _ = ws.close(None).await;
    wait_until("the tunnel's lease is released", Duration::from_secs(10), || gw.open_leases() == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_is_closed_when_its_session_reaches_its_lifetime() {
    let gw = Gateway::demo(&["--min", "0", "--max-session-lifetime", "1s"]);
    let mut ws = connect(&gw, "mortal").await;
    echo(&mut ws, "ping").await;
    let frame = close_frame(&mut ws, Duration::from_secs(15)).await;
    assert_eq!(frame.code, CloseCode::Away);
    assert!(frame.reason.contains("max_lifetime"), "{:?}", frame.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_whose_worker_crashes_is_closed_with_the_crash() {
    let gw = Gateway::demo(&["--min", "0"]);
    let mut ws = connect(&gw, "doomed").await;
    echo(&mut ws, "ping").await;
    let pid = gw.worker_pids()[0];
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let frame = close_frame(&mut ws, Duration::from_secs(15)).await;
    assert_eq!(frame.code, CloseCode::Error);
    assert!(frame.reason.contains("crashed"), "{:?}", frame.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_messages_and_many_frames_pass_unchanged() {
    let gw = Gateway::demo(&["--min", "0"]);
    let mut ws = connect(&gw, "binary").await;
    for i in 0..200u32 {
        let payload: Vec<u8> = (0..(i * 97 % 70_000)).map(|b| (b ^ i) as u8).collect();
        ws.send(Message::Binary(Bytes::from(payload.clone()))).await.unwrap();
        match ws.next().await {
            Some(Ok(Message::Binary(got))) => assert_eq!(got.as_ref(), &payload[..], "message {i}"),
            other => panic!("message {i}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_gateway_closes_open_websockets_with_a_reason() {
    let mut gw = Gateway::demo(&["--min", "0"]);
    let mut ws = connect(&gw, "leaving").await;
    echo(&mut ws, "ping").await;
    gw.signal(libc::SIGTERM);
    let frame = close_frame(&mut ws, Duration::from_secs(15)).await;
    assert_eq!(frame.code, CloseCode::Away);
    assert!(frame.reason.contains("shutting down"), "{:?}", frame.reason);
    let _ = ws.close(None).await;
    let status = tokio::task::block_in_place(|| gw.wait_exit(Duration::from_secs(20)));
    assert_eq!(status.code(), Some(0), "{}", gw.log());
}
