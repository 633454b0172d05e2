//! Pod addresses on the loopback network: every 127.0.0.0/8 address reaches the host, so each pod
//! gets its own (never .0 or .255), unique while the pod lives.
//!
//! Every agent on the machine shares that network, so each one first claims a block
//! `127.B.0.0/16` (B from 1 to 254) by holding an exclusive `flock` on `127.B.lock` in a
//! directory all users share ([`Block::claim`]). The kernel drops the lock when the agent's
//! process ends, however it ends, so a crashed agent never keeps its block; a restarted one asks
//! for its previous block first, so its pods keep their addresses. Two `rivulet up` on one host
//! never hand out the same address (issue 16.3).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Mutex;

use nix::fcntl::{Flock, FlockArg};

/// Never handed out: a bridged agent's pods would be on 169.254.169.0/24, where clouds keep their
/// metadata address (`network.rs`).
const SKIPPED: u8 = 169;

/// A `127.B.0.0/16` block held by this process (see the module documentation).
#[derive(Debug)]
pub struct Block {
    octet: u8,
    /// Held for the agent's life; dropping it frees the block.
    _lock: Option<Flock<File>>,
}

impl Block {
    /// Claims the first free block, `preferred` first. `registry` is shared by every agent on the
    /// machine (created world-writable and sticky, like `/tmp`, so agents of different users
    /// coordinate).
    pub fn claim(registry: &Path, preferred: Option<u8>) -> std::io::Result<Block> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        // In a directory every user may write: never follow a symlink someone planted (the
        // registry itself or a lock file), so nothing is created or opened elsewhere.
        match std::fs::symlink_metadata(registry) {
            Ok(meta) if meta.file_type().is_symlink() || !meta.is_dir() => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{} is not a directory (a symlink?)", registry.display()),
                ));
            }
            Ok(_) => {}
            Err(_) => {
                std::fs::create_dir_all(registry)?;
                std::fs::set_permissions(registry, std::fs::Permissions::from_mode(0o1777))?;
            }
        }
        let no_follow = nix::fcntl::OFlag::O_NOFOLLOW.bits();
        let candidates = preferred
            .into_iter()
            .chain(1..=254)
            .filter(|b| (1..=254).contains(b) && *b != SKIPPED);
        for octet in candidates {
            let path = registry.join(format!("127.{octet}.lock"));
            // Read-only is enough for flock, and works on a file another user created.
            let file = match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(no_follow)
                .open(&path)
            {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    std::fs::OpenOptions::new()
                        .read(true)
                        .custom_flags(no_follow)
                        .open(&path)?
                }
                // A planted symlink (ELOOP) or anything else: not ours, try the next block.
                Err(_) => continue,
            };
            if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                return Ok(Block {
                    octet,
                    _lock: Some(lock),
                });
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "all 254 pod address blocks in {} are held by running agents",
                registry.display()
            ),
        ))
    }

    /// The block's second octet.
    pub fn octet(&self) -> u8 {
        self.octet
    }
}

impl Default for Block {
    /// Block 1 without a lock, for tests that run a single agent.
    fn default() -> Self {
        Block {
            octet: 1,
            _lock: None,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    by_pod: BTreeMap<String, u32>,
    used: HashSet<u32>,
    cursor: u32,
}

/// Hands out the addresses of one [`Block`] to pods: `127.B.0.1`–`127.B.255.254` on the host's
/// loopback, or the range of the agent's bridge (`network.rs`).
#[derive(Debug)]
pub struct Ipam {
    block: Block,
    first: u32,
    last: u32,
    state: Mutex<State>,
}

impl Default for Ipam {
    fn default() -> Self {
        Self::new(Block::default())
    }
}

impl Ipam {
    /// Loopback addresses of `block`.
    pub fn new(block: Block) -> Self {
        let b = block.octet();
        Self::with_range(
            block,
            Ipv4Addr::new(127, b, 0, 1),
            Ipv4Addr::new(127, b, 255, 254),
        )
    }

    /// Addresses `first..=last`, for `block`'s bridge.
    pub fn with_range(block: Block, first: Ipv4Addr, last: Ipv4Addr) -> Self {
        Self {
            block,
            first: u32::from(first),
            last: u32::from(last),
            state: Mutex::default(),
        }
    }

    /// The block's second octet.
    pub fn block(&self) -> u8 {
        self.block.octet()
    }

    fn first(&self) -> u32 {
        self.first
    }

    fn last(&self) -> u32 {
        self.last
    }

    fn usable(&self, ip: u32) -> bool {
        let last = ip & 0xff;
        (self.first()..=self.last()).contains(&ip) && last != 0 && last != 255
    }

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
            .filter(|ip| self.usable(*ip) && !s.used.contains(ip));
        let (first, last) = (self.first(), self.last());
        let ip = if let Some(ip) = wanted {
            ip
        } else {
            let mut candidate = s.cursor.clamp(first, last);
            let mut tries: u32 = 0;
            while !self.usable(candidate) || s.used.contains(&candidate) {
                candidate = if candidate >= last {
                    first
                } else {
                    candidate + 1
                };
                tries += 1;
                if tries > last - first {
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
            ipam.allocate("d", Some("127.1.9.9")).unwrap(),
            Ipv4Addr::new(127, 1, 9, 9)
        );
        let outside = ipam.allocate("g", Some("127.9.9.9")).unwrap();
        assert_eq!(
            outside.octets()[1],
            1,
            "another block's address is not taken"
        );
        assert_ne!(
            ipam.allocate("e", Some("127.0.0.1")).unwrap(),
            Ipv4Addr::LOCALHOST
        );
        ipam.release("a");
        assert_eq!(ipam.allocate("f", Some("127.1.0.1")).unwrap(), a);
    }

    #[test]
    fn agents_claim_distinct_blocks_and_a_dropped_claim_frees_its_block() {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("blocks");
        let first = Block::claim(&registry, None).unwrap();
        let second = Block::claim(&registry, Some(first.octet())).unwrap();
        assert_ne!(
            first.octet(),
            second.octet(),
            "a held block is not handed out"
        );
        let third = Block::claim(&registry, Some(200)).unwrap();
        assert_eq!(third.octet(), 200, "a free preferred block is honoured");
        let octet = first.octet();
        drop(first);
        assert_eq!(Block::claim(&registry, Some(octet)).unwrap().octet(), octet);
        let ipam = Ipam::new(third);
        assert_eq!(
            ipam.allocate("a", None).unwrap(),
            Ipv4Addr::new(127, 200, 0, 1)
        );
    }

    #[test]
    fn planted_symlinks_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("blocks");
        std::fs::create_dir(&registry).unwrap();
        let target = dir.path().join("created-elsewhere");
        std::os::unix::fs::symlink(&target, registry.join("127.1.lock")).unwrap();
        assert_eq!(Block::claim(&registry, None).unwrap().octet(), 2);
        assert!(!target.exists(), "nothing created through the symlink");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&registry, &link).unwrap();
        assert!(
            Block::claim(&link, None).is_err(),
            "a symlinked registry is refused"
        );
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
