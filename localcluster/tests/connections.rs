//! Issue 15.7: the API server closes connections that stall (no TLS handshake, half a request
//! head, idle keep-alive), keeps long watches, and caps connections per client address.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rivulet_localcluster::connections::ConnectionLimits;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any expected close may take (far above the limits used here).
const DEADLINE: Duration = Duration::from_secs(10);

async fn tls(env: &common::Env) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(env.cluster.ca_pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(env.cluster.addr()).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

/// Reads until the peer closes; returns when it did, or `None` if it is still open at `within`.
async fn closed_within(stream: &mut (impl AsyncRead + Unpin), within: Duration) -> Option<Instant> {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(Instant::now()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_are_closed_and_watches_are_kept() {
    let limits = ConnectionLimits {
        handshake_timeout: Duration::from_millis(300),
        header_read_timeout: Duration::from_millis(500),
        ..ConnectionLimits::default()
    };
    let env = common::start_with("conn-timeouts", |c| c.connections = limits.clone()).await;

    // No TLS handshake at all.
    let started = Instant::now();
    let mut silent = TcpStream::connect(env.cluster.addr()).await.unwrap();
    let closed = closed_within(&mut silent, DEADLINE).await.expect("closed");
    assert!(
        closed - started >= limits.handshake_timeout,
        "{:?}",
        closed - started
    );

    // Half a request head.
    let mut half = tls(&env).await;
    let started = Instant::now();
    half.write_all(b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let closed = closed_within(&mut half, DEADLINE).await.expect("closed");
    assert!(
        closed - started >= limits.header_read_timeout,
        "{:?}",
        closed - started
    );

    // Idle after a complete request: answered, then closed once idle.
    let mut idle = tls(&env).await;
    let request = format!(
        "GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\r\n",
        env.cluster.token()
    );
    idle.write_all(request.as_bytes()).await.unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    assert!(
        closed_within(&mut idle, DEADLINE).await.is_some(),
        "idle keep-alive closed"
    );

    // A watch is one long response: it outlives the head timeout several times over.
    let mut watch = tls(&env).await;
    let request = format!(
        "GET /api/v1/namespaces?watch=true HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\r\n",
        env.cluster.token()
    );
    watch.write_all(request.as_bytes()).await.unwrap();
    assert!(
        closed_within(&mut watch, limits.header_read_timeout * 4)
            .await
            .is_none(),
        "a watch must not be cut by the header timeout"
    );
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_address_gets_at_most_the_cap() {
    let limits = ConnectionLimits {
        max_per_client: 4,
        ..ConnectionLimits::default()
    };
    let env = common::start_with("conn-cap", |c| c.connections = limits.clone()).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tls(&env).await);
    }
    // The fifth is closed at once (the handshake timeout here is 10 s, so this is the cap).
    let mut fifth = TcpStream::connect(env.cluster.addr()).await.unwrap();
    assert!(
        closed_within(&mut fifth, Duration::from_secs(5))
            .await
            .is_some(),
        "a connection over the cap must be closed"
    );
    // The held ones still work.
    let request = format!(
        "GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\r\n",
        env.cluster.token()
    );
    held[0].write_all(request.as_bytes()).await.unwrap();
    let mut status = [0u8; 12];
    held[0].read_exact(&mut status).await.unwrap();
    assert_eq!(&status, b"HTTP/1.1 200");

    // Closing one frees its slot: a new connection is served again.
    drop(held.pop());
    common::eventually(DEADLINE, "a freed slot", || async {
        let mut again = TcpStream::connect(env.cluster.addr()).await.ok()?;
        // Still open after a moment: accepted (waiting for its handshake), not refused.
        closed_within(&mut again, Duration::from_millis(200))
            .await
            .is_none()
            .then_some(())
    })
    .await;
    env.cluster.shutdown().await;
}
