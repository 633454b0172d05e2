//! How long and how many connections the API server keeps.
//!
//! Without limits, a client that opens connections and never uses them (or sends half a request)
//! holds a task and a socket each forever: 9,000 idle connections stayed open until the test
//! ended. The values follow kube-apiserver's serving defaults where it has one:
//!
//! - TLS handshake: 10 s (Go's `TLSHandshakeTimeout` convention).
//! - Request head: 100 s. hyper starts this clock when it waits for the next request head, so it
//!   is also the keep-alive idle timeout (kube-apiserver has two, `ReadHeaderTimeout` 32 s and an
//!   idle timeout; hyper has one). It is longer than the 90 s kube-rs (hyper-util's pool) and Go
//!   clients (`IdleConnTimeout`) keep an idle connection, so the client always closes first and
//!   never sends a request on a connection the server is closing at that instant (with a shorter
//!   value that race turns into sporadic request errors in every component). A watch is one long response,
//!   so it is never cut by it. Slow heads are bounded by the per-client cap below.
//! - Connections per client address: 512. Every local client comes from 127.0.0.1, and kube-rs
//!   holds one HTTP/1.1 connection per watch, so the cap must leave room for every component's
//!   watches (a few dozen in `rivulet up`) while stopping a flood. kube-apiserver has no such cap
//!   (it limits requests in flight instead); on one machine one process must not be able to take
//!   every socket of the server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The API server's connection limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest TLS handshake.
    pub handshake_timeout: Duration,
    /// Longest wait for a complete request head, idle keep-alive time included.
    pub header_read_timeout: Duration,
    /// Most connections open at once from one client address.
    pub max_per_client: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(100),
            max_per_client: 512,
        }
    }
}

/// Open connections per client address.
#[derive(Debug, Default)]
pub struct ClientSlots {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection; frees its slot when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<ClientSlots>,
    client: IpAddr,
}

impl ClientSlots {
    /// A slot for a new connection from `client`, or `None` when it has `max` open already.
    pub fn acquire(self: &Arc<Self>, client: IpAddr, max: usize) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(client).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: self.clone(),
            client,
        })
    }

    /// Connections open from `client`.
    #[cfg(test)]
    fn open(&self, client: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&client).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_at_most_max_slots_and_dropping_one_frees_it() {
        let slots = Arc::new(ClientSlots::default());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.1.0.7".parse().unwrap();
        let held: Vec<Slot> = (0..3).map(|_| slots.acquire(a, 3).unwrap()).collect();
        assert!(slots.acquire(a, 3).is_none(), "a fourth connection from a");
        let other = slots.acquire(b, 3).expect("other clients are not affected");
        assert_eq!(slots.open(a), 3);
        drop(held);
        assert_eq!(slots.open(a), 0);
        assert!(slots.acquire(a, 3).is_some());
        drop(other);
        assert!(
            slots.open.lock().unwrap().is_empty(),
            "no entry left behind"
        );
    }
}
