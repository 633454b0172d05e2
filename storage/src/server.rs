//! The storagesvc HTTP server (Fission's protocol, docs/storage.md "Protocol"): hyper 1, no
//! framework. Uploads stream from the request into the store; downloads stream back out.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyDataStream, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::StorageError;
use crate::id::ArchiveId;
use crate::store::{StorageKind, Store};

/// Response body: a small buffer or a streamed archive.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Fission's upload answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UploadResponse {
    pub id: String,
}

/// The multipart field that carries the archive (Fission's client and CLI use it).
pub const UPLOAD_FIELD: &str = "uploadfile";

/// Header with the archive's size in bytes, required on upload.
pub const FILE_SIZE_HEADER: &str = "x-file-size";

/// Multipart framing around the file (boundaries, part headers, other small fields) allowed on
/// top of the archive size limit.
const MULTIPART_OVERHEAD: u64 = 1 << 20;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Addresses to listen on (port 0 picks a free one); Fission's port is 8000 on all
    /// interfaces, `rivulet up` uses loopback (and the pods' gateway with pod networks).
    pub listen: Vec<SocketAddr>,
    /// Largest archive accepted, in bytes; larger uploads get 413.
    pub max_archive_bytes: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from((
                Ipv4Addr::UNSPECIFIED,
                crate::DEFAULT_PORT,
            ))],
            max_archive_bytes: crate::DEFAULT_MAX_ARCHIVE_BYTES,
        }
    }
}

/// The storage service.
#[derive(Debug)]
pub struct Server;

/// A running server: its addresses, and how to stop it.
#[derive(Debug)]
pub struct ServerHandle {
    addrs: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Binds every address in `config.listen`, then serves `store` in the background until
    /// [`ServerHandle::shutdown`].
    pub async fn start(config: ServerConfig, store: Store) -> Result<ServerHandle, StorageError> {
        let state = Arc::new(State {
            store,
            max_archive_bytes: config.max_archive_bytes,
        });
        let mut listeners = Vec::new();
        for addr in &config.listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StorageError::Bind {
                    addr: *addr,
                    source,
                })?;
            let bound = listener.local_addr().map_err(|source| StorageError::Bind {
                addr: *addr,
                source,
            })?;
            listeners.push((listener, bound));
        }
        let (stop, stopped) = watch::channel(false);
        let addrs = listeners.iter().map(|(_, addr)| *addr).collect();
        let tasks = listeners
            .into_iter()
            .map(|(listener, addr)| {
                tracing::info!(%addr, "storage service listening");
                tokio::spawn(accept(listener, state.clone(), stopped.clone()))
            })
            .collect();
        Ok(ServerHandle { addrs, stop, tasks })
    }
}

impl ServerHandle {
    /// The bound addresses, in the order of `ServerConfig::listen`.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// `http://<first address>`, with an unspecified address (0.0.0.0, ::) as loopback: where a
    /// client on this machine reaches the service.
    pub fn url(&self) -> String {
        self.addrs.first().map_or_else(String::new, |addr| {
            let ip = match addr.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            format!("http://{}", SocketAddr::new(ip, addr.port()))
        })
    }

    /// Stops accepting connections; open ones finish their request and close.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

#[derive(Debug)]
struct State {
    store: Store,
    max_archive_bytes: u64,
}

async fn accept(listener: TcpListener, state: Arc<State>, mut stopped: watch::Receiver<bool>) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    // Typically out of file descriptors: pause instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop_requested(&mut stopped) => return,
        };
        let state = state.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, request).await) }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = stop_requested(&mut stopped) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
}

/// Resolves once a stop was requested (or the handle is gone); holds no guard across awaits.
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await.map(drop);
}

async fn handle(state: &State, request: Request<Incoming>) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = match path.as_str() {
        "/healthz" if method == Method::GET || method == Method::HEAD => empty(StatusCode::OK),
        "/healthz" => method_not_allowed("GET"),
        "/v1/archive" => match method {
            Method::POST => upload(state, request).await,
            Method::GET => match query_id(&request) {
                None => list(state).await,
                Some(id) => with_id(id, |id| download(state, id)).await,
            },
            Method::DELETE => match query_id(&request) {
                None => missing_id(),
                Some(id) => with_id(id, |id| delete(state, id)).await,
            },
            Method::HEAD => match query_id(&request) {
                None => missing_id(),
                Some(id) => with_id(id, |id| info(state, id)).await,
            },
            _ => method_not_allowed("GET, POST, DELETE, HEAD"),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            &format!("no route {path}: the storage service serves /v1/archive and /healthz"),
        ),
    };
    tracing::debug!(%method, %path, status = %response.status(), "storage request");
    response
}

/// The first `id` query parameter, if present (even empty: an empty id is refused, not a list).
fn query_id(request: &Request<Incoming>) -> Option<String> {
    let query = request.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "id")
        .map(|(_, value)| value.into_owned())
}

async fn with_id<F, Fut>(raw: String, then: F) -> Response<Body>
where
    F: FnOnce(ArchiveId) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    match ArchiveId::parse(&raw) {
        Ok(id) => then(id).await,
        Err(err) => error(&err),
    }
}

async fn list(state: &State) -> Response<Body> {
    match state.store.list().await {
        Ok(archives) => {
            let ids: Vec<&str> = archives.iter().map(|a| a.id.as_str()).collect();
            json(&ids)
        }
        Err(err) => error(&err),
    }
}

async fn download(state: &State, id: ArchiveId) -> Response<Body> {
    match state.store.get(&id).await {
        Ok((size, stream)) => {
            let frames = stream
                .map_ok(Frame::data)
                .map_err(|e| std::io::Error::other(e.to_string()));
            let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            nosniff(response)
        }
        Err(err) => error(&err),
    }
}

async fn delete(state: &State, id: ArchiveId) -> Response<Body> {
    match state.store.delete(&id).await {
        Ok(()) => {
            tracing::info!(%id, "archive deleted");
            empty(StatusCode::OK)
        }
        Err(err) => error(&err),
    }
}

/// Fission's `HEAD /v1/archive?id=`: 404 unless the archive exists, else the storage type
/// (`local`: archives are downloaded from this service, whatever the backend) and the bucket.
async fn info(state: &State, id: ArchiveId) -> Response<Body> {
    if let Err(err) = state.store.head(&id).await {
        return error(&err);
    }
    let mut response = empty(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert("x-fission-storagetype", HeaderValue::from_static("local"));
    if let Some(bucket) = state.store.bucket()
        && let Ok(value) = HeaderValue::from_str(bucket)
    {
        headers.insert("x-fission-bucket", value);
    }
    if state.store.kind() != StorageKind::Local && state.store.kind() != StorageKind::Memory {
        tracing::debug!(%id, kind = ?state.store.kind(), "archive served from a cloud store");
    }
    response
}

/// Why an upload was refused: the status and the rule broken.
struct Refused(StatusCode, String);

async fn upload(state: &State, request: Request<Incoming>) -> Response<Body> {
    match receive(state, request).await {
        Ok(id) => {
            tracing::info!(%id, "archive uploaded");
            json(&UploadResponse { id: id.to_string() })
        }
        Err(Refused(status, message)) => text(status, &message),
    }
}

async fn receive(state: &State, request: Request<Incoming>) -> Result<ArchiveId, Refused> {
    let bad = |message: String| Refused(StatusCode::BAD_REQUEST, message);
    let limit = state.max_archive_bytes;
    let too_large = |size: u64| {
        Refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "archive of {size} bytes or more exceeds this service's limit of {limit} bytes"
            ),
        )
    };
    // Checked before reading the body: the size decides whether to read it at all.
    let declared = match request.headers().get(FILE_SIZE_HEADER) {
        None => {
            return Err(bad(
                "missing X-File-Size header: an upload must give the archive's size in bytes"
                    .into(),
            ));
        }
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                bad(format!(
                    "bad X-File-Size header {value:?}: expected the archive's size in bytes"
                ))
            })?,
    };
    if declared > limit {
        return Err(too_large(declared));
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        bad(format!(
            "failed to parse request: expected Content-Type multipart/form-data with a boundary, got {content_type:?}"
        ))
    })?;
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(limit + MULTIPART_OVERHEAD));
    let body = BodyDataStream::new(request.into_body());
    let mut multipart = multer::Multipart::with_constraints(body, boundary, constraints);
    let parse_error = |err: multer::Error| match err {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            too_large(limit + 1)
        }
        other => bad(format!("failed to parse request: {other}")),
    };

    loop {
        let Some(mut field) = multipart.next_field().await.map_err(parse_error)? else {
            return Err(bad(format!(
                "missing upload file: the multipart form has no field {UPLOAD_FIELD:?}"
            )));
        };
        if field.name() != Some(UPLOAD_FIELD) {
            // Other fields are ignored, as by Fission; read past them.
            while field.chunk().await.map_err(parse_error)?.is_some() {}
            continue;
        }
        let id = ArchiveId::generate().map_err(|e| internal(&e))?;
        let mut writer = state.store.writer(&id).await.map_err(|e| internal(&e))?;
        let copied = async {
            while let Some(chunk) = field.chunk().await.map_err(parse_error)? {
                if writer.written() + chunk.len() as u64 > declared {
                    return Err(bad(format!(
                        "size mismatch: X-File-Size says {declared} bytes, the uploaded file is larger"
                    )));
                }
                writer.write(&chunk).await.map_err(|e| internal(&e))?;
            }
            if writer.written() != declared {
                return Err(bad(format!(
                    "size mismatch: X-File-Size says {declared} bytes, the uploaded file has {}",
                    writer.written()
                )));
            }
            Ok(())
        }
        .await;
        return match copied {
            Ok(()) => {
                writer.finish().await.map_err(|e| internal(&e))?;
                Ok(id)
            }
            Err(refused) => {
                writer.abort().await;
                Err(refused)
            }
        };
    }
}

fn internal(err: &StorageError) -> Refused {
    tracing::warn!(error = %err, "cannot save an uploaded archive");
    Refused(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("error saving uploaded file: {err}"),
    )
}

fn error(err: &StorageError) -> Response<Body> {
    let status = match err {
        StorageError::NotFound { .. } => StatusCode::NOT_FOUND,
        StorageError::InvalidId { .. } => StatusCode::BAD_REQUEST,
        _ => {
            tracing::warn!(error = %err, "storage request failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    text(status, &err.to_string())
}

fn missing_id() -> Response<Body> {
    text(
        StatusCode::BAD_REQUEST,
        "missing `id' query param: this request names one archive (?id=<id>)",
    )
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = text(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method not allowed here; allowed: {allow}"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn full(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(
        Full::new(body)
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    if !content_type.is_empty() {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    nosniff(response)
}

fn empty(status: StatusCode) -> Response<Body> {
    full(status, "", Bytes::new())
}

/// Like Go's `http.Error`: the message and a newline, as plain text.
fn text(status: StatusCode, message: &str) -> Response<Body> {
    full(
        status,
        "text/plain; charset=utf-8",
        Bytes::from(format!("{message}\n")),
    )
}

fn json<T: serde::Serialize>(value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => full(StatusCode::OK, "application/json", Bytes::from(body)),
        Err(err) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("error marshaling response: {err}"),
        ),
    }
}

fn nosniff(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
