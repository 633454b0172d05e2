//! Pod addresses on the loopback network: every 127.0.0.0/8 address reaches the host, so each pod
//! gets its own (from 127.1.0.1 up; never .0 or .255), unique while the pod lives.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Mutex;

const FIRST: u32 = u32::from_be_bytes([127, 1, 0, 1]);
const LAST: u32 = u32::from_be_bytes([127, 255, 255, 254]);

#[derive(Debug, Default)]
struct State {
    by_pod: BTreeMap<String, u32>,
    used: HashSet<u32>,
    cursor: u32,
}

/// Hands out loopback addresses to pods.
#[derive(Debug, Default)]
pub struct Ipam {
    state: Mutex<State>,
}

fn usable(ip: u32) -> bool {
    let last = ip & 0xff;
    (FIRST..=LAST).contains(&ip) && last != 0 && last != 255
}

impl Ipam {
    /// The pod's address: the one it already has, else `preferred` when free (a restarted agent
    /// keeps pods where they were), else the next free one.
    pub fn allocate(&self, pod_uid: &str, preferred: Option<&str>) -> Option<Ipv4Addr> {
        let mut s = self.state.lock().ok()?;
        if let Some(ip) = s.by_pod.get(pod_uid) {
            return Some(Ipv4Addr::from(*ip));
        }
        let wanted = preferred
            .and_then(|p| p.parse::<Ipv4Addr>().ok())
            .map(u32::from)
            .filter(|ip| usable(*ip) && !s.used.contains(ip));
        let ip = if let Some(ip) = wanted {
            ip
        } else {
            let mut candidate = s.cursor.max(FIRST);
            let mut tries: u32 = 0;
            while !usable(candidate) || s.used.contains(&candidate) {
                candidate = if candidate >= LAST {
                    FIRST
                } else {
                    candidate + 1
                };
                tries += 1;
                if tries > LAST - FIRST {
                    return None;
                }
            }
            s.cursor = candidate + 1;
            candidate
        };
        s.used.insert(ip);
        s.by_pod.insert(pod_uid.to_string(), ip);
        Some(Ipv4Addr::from(ip))
    }

    /// Frees the pod's address.
    pub fn release(&self, pod_uid: &str) {
        if let Ok(mut s) = self.state.lock()
            && let Some(ip) = s.by_pod.remove(pod_uid)
        {
            s.used.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_and_sticky() {
        let ipam = Ipam::default();
        let a = ipam.allocate("a", None).unwrap();
        let b = ipam.allocate("b", None).unwrap();
        assert_ne!(a, b);
        assert_eq!(ipam.allocate("a", None).unwrap(), a);
        assert_eq!(a, Ipv4Addr::new(127, 1, 0, 1));
        // A preferred address in use goes elsewhere; a free one is honoured.
        assert_ne!(ipam.allocate("c", Some("127.1.0.1")).unwrap(), a);
        assert_eq!(
            ipam.allocate("d", Some("127.9.9.9")).unwrap(),
            Ipv4Addr::new(127, 9, 9, 9)
        );
        assert_ne!(
            ipam.allocate("e", Some("127.0.0.1")).unwrap(),
            Ipv4Addr::LOCALHOST
        );
        ipam.release("a");
        assert_eq!(ipam.allocate("f", Some("127.1.0.1")).unwrap(), a);
    }

    #[test]
    fn skips_network_and_broadcast_octets() {
        let ipam = Ipam::default();
        for i in 0..600 {
            let ip = ipam.allocate(&i.to_string(), None).unwrap().octets();
            assert!(ip[3] != 0 && ip[3] != 255);
        }
    }
}
