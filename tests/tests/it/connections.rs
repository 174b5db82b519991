//! The connection loop's bounds, from raw sockets: request-target and header sizes, clients that
//! trickle their headers (slowloris), and the cap on open connections.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{TestApp, exchange, spawn_app_with};

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.base_url.trim_start_matches("http://");
    TcpStream::connect(address).await.expect("connected")
}

/// Reads until the server closes the connection (or resets it): what it sent before that.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test]
async fn long_targets_and_headers_are_refused_with_json_and_huge_ones_without_reading_them() {
    let app = spawn_app_with(&[("MAX_URI_BYTES", "2048"), ("MAX_HEADER_BYTES", "4096")]).await;
    let http = reqwest::Client::new();

    let long_query = format!("/api/v1/health?q={}", "a".repeat(2100));
    let (status, body) = exchange(http.get(app.url(&long_query))).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    assert_eq!(body["detail"], "Request URI longer than 2048 bytes");

    let (status, body) = exchange(
        http.get(app.url("/api/v1/health"))
            .header("x-padding", "b".repeat(5000)),
    )
    .await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(body["detail"], "Request headers larger than 4096 bytes");

    // Far past the limits (beyond twice them): hyper refuses before the headers are complete,
    // with a bare 431, and closes the connection.
    let mut stream = connect(&app).await;
    let huge = format!(
        "GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "c".repeat(64 * 1024)
    );
    let _ = stream.write_all(huge.as_bytes()).await;
    let answer = String::from_utf8_lossy(&read_until_closed(&mut stream).await).to_string();
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Requests within the limits are served as ever.
    let response = http.get(app.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn clients_that_trickle_their_headers_are_cut_off_and_hold_nothing_up() {
    let app = spawn_app_with(&[("HEADER_READ_TIMEOUT_MS", "500")]).await;
    let started = Instant::now();
    let slow_clients: Vec<_> = (0..50)
        .map(|_| {
            let address = app.base_url.trim_start_matches("http://").to_string();
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(address).await.expect("connected");
                let _ = stream.write_all(b"GET /api/v1/health HTTP/1.1\r\n").await;
                // One header byte every 50 ms, for up to 30 s: a write fails once the server
                // has closed the connection.
                for _ in 0..600 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if stream.write_all(b"X").await.is_err() {
                        break;
                    }
                    let mut byte = [0; 1];
                    let closed = tokio::time::timeout(Duration::ZERO, stream.read(&mut byte))
                        .await
                        .is_ok_and(|read| matches!(read, Ok(0) | Err(_)));
                    if closed {
                        break;
                    }
                }
                read_until_closed(&mut stream).await
            })
        })
        .collect();

    // Meanwhile, everyone else is served.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..20 {
        let response = reqwest::get(app.url("/api/v1/health")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    for slow in slow_clients {
        let received = slow.await.unwrap();
        assert!(
            received.is_empty() || received.starts_with(b"HTTP/1.1 408"),
            "a trickling client got an answer: {}",
            String::from_utf8_lossy(&received)
        );
    }
    // Each was cut off by the header deadline, far before it would have finished trickling.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn past_max_connections_new_ones_wait_for_a_free_slot() {
    let app = spawn_app_with(&[
        ("MAX_CONNECTIONS", "4"),
        ("HEADER_READ_TIMEOUT_MS", "60000"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect(&app).await);
    }
    // Give the server the moment it needs to accept them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let waiting = http.get(app.url("/api/v1/health")).send().await;
    assert!(
        waiting.as_ref().is_err_and(reqwest::Error::is_timeout),
        "a fifth connection was served while four were open: {waiting:?}"
    );

    // One slot frees up: the next connection is served.
    drop(held.pop());
    let mut served = None;
    for _ in 0..20 {
        if let Ok(response) = http.get(app.url("/api/v1/health")).send().await {
            served = Some(response.status());
            break;
        }
    }
    assert_eq!(served, Some(StatusCode::OK));
}
