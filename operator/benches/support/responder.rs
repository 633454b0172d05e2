//! A function runtime that costs next to nothing, so a benchmark through a proxy measures the
//! proxy: every request (the fetcher's `/v2/specialize` included) gets `200 ok` as soon as its
//! body has been read. The benchmark binary is the runtime: `rivulet up`'s image table maps
//! [`IMAGE`] to this executable with [`MODE_VAR`] set, and `main` calls [`serve_if_asked`] first.
//!
//! HTTP/1.1 keep-alive with `Content-Length` bodies only (what the router, nginx, wrk and the
//! fetcher send); anything else closes the connection.
#![allow(dead_code)]

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The image name Environments use to get this runtime.
pub const IMAGE: &str = "rivulet-bench/responder";
/// Set in the pod's environment by the image table: run as the responder.
pub const MODE_VAR: &str = "RIVULET_BENCH_RESPONDER";

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";

/// Adds [`IMAGE`] to the image table of `rivulet up`'s data dir (the agent reloads the file).
pub fn register(data_dir: &Path) {
    let exe = std::env::current_exe().unwrap();
    std::fs::write(
        data_dir.join("images.yaml"),
        format!(
            "images:\n  - image: {IMAGE}\n    command: [{exe:?}]\n    env: {{{MODE_VAR}: \"1\"}}\n",
            exe = exe.display().to_string()
        ),
    )
    .unwrap();
}

/// Runs the responder (never returns) when this process was started as one.
pub fn serve_if_asked() {
    if std::env::var_os(MODE_VAR).is_none() {
        return;
    }
    let host = std::env::var("RIVULET_BIND_ADDRESS").unwrap_or_else(|_| "0.0.0.0".into());
    let port = std::env::var("RIVULET_RUNTIME_PORT").unwrap_or_else(|_| "8888".into());
    // One worker thread: a pod's runtime should not compete with the proxy for both cores.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = TcpListener::bind(format!("{host}:{port}")).await.unwrap();
        println!("listening on http://{}", listener.local_addr().unwrap());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection(stream));
        }
    });
    std::process::exit(0);
}

async fn connection(mut stream: TcpStream) {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        // Read up to the end of the headers.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if !read_more(&mut stream, &mut buf).await {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
        };
        if header("transfer-encoding:").is_some() {
            return;
        }
        let length: usize = header("content-length:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let close = header("connection:").is_some_and(|v| v == "close");
        // Discard the body, keeping what follows it (the next request).
        let mut body_left = length.saturating_sub(buf.len() - head_end);
        buf.drain(..(head_end + length).min(buf.len()));
        let mut chunk = vec![0u8; if body_left > 0 { 64 * 1024 } else { 0 }];
        while body_left > 0 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) if n > body_left => {
                    buf.extend_from_slice(&chunk[body_left..n]);
                    body_left = 0;
                }
                Ok(n) => body_left -= n,
            }
        }
        if stream.write_all(ANSWER).await.is_err() || close {
            return;
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    buf.reserve(16 * 1024);
    matches!(stream.read_buf(buf).await, Ok(n) if n > 0)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
