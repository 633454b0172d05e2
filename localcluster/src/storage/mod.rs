//! Durable object storage: every object in memory, every write in an fsynced write-ahead log.
//!
//! Design (why): the API server needs ordered reads, a global monotonic resourceVersion, a watch
//! history and consistent list snapshots; an in-memory `BTreeMap` per resource gives all of those
//! directly, and an append-only log with checksummed records makes each acknowledged write
//! survive `kill -9`. Concurrent writers are batched into one `fsync` (group commit) by a
//! dedicated committer thread, so throughput scales with concurrency on slow disks. The log is
//! periodically folded into a snapshot file (written aside, fsynced, renamed) and truncated.
//!
//! Visibility: a write is applied to the in-memory map at once (so that later writers see it for
//! optimistic concurrency), but it is published to watchers only after it is durable, and the
//! HTTP layer waits for durability before answering any read that could reveal it. No client
//! ever observes a write that a crash could lose, so a resourceVersion is never reused.

mod wal;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::private;

/// Number of events kept for watch resumption and paginated snapshots; older versions → 410.
pub const DEFAULT_HISTORY: usize = 20_000;
/// Fold the log into a snapshot once it grows past this size.
const SNAPSHOT_AFTER_BYTES: u64 = 64 * 1024 * 1024;
const BROADCAST_CAPACITY: usize = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("corrupt snapshot {0}")]
    CorruptSnapshot(PathBuf),
}

/// Identity of a stored object. `resource` is the storage key of its kind, `group/plural`
/// (`/pods` for the core group), shared by all versions of that kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

/// One stored version of an object: the value (with `metadata.resourceVersion` set) and its JSON.
#[derive(Debug)]
pub struct Stored {
    pub rv: u64,
    pub value: Value,
    pub json: Bytes,
}

impl Stored {
    fn new(rv: u64, mut value: Value) -> Arc<Stored> {
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Arc::new(Stored { rv, value, json })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A committed change. For deletes `object` is the last state, stamped with the delete's version.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub key: Key,
    pub object: Arc<Stored>,
    pub prev: Option<Arc<Stored>>,
    /// The watch line of this event in storage form, encoded once for every watcher.
    pub encoded: std::sync::OnceLock<Bytes>,
}

/// What the writer expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Absent,
    /// The object exists with exactly this resourceVersion.
    Version(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// The object was absent, present, or at another version than expected.
    Mismatch { current: Option<u64> },
    /// The store is closed (the server is shutting down).
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub oldest: u64,
}

/// Live events of every resource.
pub type Subscription = broadcast::Receiver<Arc<Event>>;

type Objects = HashMap<String, BTreeMap<(String, String), Arc<Stored>>>;

#[derive(Debug)]
struct State {
    objects: Objects,
    rv: u64,
    log: VecDeque<Arc<Event>>,
    /// Every event with a version above this one is in `log`.
    compacted_rv: u64,
    history: usize,
    /// uid → key of every live object (GC: "does the owner exist").
    uids: HashMap<String, Key>,
    /// owner uid → dependents' keys.
    dependents: HashMap<String, HashSet<Key>>,
}

#[derive(Debug, Default)]
struct Pending {
    events: Vec<Arc<Event>>,
    shutdown: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    pending: Mutex<Pending>,
    wake: Condvar,
    events: broadcast::Sender<Arc<Event>>,
    durable: watch::Sender<u64>,
    dir: PathBuf,
}

/// The store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    shared: Arc<Shared>,
    committer: Arc<Mutex<Option<JoinHandle<()>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Key of an object value, from its metadata.
fn key_of(resource: &str, value: &Value) -> Key {
    let meta = &value["metadata"];
    Key {
        resource: resource.to_string(),
        namespace: meta["namespace"].as_str().unwrap_or_default().to_string(),
        name: meta["name"].as_str().unwrap_or_default().to_string(),
    }
}

fn owner_uids(value: &Value) -> Vec<String> {
    value["metadata"]["ownerReferences"]
        .as_array()
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r["uid"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn uid_of(value: &Value) -> Option<&str> {
    value["metadata"]["uid"].as_str()
}

impl State {
    fn index_remove(&mut self, key: &Key, value: &Value) {
        if let Some(uid) = uid_of(value) {
            self.uids.remove(uid);
        }
        for owner in owner_uids(value) {
            if let Some(set) = self.dependents.get_mut(&owner) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(&owner);
                }
            }
        }
    }

    fn index_insert(&mut self, key: &Key, value: &Value) {
        if let Some(uid) = uid_of(value) {
            self.uids.insert(uid.to_string(), key.clone());
        }
        for owner in owner_uids(value) {
            self.dependents
                .entry(owner)
                .or_default()
                .insert(key.clone());
        }
    }

    fn put(&mut self, key: &Key, stored: &Arc<Stored>) -> Option<Arc<Stored>> {
        let map = self.objects.entry(key.resource.clone()).or_default();
        let prev = map.insert((key.namespace.clone(), key.name.clone()), stored.clone());
        if let Some(p) = &prev {
            self.index_remove(key, &p.value);
        }
        self.index_insert(key, &stored.value);
        prev
    }

    fn remove(&mut self, key: &Key) -> Option<Arc<Stored>> {
        let prev = self
            .objects
            .get_mut(&key.resource)
            .and_then(|m| m.remove(&(key.namespace.clone(), key.name.clone())));
        if let Some(p) = &prev {
            self.index_remove(key, &p.value);
        }
        prev
    }

    fn get(&self, key: &Key) -> Option<&Arc<Stored>> {
        self.objects
            .get(&key.resource)?
            .get(&(key.namespace.clone(), key.name.clone()))
    }

    fn push_log(&mut self, event: Arc<Event>) {
        self.log.push_back(event);
        while self.log.len() > self.history {
            if let Some(old) = self.log.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
    }
}

/// Payload of a log record for `event`.
fn record_payload(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(event.object.json.len() + 96);
    let head = json!({
        "rv": event.rv,
        "r": event.key.resource,
        "ns": event.key.namespace,
        "n": event.key.name,
    });
    let head = serde_json::to_vec(&head).unwrap_or_default();
    // `{"rv":..,...}` → splice `,"o":<object>` before the closing brace for puts.
    out.extend_from_slice(&head[..head.len() - 1]);
    if event.kind != EventType::Deleted {
        out.extend_from_slice(b",\"o\":");
        out.extend_from_slice(&event.object.json);
    }
    out.push(b'}');
    out
}

const WAL_FILE: &str = "wal.log";
const SNAPSHOT_FILE: &str = "snapshot.db";

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Recover objects and the latest version from the snapshot and the log; truncate a torn tail.
fn recover(dir: &Path) -> Result<(Objects, u64, File), StorageError> {
    let mut objects: Objects = HashMap::new();
    let mut rv = 0u64;
    let snap_path = dir.join(SNAPSHOT_FILE);
    if snap_path.exists() {
        let mut f = File::open(&snap_path).map_err(io_err(&snap_path))?;
        let (records, _) = wal::read_records(&mut f).map_err(io_err(&snap_path))?;
        let mut iter = records.into_iter();
        let header = iter
            .next()
            .ok_or_else(|| StorageError::CorruptSnapshot(snap_path.clone()))?;
        rv = header["snapshot_rv"]
            .as_u64()
            .ok_or_else(|| StorageError::CorruptSnapshot(snap_path.clone()))?;
        for rec in iter {
            let r = rec["r"].as_str().unwrap_or_default().to_string();
            let Some(obj) = rec.get("o").cloned() else {
                continue;
            };
            let orv = rec["rv"].as_u64().unwrap_or(0);
            let key = key_of(&r, &obj);
            objects
                .entry(r)
                .or_default()
                .insert((key.namespace, key.name), Stored::new(orv, obj));
        }
    }
    let wal_path = dir.join(WAL_FILE);
    let mut wal = private::file_options()
        .read(true)
        .append(true)
        .create(true)
        .open(&wal_path)
        .map_err(io_err(&wal_path))?;
    let (records, valid) = wal::read_records(&mut wal).map_err(io_err(&wal_path))?;
    let len = wal.metadata().map_err(io_err(&wal_path))?.len();
    if valid < len {
        tracing::warn!(valid, len, "truncating torn tail of the write-ahead log");
        wal.set_len(valid).map_err(io_err(&wal_path))?;
        wal.sync_all().map_err(io_err(&wal_path))?;
    }
    wal.seek(SeekFrom::End(0)).map_err(io_err(&wal_path))?;
    for rec in records {
        let Some(rrv) = rec["rv"].as_u64() else {
            continue;
        };
        if rrv <= rv {
            continue; // already folded into the snapshot
        }
        rv = rrv;
        let r = rec["r"].as_str().unwrap_or_default().to_string();
        let ns = rec["ns"].as_str().unwrap_or_default().to_string();
        let n = rec["n"].as_str().unwrap_or_default().to_string();
        let map = objects.entry(r).or_default();
        match rec.get("o") {
            Some(obj) => {
                map.insert((ns, n), Stored::new(rrv, obj.clone()));
            }
            None => {
                map.remove(&(ns, n));
            }
        }
    }
    sync_dir(dir)?;
    Ok((objects, rv, wal))
}

impl Store {
    /// Open (or create) the store in `dir`, recovering its contents.
    pub fn open(dir: &Path, history: usize) -> Result<Store, StorageError> {
        Store::open_with(dir, history, SNAPSHOT_AFTER_BYTES)
    }

    /// As [`Store::open`], folding the log into a snapshot once it passes `snapshot_after` bytes.
    pub fn open_with(
        dir: &Path,
        history: usize,
        snapshot_after: u64,
    ) -> Result<Store, StorageError> {
        // Owner-only: the log and the snapshot hold every Secret (crate::private).
        private::ensure_dir(dir).map_err(io_err(dir))?;
        for file in [WAL_FILE, SNAPSHOT_FILE] {
            let path = dir.join(file);
            private::narrow(&path, private::FILE_MODE).map_err(io_err(&path))?;
        }
        let (objects, rv, wal) = recover(dir)?;
        let mut state = State {
            objects: HashMap::new(),
            rv,
            log: VecDeque::new(),
            compacted_rv: rv,
            history: history.max(1),
            uids: HashMap::new(),
            dependents: HashMap::new(),
        };
        for (resource, map) in objects {
            for ((ns, name), stored) in map {
                let key = Key {
                    resource: resource.clone(),
                    namespace: ns,
                    name,
                };
                state.put(&key, &stored);
            }
        }
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let (durable, _) = watch::channel(rv);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            events,
            durable,
            dir: dir.to_path_buf(),
        });
        let worker = shared.clone();
        let handle = std::thread::Builder::new()
            .name("localcluster-wal".into())
            .spawn(move || committer(&worker, wal, snapshot_after))
            .map_err(io_err(dir))?;
        Ok(Store {
            shared,
            committer: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// Stop the committer after it has made every pending write durable.
    pub fn close(&self) {
        self.request_close();
        if let Some(handle) = lock(&self.committer).take() {
            let _ = handle.join();
        }
    }

    /// Ask the committer to stop once pending writes are durable, without waiting for it.
    pub fn request_close(&self) {
        lock(&self.shared.pending).shutdown = true;
        self.shared.wake.notify_all();
    }

    /// The latest assigned resourceVersion (durable or about to be).
    pub fn current_rv(&self) -> u64 {
        lock(&self.shared.state).rv
    }

    /// Wait until every write up to `rv` is durable and published.
    pub async fn wait_durable(&self, rv: u64) {
        let mut rx = self.shared.durable.subscribe();
        let _ = rx.wait_for(|d| *d >= rv).await;
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Stored>> {
        lock(&self.shared.state).get(key).cloned()
    }

    /// Whether a live object has this uid.
    pub fn uid_exists(&self, uid: &str) -> bool {
        lock(&self.shared.state).uids.contains_key(uid)
    }

    /// Key of the live object with this uid.
    pub fn key_of_uid(&self, uid: &str) -> Option<Key> {
        lock(&self.shared.state).uids.get(uid).cloned()
    }

    /// Keys of the objects whose ownerReferences name `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<Key> {
        lock(&self.shared.state)
            .dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Owner uids that are referenced by some object but no longer exist.
    pub fn dangling_owners(&self) -> Vec<String> {
        let st = lock(&self.shared.state);
        st.dependents
            .keys()
            .filter(|u| !st.uids.contains_key(*u))
            .cloned()
            .collect()
    }

    /// Whether `resource` has any object (in `namespace`, if given). O(log n).
    pub fn has_objects(&self, resource: &str, namespace: Option<&str>) -> bool {
        let st = lock(&self.shared.state);
        let Some(map) = st.objects.get(resource) else {
            return false;
        };
        match namespace {
            None => !map.is_empty(),
            Some(ns) => map
                .range((ns.to_string(), String::new())..)
                .next()
                .is_some_and(|((n, _), _)| n == ns),
        }
    }

    /// Every stored resource key with at least one object.
    pub fn resources(&self) -> Vec<String> {
        lock(&self.shared.state)
            .objects
            .iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Objects of `resource` (in `namespace` if given) as of version `at` (latest if `None`),
    /// ordered by (namespace, name), starting strictly after `after`. Returns the snapshot version.
    pub fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
        at: Option<u64>,
        after: Option<&(String, String)>,
    ) -> Result<(Vec<Arc<Stored>>, u64), Expired> {
        let st = lock(&self.shared.state);
        let snapshot = at.unwrap_or(st.rv).min(st.rv);
        if snapshot < st.compacted_rv {
            return Err(Expired {
                oldest: st.compacted_rv,
            });
        }
        let empty = BTreeMap::new();
        let map = st.objects.get(resource).unwrap_or(&empty);
        let in_scope = |k: &(String, String)| {
            namespace.is_none_or(|ns| k.0 == ns) && after.is_none_or(|a| k > a)
        };
        // Undo the events newer than the snapshot, newest first, so the oldest state wins.
        let mut overlay: BTreeMap<(String, String), Option<Arc<Stored>>> = BTreeMap::new();
        for ev in st.log.iter().rev() {
            if ev.rv <= snapshot {
                break;
            }
            if ev.key.resource == resource {
                overlay.insert(
                    (ev.key.namespace.clone(), ev.key.name.clone()),
                    ev.prev.clone(),
                );
            }
        }
        let start: std::ops::Bound<(String, String)> = match (after, namespace) {
            (Some(a), _) => std::ops::Bound::Excluded(a.clone()),
            (None, Some(ns)) => std::ops::Bound::Included((ns.to_string(), String::new())),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let mut items = Vec::new();
        if overlay.is_empty() {
            for (k, v) in map.range((start, std::ops::Bound::Unbounded)) {
                if namespace.is_some_and(|ns| k.0 != ns) {
                    break;
                }
                if in_scope(k) {
                    items.push(v.clone());
                }
            }
        } else {
            let mut merged: BTreeMap<&(String, String), Arc<Stored>> = map
                .range((start, std::ops::Bound::Unbounded))
                .filter(|(k, _)| in_scope(k))
                .map(|(k, v)| (k, v.clone()))
                .collect();
            for (k, prev) in &overlay {
                if !in_scope(k) {
                    continue;
                }
                match prev {
                    Some(p) => {
                        merged.insert(k, p.clone());
                    }
                    None => {
                        merged.remove(k);
                    }
                }
            }
            items = merged.into_values().collect();
        }
        Ok((items, snapshot))
    }

    /// Subscribe to published events, replaying those after `from` from history.
    /// `Err` when `from` is older than the history window.
    pub fn watch_from(&self, from: u64) -> Result<(Vec<Arc<Event>>, Subscription), Expired> {
        let st = lock(&self.shared.state);
        if from < st.compacted_rv {
            return Err(Expired {
                oldest: st.compacted_rv,
            });
        }
        let published = *self.shared.durable.borrow();
        let rx = self.shared.events.subscribe();
        let replay = st
            .log
            .iter()
            .filter(|e| e.rv > from && e.rv <= published)
            .cloned()
            .collect();
        Ok((replay, rx))
    }

    /// Subscribe to events after the current state; returns the state's objects and version.
    pub fn snapshot_and_watch(
        &self,
        resource: &str,
        namespace: Option<&str>,
    ) -> (Vec<Arc<Stored>>, u64, broadcast::Receiver<Arc<Event>>) {
        let st = lock(&self.shared.state);
        let rx = self.shared.events.subscribe();
        let items = st
            .objects
            .get(resource)
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| namespace.is_none_or(|ns| k.0 == ns))
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default();
        (items, st.rv, rx)
    }

    /// Apply one write if the object is in the expected state. `new = None` deletes.
    /// Returns the committed event (not yet durable: await [`Store::wait_durable`]).
    pub fn commit(
        &self,
        key: &Key,
        expect: Expect,
        new: Option<Value>,
    ) -> Result<Arc<Event>, CommitError> {
        let mut st = lock(&self.shared.state);
        if lock(&self.shared.pending).shutdown {
            return Err(CommitError::Closed);
        }
        let current = st.get(key).cloned();
        let ok = match (expect, &current) {
            (Expect::Absent, None) => true,
            (Expect::Version(v), Some(c)) => c.rv == v,
            _ => false,
        };
        if !ok {
            return Err(CommitError::Mismatch {
                current: current.map(|c| c.rv),
            });
        }
        st.rv += 1;
        let rv = st.rv;
        let event = if let Some(value) = new {
            let stored = Stored::new(rv, value);
            let prev = st.put(key, &stored);
            let kind = if prev.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            };
            Event {
                rv,
                kind,
                key: key.clone(),
                object: stored,
                prev,
                encoded: std::sync::OnceLock::new(),
            }
        } else {
            let prev = st.remove(key);
            let last = prev.as_ref().map_or(Value::Null, |p| p.value.clone());
            Event {
                rv,
                kind: EventType::Deleted,
                key: key.clone(),
                object: Stored::new(rv, last),
                prev,
                encoded: std::sync::OnceLock::new(),
            }
        };
        let event = Arc::new(event);
        st.push_log(event.clone());
        lock(&self.shared.pending).events.push(event.clone());
        drop(st);
        self.shared.wake.notify_one();
        Ok(event)
    }
}

/// The committer thread: batch pending events into one fsync, then publish them.
fn committer(shared: &Shared, mut wal: File, snapshot_after: u64) {
    let wal_path = shared.dir.join(WAL_FILE);
    let mut wal_bytes = wal.metadata().map_or(0, |m| m.len());
    let mut buf = Vec::new();
    loop {
        let (batch, shutdown) = {
            let mut p = lock(&shared.pending);
            while p.events.is_empty() && !p.shutdown {
                p = shared.wake.wait(p).unwrap_or_else(PoisonError::into_inner);
            }
            (std::mem::take(&mut p.events), p.shutdown)
        };
        if !batch.is_empty() {
            write_batch(shared, &mut wal, &wal_path, &batch, &mut buf);
            wal_bytes += buf.len() as u64;
        }
        if shutdown && lock(&shared.pending).events.is_empty() {
            return;
        }
        if wal_bytes > snapshot_after {
            match take_snapshot(shared, &mut wal, &wal_path, &mut buf) {
                Ok(()) => wal_bytes = 0,
                Err(e) => tracing::error!(error = %e, "snapshot failed; the log keeps growing"),
            }
        }
    }
}

fn write_batch(
    shared: &Shared,
    wal: &mut File,
    wal_path: &Path,
    batch: &[Arc<Event>],
    buf: &mut Vec<u8>,
) {
    buf.clear();
    for ev in batch {
        wal::frame(buf, &record_payload(ev));
    }
    // A write that cannot be made durable must not be acknowledged: keep retrying, loudly.
    let before = wal.metadata().map(|m| m.len()).ok();
    while let Err(e) = wal::append_durable(wal, buf) {
        tracing::error!(path = %wal_path.display(), error = %e, "write-ahead log append failed; retrying");
        std::thread::sleep(std::time::Duration::from_millis(500));
        // Drop a partial append so the retry does not duplicate bytes.
        if let Some(len) = before {
            let _ = wal.set_len(len);
        }
    }
    let last = batch.last().map_or(0, |e| e.rv);
    {
        let _st = lock(&shared.state);
        for ev in batch {
            let _ = shared.events.send(ev.clone());
        }
        shared.durable.send_replace(last);
    }
}

fn take_snapshot(
    shared: &Shared,
    wal: &mut File,
    wal_path: &Path,
    buf: &mut Vec<u8>,
) -> Result<(), StorageError> {
    let (objects, rv, batch) = {
        let st = lock(&shared.state);
        let batch = std::mem::take(&mut lock(&shared.pending).events);
        (st.objects.clone(), st.rv, batch)
    };
    if !batch.is_empty() {
        write_batch(shared, wal, wal_path, &batch, buf);
    }
    let tmp = shared.dir.join("snapshot.tmp");
    let mut out = Vec::new();
    wal::frame(
        &mut out,
        &serde_json::to_vec(&json!({ "snapshot_rv": rv })).unwrap_or_default(),
    );
    for (resource, map) in &objects {
        for stored in map.values() {
            let mut payload =
                serde_json::to_vec(&json!({ "rv": stored.rv, "r": resource })).unwrap_or_default();
            payload.pop();
            payload.extend_from_slice(b",\"o\":");
            payload.extend_from_slice(&stored.json);
            payload.push(b'}');
            wal::frame(&mut out, &payload);
        }
    }
    let mut f = private::file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    wal::append_durable(&mut f, &out).map_err(io_err(&tmp))?;
    let snap = shared.dir.join(SNAPSHOT_FILE);
    fs::rename(&tmp, &snap).map_err(io_err(&snap))?;
    sync_dir(&shared.dir)?;
    // Records up to `rv` are now in the snapshot; recovery skips them if truncation is lost.
    wal.set_len(0).map_err(io_err(wal_path))?;
    wal.sync_all().map_err(io_err(wal_path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("lc-store-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The log and snapshot hold Secrets: owner-only, and a store left readable by an older
    /// version is narrowed when opened.
    #[test]
    fn store_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = temp_dir("modes");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join(WAL_FILE), b"").unwrap();
        fs::set_permissions(dir.join(WAL_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        let store = Store::open_with(&dir, 10, 1).unwrap();
        let first = store
            .commit(&key("a"), Expect::Absent, Some(obj("a", 1)))
            .unwrap();
        // A batch taken before the close folds the log; one taken together with the close
        // does not, so wait for the first write to be durable before closing.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while *store.shared.durable.borrow() < first.rv {
            assert!(
                std::time::Instant::now() < deadline,
                "write never became durable"
            );
            std::thread::yield_now();
        }
        store
            .commit(&key("b"), Expect::Absent, Some(obj("b", 1)))
            .unwrap();
        store.close();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(WAL_FILE)), 0o600);
        assert!(
            dir.join(SNAPSHOT_FILE).exists(),
            "snapshot_after=1 folds the log"
        );
        assert_eq!(mode(&dir.join(SNAPSHOT_FILE)), 0o600);
    }

    fn key(name: &str) -> Key {
        Key {
            resource: "/configmaps".into(),
            namespace: "default".into(),
            name: name.into(),
        }
    }

    fn obj(name: &str, v: i64) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")}, "data": {"v": v}})
    }

    fn names(items: &[Arc<Stored>]) -> Vec<(String, i64)> {
        items
            .iter()
            .map(|s| {
                (
                    s.value["metadata"]["name"].as_str().unwrap().to_string(),
                    s.value["data"]["v"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn commits_check_expectations_and_assign_increasing_versions() {
        let dir = temp_dir("commit");
        let store = Store::open(&dir, 100).unwrap();
        let a = store
            .commit(&key("a"), Expect::Absent, Some(obj("a", 1)))
            .unwrap();
        assert_eq!(
            store
                .commit(&key("a"), Expect::Absent, Some(obj("a", 2)))
                .err(),
            Some(CommitError::Mismatch {
                current: Some(a.rv)
            })
        );
        let b = store
            .commit(&key("a"), Expect::Version(a.rv), Some(obj("a", 2)))
            .unwrap();
        assert!(b.rv > a.rv && b.kind == EventType::Modified);
        assert_eq!(
            b.object.value["metadata"]["resourceVersion"],
            b.rv.to_string()
        );
        let d = store
            .commit(&key("a"), Expect::Version(b.rv), None)
            .unwrap();
        assert_eq!(d.kind, EventType::Deleted);
        assert_eq!(
            d.object.value["metadata"]["resourceVersion"],
            d.rv.to_string()
        );
        assert!(store.get(&key("a")).is_none());
        store.close();
        assert_eq!(
            store
                .commit(&key("z"), Expect::Absent, Some(obj("z", 1)))
                .err(),
            Some(CommitError::Closed)
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lists_at_an_older_version_undo_later_writes() {
        let dir = temp_dir("snapshot");
        let store = Store::open(&dir, 100).unwrap();
        let a = store
            .commit(&key("a"), Expect::Absent, Some(obj("a", 1)))
            .unwrap();
        let b = store
            .commit(&key("b"), Expect::Absent, Some(obj("b", 1)))
            .unwrap();
        let snapshot = b.rv;
        store
            .commit(&key("a"), Expect::Version(a.rv), Some(obj("a", 2)))
            .unwrap();
        store
            .commit(&key("b"), Expect::Version(b.rv), None)
            .unwrap();
        store
            .commit(&key("c"), Expect::Absent, Some(obj("c", 1)))
            .unwrap();
        let (now, _) = store
            .list("/configmaps", Some("default"), None, None)
            .unwrap();
        assert_eq!(names(&now), [("a".into(), 2), ("c".into(), 1)]);
        let (then, rv) = store
            .list("/configmaps", Some("default"), Some(snapshot), None)
            .unwrap();
        assert_eq!(rv, snapshot);
        assert_eq!(names(&then), [("a".into(), 1), ("b".into(), 1)]);
        let after_a = ("default".to_string(), "a".to_string());
        let (page, _) = store
            .list("/configmaps", None, Some(snapshot), Some(&after_a))
            .unwrap();
        assert_eq!(names(&page), [("b".into(), 1)]);
        store.close();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn history_window_expires_old_versions() {
        let dir = temp_dir("history");
        let store = Store::open(&dir, 3).unwrap();
        let first = store
            .commit(&key("a"), Expect::Absent, Some(obj("a", 1)))
            .unwrap();
        for n in ["b", "c", "d", "e"] {
            store
                .commit(&key(n), Expect::Absent, Some(obj(n, 1)))
                .unwrap();
        }
        assert!(store.watch_from(first.rv).is_err());
        assert!(
            store
                .list("/configmaps", None, Some(first.rv), None)
                .is_err()
        );
        assert!(store.watch_from(store.current_rv() - 1).is_ok());
        store.close();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn snapshots_fold_the_log_and_recover() {
        let dir = temp_dir("fold");
        // Fold after every batch.
        let store = Store::open_with(&dir, 100, 1).unwrap();
        let mut last = 0;
        for i in 0..20 {
            let n = format!("o{i:02}");
            let ev = store
                .commit(&key(&n), Expect::Absent, Some(obj(&n, i)))
                .unwrap();
            last = ev.rv;
            // One batch per write: wait until the committer has made it durable.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while *store.shared.durable.borrow() < last {
                assert!(
                    std::time::Instant::now() < deadline,
                    "write {last} never became durable"
                );
                std::thread::yield_now();
            }
        }
        store
            .commit(&key("o00"), Expect::Version(last - 19), None)
            .unwrap();
        store.close();
        assert!(dir.join(SNAPSHOT_FILE).exists());
        assert!(fs::metadata(dir.join(WAL_FILE)).unwrap().len() < 1024);
        let reopened = Store::open(&dir, 100).unwrap();
        let (items, rv) = reopened.list("/configmaps", None, None, None).unwrap();
        assert_eq!(items.len(), 19);
        assert_eq!(rv, last + 1);
        reopened.close();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn recovery_replays_the_log_and_drops_a_torn_tail() {
        let dir = temp_dir("recover");
        let store = Store::open(&dir, 100).unwrap();
        let a = store
            .commit(&key("a"), Expect::Absent, Some(obj("a", 1)))
            .unwrap();
        store
            .commit(&key("b"), Expect::Absent, Some(obj("b", 1)))
            .unwrap();
        store
            .commit(&key("a"), Expect::Version(a.rv), Some(obj("a", 2)))
            .unwrap();
        let last = store
            .commit(&key("b"), Expect::Version(a.rv + 1), None)
            .unwrap();
        store.close();
        let mut wal = fs::OpenOptions::new()
            .append(true)
            .open(dir.join(WAL_FILE))
            .unwrap();
        std::io::Write::write_all(&mut wal, &[9, 0, 0, 0, 0xde, 0xad]).unwrap();
        drop(wal);
        let reopened = Store::open(&dir, 100).unwrap();
        assert_eq!(reopened.current_rv(), last.rv);
        let (items, _) = reopened.list("/configmaps", None, None, None).unwrap();
        assert_eq!(names(&items), [("a".into(), 2)]);
        assert!(reopened.uid_exists("uid-a") && !reopened.uid_exists("uid-b"));
        let next = reopened
            .commit(&key("c"), Expect::Absent, Some(obj("c", 1)))
            .unwrap();
        assert_eq!(next.rv, last.rv + 1);
        reopened.close();
        fs::remove_dir_all(&dir).unwrap();
    }
}
