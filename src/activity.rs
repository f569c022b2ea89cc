//! Traffic to the app, seen from the kernel, for the adaptive drain.
//!
//! drainit shares the app's network namespace, so it can tell when load
//! balancers have stopped sending. A [`Snapshot`] holds the server side of
//! every connection to a listening port (socket cookie, port, source address
//! and, for a live connection, `tcpi_bytes_received`, from sock_diag over
//! netlink; TIME_WAIT included, where a connection the server closed stays a
//! minute however short it was), and the namespace's count of accepted
//! connections (`PassiveOpens` in /proc/net/snmp). Between two snapshots, a
//! watched port saw traffic if one of its connections is new or received
//! bytes. What `PassiveOpens` counted beyond the new connections seen on any
//! port came and went between the two looks, too fast to tell its port or
//! source: it counts as traffic, so that no drain ends while connections
//! still arrive. Without netlink, /proc/net/tcp{,6} stands in (connections
//! and their receive queues, no byte counters).
//!
//! What it costs: a sample reads /proc/net/snmp and, only if TCP received a
//! segment since the last one, looks further, cheapest first (see
//! [`Sampler::sample`]): `PassiveOpens` alone where every connection
//! counts, then the connections busy at the last sample, each looked up by
//! its socket id, and only then a dump of the sockets, which walks the
//! kernel's whole table of connections (the kernel keeping only those of
//! listening ports, with the one attribute read). The comparisons here are
//! pure and unit-tested; [`Sampler::sample`] does the reading, through
//! [`crate::sys::Netlink`] and /proc.

mod diag;
mod filter;

use std::fmt;
use std::time::Duration;

pub use diag::{
    bytecode, lookup, parse, parse_proc_net_tcp, request, Dump, SocketId, TcpSocket, CONNECTIONS,
    LISTENERS,
};
pub use filter::{parse_port, Cidr, Watch};

use crate::sys::{self, Netlink};

const TCP_LISTEN: u8 = 10;
/// States of a connection that carries traffic and whose bytes are read.
const LIVE_STATES: [u8; 7] = [1, 3, 4, 5, 8, 9, 11];
/// Connections per port that a sample looks up first, alone, before it asks
/// for the whole table: those that received bytes in the sample before.
const BUSY_PER_PORT: usize = 2;

/// A server-side connection of a watched port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Connection {
    key: u128,
    port: u16,
    /// Bytes received, if the connection is live (not TIME_WAIT).
    received: Option<u64>,
}

/// What the traffic looked like at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    counters: Counters,
    /// Connections to watched listening ports from sources that count, by key.
    watched: Vec<Connection>,
    /// Keys of the other connections to listening ports (other ports,
    /// ignored sources), by key: new ones are not traffic, but they are not
    /// connections that came and went unseen either.
    others: Vec<u128>,
    /// The watched ports something listens on.
    listening: Vec<u16>,
    /// New connections this snapshot saw before `PassiveOpens` counted
    /// them (it is read first, and a connection accepted while the kernel
    /// dumps the sockets can be in both): the next snapshot's count has them.
    ahead: u64,
    /// The port of the one TCP listener, if every connection it accepts
    /// counts (no other listener, watched, no source ignored): then
    /// `PassiveOpens` alone tells that it had new connections.
    sole_port: Option<u16>,
    /// Keys of live watched connections that received bytes since the
    /// snapshot before, at most [`BUSY_PER_PORT`] per port: the next sample
    /// looks them up first.
    busy: Vec<u128>,
}

impl Snapshot {
    /// Sorts `sockets` (from one or more dumps) into what `watch` counts and the rest.
    pub fn new(counters: Counters, sockets: &[TcpSocket], watch: &Watch) -> Snapshot {
        let mut listeners: Vec<u16> = sockets
            .iter()
            .filter(|s| s.state == TCP_LISTEN)
            .map(|s| s.local_port)
            .collect();
        listeners.sort_unstable();
        listeners.dedup();
        let mut snapshot = Snapshot {
            counters,
            ..Snapshot::default()
        };
        for socket in sockets {
            if socket.state == TCP_LISTEN || listeners.binary_search(&socket.local_port).is_err() {
                continue;
            }
            if watch.watches(socket.local_port) && !watch.ignores(&socket.remote) {
                let live = LIVE_STATES.contains(&socket.state);
                snapshot.watched.push(Connection {
                    key: socket.key,
                    port: socket.local_port,
                    received: live.then_some(socket.received),
                });
            } else {
                snapshot.others.push(socket.key);
            }
        }
        snapshot.watched.sort_unstable_by_key(|c| c.key);
        snapshot.others.sort_unstable();
        snapshot.sole_port = match listeners[..] {
            [port] if watch.watches(port) && watch.ignore_from.is_empty() => Some(port),
            _ => None,
        };
        listeners.retain(|&port| watch.watches(port));
        snapshot.listening = listeners;
        snapshot
    }

    /// Records the bytes connections of this snapshot have now (`None`:
    /// gone, or no longer live), as [`Sampler`] looked them up one by one,
    /// and returns the keys of those that received more since this snapshot
    /// (or since the bytes last recorded): the next [`Snapshot::since`]
    /// compares with these bytes, so the same bytes do not count twice.
    fn record_bytes(&mut self, looked_up: &[(u128, Option<u64>)]) -> Vec<u128> {
        let mut more = Vec::new();
        for &(key, now) in looked_up {
            let Ok(at) = self.watched.binary_search_by_key(&key, |c| c.key) else {
                continue;
            };
            let known = &mut self.watched[at].received;
            if now.is_some() && now != *known {
                *known = now;
                more.push(key);
            }
        }
        more
    }

    /// Each port `watch` watches (every listening one when it names none),
    /// none of them active yet.
    fn watched_ports(&self, watch: &Watch) -> Vec<(u16, bool)> {
        let ports = if watch.ports.is_empty() {
            &self.listening
        } else {
            &watch.ports
        };
        ports.iter().map(|&p| (p, false)).collect()
    }

    /// Connections to watched listening ports.
    pub fn connections(&self) -> usize {
        self.watched.len()
    }

    /// What came in between `before` and this snapshot, port by port.
    pub fn since(&mut self, before: &Snapshot, watch: &Watch) -> Seen {
        let mut ports = self.watched_ports(watch);
        let mut new = 0u64;
        let mut busy: Vec<(u16, u128)> = Vec::new();
        let mut earlier = before.watched.iter().peekable();
        for connection in &self.watched {
            while earlier.next_if(|c| c.key < connection.key).is_some() {}
            let changed = match earlier.next_if(|c| c.key == connection.key) {
                None => {
                    new += 1;
                    true
                }
                Some(old) => old.received != connection.received && connection.received.is_some(),
            };
            if changed {
                mark_active(&mut ports, connection.port);
                let on_port = busy.iter().filter(|(p, _)| *p == connection.port).count();
                if connection.received.is_some_and(|bytes| bytes > 0) && on_port < BUSY_PER_PORT {
                    busy.push((connection.port, connection.key));
                }
            }
        }
        self.busy = busy.into_iter().map(|(_, key)| key).collect();
        let mut earlier = before.others.iter().peekable();
        for key in &self.others {
            while earlier.next_if(|k| *k < key).is_some() {}
            if earlier.next_if(|k| *k == key).is_none() {
                new += 1;
            }
        }
        let opened = match (before.counters.passive_opens, self.counters.passive_opens) {
            (Some(before), Some(now)) => now.saturating_sub(before),
            _ => 0,
        };
        ports.sort_unstable();
        self.ahead = new.saturating_sub(opened);
        Seen {
            ports,
            unplaced: opened.saturating_sub(new + before.ahead),
            cost: Duration::ZERO,
        }
    }
}

/// Marks `port` as having had traffic (adding it if a listener came since).
fn mark_active(ports: &mut Vec<(u16, bool)>, port: u16) {
    match ports.iter_mut().find(|(p, _)| *p == port) {
        Some((_, active)) => *active = true,
        None => ports.push((port, true)),
    }
}

/// What one sample saw since the one before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Each watched port (every listening port when none is given), and
    /// whether it had a new connection or received bytes.
    pub ports: Vec<(u16, bool)>,
    /// Connections accepted and gone between the two samples, on a port and
    /// from a source the sampler cannot tell: they count as traffic.
    pub unplaced: u64,
    /// The CPU time the sample took, the kernel's work for it included.
    pub cost: Duration,
}

impl Seen {
    /// A sample that saw `active` traffic on one port (for tests of the timeline).
    pub fn on_port(port: u16, active: bool) -> Seen {
        Seen {
            ports: vec![(port, active)],
            ..Seen::default()
        }
    }

    /// Whether anything counted came in.
    pub fn any(&self) -> bool {
        self.unplaced > 0 || self.ports.iter().any(|&(_, active)| active)
    }
}

/// Samples with traffic, port by port, over a drain: for the line that ends it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    ports: Vec<(u16, u32)>,
    unplaced: u32,
}

impl Tally {
    /// Counts one sample.
    pub fn add(&mut self, seen: &Seen) {
        for &(port, active) in &seen.ports {
            let at = match self.ports.binary_search_by_key(&port, |&(p, _)| p) {
                Ok(at) => at,
                Err(at) => {
                    self.ports.insert(at, (port, 0));
                    at
                }
            };
            self.ports[at].1 += u32::from(active);
        }
        self.unplaced += u32::from(seen.unplaced > 0);
    }
}

impl fmt::Display for Tally {
    /// `port 8080 in 21, port 8443 in 0` and, if any, `connections too brief to place in 3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ports.is_empty() {
            f.write_str("no listening port")?;
        }
        for (i, (port, samples)) in self.ports.iter().enumerate() {
            let comma = if i > 0 { ", " } else { "" };
            write!(f, "{comma}port {port} in {samples}")?;
        }
        if self.unplaced > 0 {
            write!(
                f,
                ", connections too brief to tell their port in {}",
                self.unplaced
            )?;
        }
        Ok(())
    }
}

/// Samples the traffic, comparing each snapshot with the one before.
#[derive(Debug, Default)]
pub struct Sampler {
    watch: Watch,
    last: Option<Snapshot>,
    /// The counters at the sample before: with no segment since, nothing came in.
    counters: Counters,
    /// The connections that received bytes in the sample before.
    busy: Vec<Busy>,
    /// Reused between samples: the sockets of the latest dumps.
    sockets: Vec<TcpSocket>,
}

/// A connection that received bytes in the sample before, and how to ask
/// the kernel for it alone.
#[derive(Debug, Clone, Copy)]
struct Busy {
    key: u128,
    port: u16,
    id: SocketId,
}

impl Sampler {
    /// A sampler of what `watch` counts.
    pub fn new(watch: Watch) -> Sampler {
        Sampler {
            watch,
            ..Sampler::default()
        }
    }

    /// What came in since the last sample (nothing, for the first), or why
    /// the traffic cannot be measured. The first sample refuses what would
    /// look quiet for want of seeing: no `PassiveOpens` to count connections
    /// too brief for a snapshot, or nothing listening on the watched ports.
    ///
    /// From the cheapest look to the dearest: no TCP segment since the
    /// sample before, nothing came in; else, if the app's one listener
    /// accepted a connection (`PassiveOpens`) and every connection counts,
    /// or if a connection that received bytes then received more since
    /// (looked up alone, a few µs each), traffic goes on; else the kernel's
    /// whole table of connections, compared with the last one taken.
    pub fn sample(&mut self) -> Result<(Seen, &Snapshot), String> {
        let started = sys::thread_cpu_time();
        let counters = read_counters();
        let previous = std::mem::replace(&mut self.counters, counters);
        let segments_came = counters.in_segs.is_none() || counters.in_segs != previous.in_segs;
        let accepted = match (previous.passive_opens, counters.passive_opens) {
            (Some(before), Some(now)) => now > before,
            _ => false,
        };
        let seen = match self.last.take() {
            Some(last) if !segments_came => {
                let ports = last.watched_ports(&self.watch);
                self.last = Some(last);
                Seen {
                    ports,
                    ..Seen::default()
                }
            }
            // Every connection accepted counts, and one was: traffic. As
            // after `busy_again`, the connections stay those of the last walk.
            Some(last) if accepted && last.sole_port.is_some() => {
                let mut ports = last.watched_ports(&self.watch);
                if let Some(port) = last.sole_port {
                    mark_active(&mut ports, port);
                }
                ports.sort_unstable();
                self.last = Some(last);
                Seen {
                    ports,
                    ..Seen::default()
                }
            }
            mut last => match last.as_mut().and_then(|last| self.busy_again(last)) {
                Some(seen) => {
                    self.last = last;
                    seen
                }
                None => {
                    let mut snapshot = self.measure(counters)?;
                    let seen = match &last {
                        Some(last) => snapshot.since(last, &self.watch),
                        None => {
                            self.refuse_blindness(&snapshot)?;
                            Seen::default()
                        }
                    };
                    self.busy = self
                        .sockets
                        .iter()
                        .filter(|s| snapshot.busy.contains(&s.key))
                        .filter_map(|s| {
                            Some(Busy {
                                key: s.key,
                                port: s.local_port,
                                id: s.id?,
                            })
                        })
                        .collect();
                    self.last = Some(snapshot);
                    seen
                }
            },
        };
        let seen = Seen {
            cost: sys::thread_cpu_time().saturating_sub(started),
            ..seen
        };
        match &self.last {
            Some(last) => Ok((seen, last)),
            None => Err("no snapshot".to_string()),
        }
    }

    /// The connections that received bytes in the sample before, each
    /// looked up alone: if one received more since, the sample has seen
    /// traffic and looks no further (walking the kernel's table costs
    /// thousands of lookups: it visits every bucket and every connection of
    /// every namespace of the machine). `last` then keeps the bytes just
    /// read, and its set of connections stays the one of the last walk: a
    /// connection opened meanwhile is new to the next walk, which counts it
    /// as traffic, so a drain ends a sample late rather than early. The
    /// other ports of this sample count only what their own busy
    /// connections received. `None`: none received more, or the kernel
    /// cannot be asked; the sample walks the table.
    fn busy_again(&mut self, last: &mut Snapshot) -> Option<Seen> {
        if self.busy.is_empty() {
            return None;
        }
        let netlink = Netlink::sock_diag().ok()?;
        let mut reply = Vec::new();
        let looked_up: Vec<(u128, Option<u64>)> = self
            .busy
            .iter()
            .map(|busy| (busy.key, look_up(&netlink, &busy.id, &mut reply)))
            .collect();
        let more = last.record_bytes(&looked_up);
        self.busy.retain(|busy| more.contains(&busy.key));
        if self.busy.is_empty() {
            return None;
        }
        let mut ports = last.watched_ports(&self.watch);
        for busy in &self.busy {
            mark_active(&mut ports, busy.port);
        }
        ports.sort_unstable();
        Some(Seen {
            ports,
            ..Seen::default()
        })
    }

    /// The first sample refuses what would look quiet for want of seeing.
    fn refuse_blindness(&self, snapshot: &Snapshot) -> Result<(), String> {
        if snapshot.counters.passive_opens.is_none() {
            return Err(
                "/proc/net/snmp has no PassiveOpens to read, so connections that \
                        open and close between two samples would go unseen"
                    .to_string(),
            );
        }
        if snapshot.listening.is_empty() {
            return Err(match self.watch.ports.as_slice() {
                [] => "the app has no TCP listener".to_string(),
                ports => format!("nothing listens on TCP port {}", list(ports)),
            });
        }
        Ok(())
    }

    /// Takes a snapshot of the traffic of this network namespace.
    fn measure(&mut self, counters: Counters) -> Result<Snapshot, String> {
        self.sockets.clear();
        if let Err(netlink_error) = sock_diag_sockets(&mut self.sockets) {
            self.sockets.clear();
            proc_net_sockets(&mut self.sockets).map_err(|proc_error| {
                format!("sock_diag: {netlink_error}; /proc/net/tcp: {proc_error}")
            })?;
        }
        Ok(Snapshot::new(counters, &self.sockets, &self.watch))
    }
}

/// The namespace's TCP counters from /proc/net/snmp, where it can be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections accepted (`PassiveOpens`).
    pub passive_opens: Option<u64>,
    /// Segments received (`InSegs`).
    pub in_segs: Option<u64>,
}

fn read_counters() -> Counters {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    Counters {
        passive_opens: tcp_counter(&snmp, "PassiveOpens"),
        in_segs: tcp_counter(&snmp, "InSegs"),
    }
}

/// `8080`, `8080 or 8443`, `80, 8080 or 8443`.
fn list(ports: &[u16]) -> String {
    let text: Vec<String> = ports.iter().map(u16::to_string).collect();
    match text.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => text.join(""),
    }
}

/// The listeners and the connections to a listening port, IPv4 and IPv6,
/// from sock_diag: the listeners first (a dump that does not walk the table
/// of connections), then the connections with tcp_info, the kernel keeping
/// only those of the listening ports (a bytecode filter: not the app's own
/// connections to others). One dump for both families; two where the kernel
/// refuses the older request that allows it.
fn sock_diag_sockets(out: &mut Vec<TcpSocket>) -> Result<(), String> {
    let netlink = Netlink::sock_diag().map_err(|e| e.to_string())?;
    // Datagrams of a dump are at most 32 KiB: room to spare.
    let mut buffer = vec![0u8; 64 * 1024];
    let mut dump = |family, states, ports: &[u16], info, out: &mut Vec<TcpSocket>| {
        netlink
            .send(&request(family, states, ports, info))
            .map_err(|e| e.to_string())?;
        loop {
            let len = netlink.recv(&mut buffer).map_err(|e| e.to_string())?;
            if parse(&buffer[..len], out)? == Dump::Done {
                return Ok::<(), String>(());
            }
        }
    };
    let families: &[Option<u8>] = match dump(None, LISTENERS, &[], false, out) {
        Ok(()) => &[None],
        Err(_) => {
            out.clear();
            for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
                dump(Some(family), LISTENERS, &[], false, out)?;
            }
            &[Some(libc::AF_INET as u8), Some(libc::AF_INET6 as u8)]
        }
    };
    let mut ports: Vec<u16> = out.iter().map(|s| s.local_port).collect();
    ports.sort_unstable();
    ports.dedup();
    if ports.is_empty() {
        return Ok(());
    }
    for &family in families {
        dump(family, CONNECTIONS, &ports, true, out)?;
    }
    Ok(())
}

/// The bytes a live connection has received, asked of the kernel for that
/// one socket; `None` if it is gone (ENOENT), no longer live, or the kernel
/// does not answer.
fn look_up(netlink: &Netlink, id: &SocketId, reply: &mut Vec<TcpSocket>) -> Option<u64> {
    // One message: the socket's and its tcp_info, under 512 bytes.
    let mut buffer = [0u8; 1024];
    netlink.send(&lookup(id)).ok()?;
    let len = netlink.recv(&mut buffer).ok()?;
    reply.clear();
    parse(&buffer[..len], reply).ok()?;
    let socket = reply.first()?;
    LIVE_STATES
        .contains(&socket.state)
        .then_some(socket.received)
}

fn proc_net_sockets(out: &mut Vec<TcpSocket>) -> Result<(), String> {
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        out.extend(parse_proc_net_tcp(&text));
    }
    Ok(())
}

/// Counter `name` (`PassiveOpens`, `InSegs`) of the `Tcp:` lines of /proc/net/snmp.
pub fn tcp_counter(snmp: &str, name: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let column = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(column)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBER: [u8; 4] = [10, 0, 3, 1];
    const CLIENT: [u8; 4] = [10, 0, 9, 9];

    fn socket(state: u8, local_port: u16, key: u128, received: u64, from: [u8; 4]) -> TcpSocket {
        TcpSocket {
            state,
            local_port,
            remote: std::net::Ipv4Addr::from(from).to_ipv6_mapped().octets(),
            key,
            received,
            id: None,
        }
    }

    fn opens(passive_opens: u64) -> Counters {
        Counters {
            passive_opens: Some(passive_opens),
            in_segs: None,
        }
    }

    fn listener(port: u16) -> TcpSocket {
        socket(TCP_LISTEN, port, u128::from(port), 0, [0; 4])
    }

    fn watch(ports: &[u16], ignore: &[&str]) -> Watch {
        Watch {
            ports: ports.to_vec(),
            ignore_from: ignore.iter().map(|c| Cidr::parse(c).unwrap()).collect(),
        }
    }

    fn seen(before: (u64, &[TcpSocket]), now: (u64, &[TcpSocket]), watch: &Watch) -> Seen {
        let before = Snapshot::new(opens(before.0), before.1, watch);
        Snapshot::new(opens(now.0), now.1, watch).since(&before, watch)
    }

    #[test]
    fn a_snapshot_keeps_connections_to_listening_ports() {
        let sockets = [
            listener(8080),
            socket(1, 8080, 2, 100, CLIENT),  // a client of the app
            socket(6, 8080, 3, 0, CLIENT),    // TIME_WAIT: kept, to see it is not new
            socket(1, 40000, 4, 100, CLIENT), // the app's own connection to a database
        ];
        let snapshot = Snapshot::new(opens(7), &sockets, &Watch::default());
        assert_eq!(snapshot.connections(), 2);
        assert_eq!(snapshot.listening, vec![8080]);
    }

    #[test]
    fn new_connections_and_received_bytes_are_traffic_on_their_port() {
        let w = Watch::default();
        let base = [listener(80), listener(9090), socket(1, 80, 2, 100, CLIENT)];
        let quiet = seen((7, &base), (7, &base), &w);
        assert_eq!(quiet.ports, vec![(80, false), (9090, false)]);
        assert!(!quiet.any());
        // Bytes on a keep-alive connection.
        let more = [listener(80), listener(9090), socket(1, 80, 2, 150, CLIENT)];
        assert_eq!(
            seen((7, &base), (7, &more), &w).ports,
            vec![(80, true), (9090, false)]
        );
        // A new connection, accepted (PassiveOpens + 1) and still there.
        let new = [
            base[0].clone(),
            base[1].clone(),
            base[2].clone(),
            socket(1, 9090, 3, 0, CLIENT),
        ];
        let s = seen((7, &base), (8, &new), &w);
        assert_eq!((s.ports, s.unplaced), (vec![(80, false), (9090, true)], 0));
        // A connection the server closed, already in TIME_WAIT.
        let closed = [
            base[0].clone(),
            base[1].clone(),
            base[2].clone(),
            socket(6, 80, 4, 0, CLIENT),
        ];
        assert_eq!(seen((7, &base), (8, &closed), &w).ports[0], (80, true));
        // A connection that came and went: only the counter shows it.
        let s = seen((7, &base), (8, &base), &w);
        assert_eq!((s.any(), s.unplaced), (true, 1));
        // A TIME_WAIT socket going away is not traffic.
        assert!(!seen((8, &closed), (8, &base), &w).any());
    }

    #[test]
    fn a_connection_seen_before_passive_opens_counted_it_is_not_counted_twice() {
        let w = Watch::default();
        let base = [listener(80), socket(1, 80, 2, 100, CLIENT)];
        let new = [
            base[0].clone(),
            base[1].clone(),
            socket(1, 80, 3, 0, CLIENT),
        ];
        let before = Snapshot::new(opens(7), &base, &w);
        // Seen in the dump, not yet in the counter read just before it.
        let mut early = Snapshot::new(opens(7), &new, &w);
        assert!(early.since(&before, &w).any());
        // Counted now: no connection came and went unseen.
        let mut later = Snapshot::new(opens(8), &new, &w);
        let s = later.since(&early, &w);
        assert_eq!((s.any(), s.unplaced), (false, 0));
        // One more, unseen, is still traffic.
        let mut again = Snapshot::new(opens(9), &new, &w);
        assert_eq!(again.since(&early, &w).unplaced, 1);
    }

    #[test]
    fn bytes_looked_up_alone_count_once_and_later_connections_count_as_new() {
        let w = Watch::default();
        let base = [
            listener(80),
            socket(1, 80, 2, 100, CLIENT),
            socket(1, 80, 3, 0, CLIENT),
        ];
        let first = Snapshot::new(opens(7), &base, &w);
        let busy = [
            base[0].clone(),
            socket(1, 80, 2, 150, CLIENT),
            base[2].clone(),
        ];
        // The connection that received bytes is the one to look up next.
        let mut second = Snapshot::new(opens(7), &busy, &w);
        assert!(second.since(&first, &w).any());
        assert_eq!(second.busy, vec![2]);
        let mut again = Snapshot::new(opens(7), &busy, &w);
        assert!(!again.since(&second, &w).any());
        assert!(again.busy.is_empty());
        // Looked up alone: more bytes, then the same, then gone.
        assert_eq!(second.record_bytes(&[(2, Some(180))]), vec![2]);
        assert!(second
            .record_bytes(&[(2, Some(180)), (9, Some(5))])
            .is_empty());
        assert!(second.record_bytes(&[(2, None)]).is_empty());
        // The next walk compares with the bytes recorded: not counted twice.
        let same = [
            base[0].clone(),
            socket(1, 80, 2, 180, CLIENT),
            base[2].clone(),
        ];
        assert!(!Snapshot::new(opens(7), &same, &w).since(&second, &w).any());
        // A connection accepted while the samples only looked up busy ones
        // is new to the walk: traffic, a sample late rather than never.
        let later = [
            same[0].clone(),
            same[1].clone(),
            same[2].clone(),
            socket(1, 80, 4, 0, CLIENT),
        ];
        let seen = Snapshot::new(opens(8), &later, &w).since(&second, &w);
        assert_eq!((seen.ports, seen.unplaced), (vec![(80, true)], 0));
    }

    #[test]
    fn passive_opens_vouch_only_for_a_sole_listener_whose_connections_all_count() {
        let sole =
            |listeners: &[TcpSocket], w: &Watch| Snapshot::new(opens(7), listeners, w).sole_port;
        assert_eq!(sole(&[listener(8080)], &Watch::default()), Some(8080));
        assert_eq!(sole(&[listener(8080)], &watch(&[8080], &[])), Some(8080));
        // A second listener (metrics, a sidecar's) takes connections too.
        assert_eq!(
            sole(&[listener(8080), listener(9090)], &Watch::default()),
            None
        );
        // Its connections do not count, or not all of them.
        assert_eq!(sole(&[listener(8080)], &watch(&[9090], &[])), None);
        assert_eq!(sole(&[listener(8080)], &watch(&[], &["10.0.3.1/32"])), None);
    }

    #[test]
    fn only_the_watched_ports_count() {
        let w = watch(&[8080], &[]);
        let base = [
            listener(8080),
            listener(9090),
            socket(1, 8080, 2, 100, CLIENT),
        ];
        // Probes and metrics on 9090: new connections, seen, not counted.
        let probed = [
            base[0].clone(),
            base[1].clone(),
            base[2].clone(),
            socket(6, 9090, 5, 0, PROBER),
            socket(1, 9090, 6, 10, PROBER),
        ];
        let s = seen((7, &base), (9, &probed), &w);
        assert_eq!((s.ports, s.unplaced), (vec![(8080, false)], 0));
        // ... but their bytes do not count either.
        let scraped = [
            probed[0].clone(),
            probed[1].clone(),
            probed[2].clone(),
            probed[3].clone(),
            socket(1, 9090, 6, 99, PROBER),
        ];
        assert!(!seen((9, &probed), (9, &scraped), &w).any());
        let served = [
            base[0].clone(),
            base[1].clone(),
            socket(1, 8080, 2, 101, CLIENT),
        ];
        assert_eq!(seen((7, &base), (7, &served), &w).ports, vec![(8080, true)]);
    }

    #[test]
    fn connections_from_ignored_sources_do_not_count() {
        let w = watch(&[], &["10.0.3.1/32"]);
        let base = [listener(8080), socket(1, 8080, 2, 100, CLIENT)];
        let probed = [
            base[0].clone(),
            base[1].clone(),
            socket(6, 8080, 3, 0, PROBER),
        ];
        let s = seen((7, &base), (8, &probed), &w);
        assert!(!s.any(), "{s:?}");
        let kept = [
            base[0].clone(),
            base[1].clone(),
            socket(1, 8080, 4, 5, PROBER),
        ];
        let more = [
            base[0].clone(),
            base[1].clone(),
            socket(1, 8080, 4, 50, PROBER),
        ];
        assert!(!seen((8, &kept), (8, &more), &w).any());
        let client = [
            base[0].clone(),
            base[1].clone(),
            socket(6, 8080, 3, 0, CLIENT),
        ];
        assert!(seen((7, &base), (8, &client), &w).any());
    }

    #[test]
    fn the_tally_counts_samples_per_port() {
        let mut tally = Tally::default();
        tally.add(&Seen {
            ports: vec![(8080, true), (9090, false)],
            unplaced: 0,
            cost: Duration::ZERO,
        });
        tally.add(&Seen {
            ports: vec![(8080, true), (9090, false)],
            unplaced: 2,
            cost: Duration::ZERO,
        });
        tally.add(&Seen {
            ports: vec![(443, false), (8080, false)],
            unplaced: 0,
            cost: Duration::ZERO,
        });
        assert_eq!(
            tally.to_string(),
            "port 443 in 0, port 8080 in 2, port 9090 in 0, \
             connections too brief to tell their port in 1"
        );
        assert_eq!(Tally::default().to_string(), "no listening port");
    }

    #[test]
    fn reads_passive_opens() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails\n\
                    Tcp: 1 200 120000 -1 12 34 0\nUdp: InDatagrams\nUdp: 5\n";
        assert_eq!(tcp_counter(snmp, "PassiveOpens"), Some(34));
        assert_eq!(tcp_counter(snmp, "ActiveOpens"), Some(12));
        assert_eq!(tcp_counter("Ip: x\nIp: 1\n", "PassiveOpens"), None);
    }

    #[test]
    fn lists_ports_in_words() {
        assert_eq!(list(&[8080]), "8080");
        assert_eq!(list(&[80, 8080, 8443]), "80, 8080 or 8443");
    }
}
