//! Traffic to the app, seen from the kernel, for the adaptive drain.
//!
//! drainit shares the app's network namespace, so it can tell when load
//! balancers have stopped sending: a [`Snapshot`] holds the namespace's count
//! of accepted TCP connections (`PassiveOpens` in /proc/net/snmp, which also
//! counts connections that came and went between two snapshots) and, for each
//! connection to a listening port, the bytes received (`tcpi_bytes_received`,
//! from sock_diag over netlink). Two equal snapshots mean no new connection
//! and no byte received in between. Without netlink, /proc/net/tcp{,6} stands
//! in (connections and their receive queues, no byte counters).
//!
//! The parsing here is pure and unit-tested; [`measure`] does the reading,
//! through [`crate::sys::Netlink`] and /proc.

use std::collections::{BTreeMap, BTreeSet};

use crate::sys::Netlink;

/// One TCP socket, as sock_diag or /proc/net/tcp describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSocket {
    /// Kernel TCP state (`TCP_LISTEN` = 10, `TCP_ESTABLISHED` = 1, ...).
    pub state: u8,
    /// The port the socket is bound to on this side.
    pub local_port: u16,
    /// What identifies the connection across snapshots: the socket cookie,
    /// or the remote address under /proc.
    pub key: u128,
    /// Bytes received so far (sock_diag), or the receive queue (/proc).
    pub received: u64,
}

/// What the traffic looked like at one instant. Equal snapshots: no traffic in between.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    passive_opens: Option<u64>,
    /// Connections to a listening port: key → bytes received.
    connections: BTreeMap<(u16, u128), u64>,
}

const TCP_LISTEN: u8 = 10;
/// States of a connection that carries or closes traffic. TIME_WAIT, CLOSE
/// and SYN_SENT are left out: a TIME_WAIT socket vanishing a minute after its
/// connection closed is not traffic.
const LIVE_STATES: [u8; 7] = [1, 3, 4, 5, 8, 9, 11];

impl Snapshot {
    /// Keeps, of `sockets`, the live connections to a port something listens on.
    pub fn new(passive_opens: Option<u64>, sockets: &[TcpSocket]) -> Snapshot {
        let listening: BTreeSet<u16> = sockets
            .iter()
            .filter(|s| s.state == TCP_LISTEN)
            .map(|s| s.local_port)
            .collect();
        let connections = sockets
            .iter()
            .filter(|s| LIVE_STATES.contains(&s.state) && listening.contains(&s.local_port))
            .map(|s| ((s.local_port, s.key), s.received))
            .collect();
        Snapshot {
            passive_opens,
            connections,
        }
    }

    /// Live connections to listening ports.
    pub fn connections(&self) -> usize {
        self.connections.len()
    }
}

/// Takes a snapshot of the traffic of this network namespace.
pub fn measure() -> Result<Snapshot, String> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok();
    let passive_opens = snmp.as_deref().and_then(passive_opens);
    let sockets = match sock_diag_sockets() {
        Ok(sockets) => sockets,
        Err(netlink_error) => proc_net_sockets().map_err(|proc_error| {
            format!("sock_diag: {netlink_error}; /proc/net/tcp: {proc_error}")
        })?,
    };
    if passive_opens.is_none() && sockets.is_empty() {
        return Err("no TCP socket and no /proc/net/snmp to watch".to_string());
    }
    Ok(Snapshot::new(passive_opens, &sockets))
}

/// Every TCP socket of the namespace, IPv4 and IPv6, from sock_diag.
fn sock_diag_sockets() -> Result<Vec<TcpSocket>, String> {
    let netlink = Netlink::sock_diag().map_err(|e| e.to_string())?;
    let mut sockets = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        netlink
            .send(&diag_request(family))
            .map_err(|e| e.to_string())?;
        loop {
            let len = netlink.recv(&mut buffer).map_err(|e| e.to_string())?;
            if parse_diag(&buffer[..len], &mut sockets)? == Dump::Done {
                break;
            }
        }
    }
    Ok(sockets)
}

fn proc_net_sockets() -> Result<Vec<TcpSocket>, String> {
    let mut sockets = Vec::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        sockets.extend(parse_proc_net_tcp(&text));
    }
    Ok(sockets)
}

// Linux uapi: linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h.
const NLMSG_HEADER: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const INET_DIAG_INFO: u16 = 2;
/// `struct inet_diag_msg`: family, state, timer, retrans, sockid (48), expires, rqueue, wqueue, uid, inode.
const INET_DIAG_MSG: usize = 72;
const BYTES_RECEIVED: usize = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_received);

/// A sock_diag dump request for every TCP socket of `family`, with tcp_info.
pub fn diag_request(family: u8) -> Vec<u8> {
    let len = NLMSG_HEADER + 56;
    let mut request = Vec::with_capacity(len);
    request.extend_from_slice(&(len as u32).to_ne_bytes());
    request.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    request.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
                                                    // struct inet_diag_req_v2: family, protocol, extensions, pad, states, sockid.
    request.extend_from_slice(&[
        family,
        libc::IPPROTO_TCP as u8,
        1 << (INET_DIAG_INFO - 1),
        0,
    ]);
    request.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    request.resize(len, 0); // any socket id
    request
}

/// Whether a dump has more to come.
#[derive(Debug, PartialEq, Eq)]
pub enum Dump {
    /// More datagrams of the dump follow.
    More,
    /// The dump ended (NLMSG_DONE).
    Done,
}

/// Parses one datagram of a sock_diag dump into `out`.
pub fn parse_diag(mut data: &[u8], out: &mut Vec<TcpSocket>) -> Result<Dump, String> {
    while data.len() >= NLMSG_HEADER {
        let len = u32_at(data, 0) as usize;
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        if len < NLMSG_HEADER || len > data.len() {
            return Err(format!("malformed netlink message of {len} bytes"));
        }
        let payload = &data[NLMSG_HEADER..len];
        match kind {
            NLMSG_DONE => return Ok(Dump::Done),
            NLMSG_ERROR => {
                // The kernel sends -errno; `wrapping_neg`: a lying reply (i32::MIN) must not panic.
                let errno = payload
                    .get(..4)
                    .map_or(0, |b| (u32_at(b, 0) as i32).wrapping_neg());
                return Err(std::io::Error::from_raw_os_error(errno).to_string());
            }
            SOCK_DIAG_BY_FAMILY if payload.len() >= INET_DIAG_MSG => {
                out.push(parse_diag_msg(payload));
            }
            _ => {}
        }
        data = data.get(align(len)..).unwrap_or_default();
    }
    Ok(Dump::More)
}

fn parse_diag_msg(msg: &[u8]) -> TcpSocket {
    let local_port = u16::from_be_bytes([msg[4], msg[5]]);
    let cookie = u64::from(u32_at(msg, 44)) | u64::from(u32_at(msg, 48)) << 32;
    let mut received = 0;
    let mut attributes = &msg[INET_DIAG_MSG..];
    while attributes.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attributes[0], attributes[1]]));
        let kind = u16::from_ne_bytes([attributes[2], attributes[3]]);
        if len < 4 || len > attributes.len() {
            break;
        }
        let value = &attributes[4..len];
        if kind == INET_DIAG_INFO && value.len() >= BYTES_RECEIVED + 8 {
            let bytes = &value[BYTES_RECEIVED..BYTES_RECEIVED + 8];
            received = u64::from_ne_bytes(bytes.try_into().unwrap_or_default());
        }
        attributes = attributes.get(align(len)..).unwrap_or_default();
    }
    TcpSocket {
        state: msg[1],
        local_port,
        key: u128::from(cookie),
        received,
    }
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// Netlink messages and attributes are 4-byte aligned.
fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Parses /proc/net/tcp or /proc/net/tcp6: `sl local rem st tx:rx ...`.
pub fn parse_proc_net_tcp(text: &str) -> Vec<TcpSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (_, local_port) = fields.get(1)?.split_once(':')?;
            let remote = fields.get(2)?;
            let (_, rx_queue) = fields.get(4)?.split_once(':')?;
            // The remote address and port tell connections apart.
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(remote, &mut hasher);
            Some(TcpSocket {
                state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
                local_port: u16::from_str_radix(local_port, 16).ok()?,
                key: u128::from(std::hash::Hasher::finish(&hasher)),
                received: u64::from_str_radix(rx_queue, 16).ok()?,
            })
        })
        .collect()
}

/// `PassiveOpens` of the `Tcp:` lines of /proc/net/snmp.
pub fn passive_opens(snmp: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let column = names.split_whitespace().position(|n| n == "PassiveOpens")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket(state: u8, local_port: u16, key: u128, received: u64) -> TcpSocket {
        TcpSocket {
            state,
            local_port,
            key,
            received,
        }
    }

    #[test]
    fn a_snapshot_keeps_live_connections_to_listening_ports() {
        let sockets = [
            socket(TCP_LISTEN, 8080, 1, 0),
            socket(1, 8080, 2, 100),  // a client of the app
            socket(6, 8080, 3, 100),  // TIME_WAIT: not traffic
            socket(1, 40000, 4, 100), // the app's own connection to a database
        ];
        let snapshot = Snapshot::new(Some(7), &sockets);
        assert_eq!(snapshot.connections(), 1);
        assert_eq!(snapshot.connections.get(&(8080, 2)), Some(&100));
    }

    #[test]
    fn new_connections_and_received_bytes_change_the_snapshot() {
        let base = [socket(TCP_LISTEN, 80, 1, 0), socket(1, 80, 2, 100)];
        let before = Snapshot::new(Some(7), &base);
        assert_eq!(before, Snapshot::new(Some(7), &base));
        // A connection that came and went: only the counter shows it.
        assert_ne!(before, Snapshot::new(Some(8), &base));
        // Bytes on a keep-alive connection.
        let more = [socket(TCP_LISTEN, 80, 1, 0), socket(1, 80, 2, 150)];
        assert_ne!(before, Snapshot::new(Some(7), &more));
        // A new connection.
        let new = [base[0].clone(), base[1].clone(), socket(1, 80, 3, 0)];
        assert_ne!(before, Snapshot::new(Some(7), &new));
    }

    #[test]
    fn reads_passive_opens() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails\n\
                    Tcp: 1 200 120000 -1 12 34 0\nUdp: InDatagrams\nUdp: 5\n";
        assert_eq!(passive_opens(snmp), Some(34));
        assert_eq!(passive_opens("Ip: x\nIp: 1\n"), None);
    }

    #[test]
    fn reads_proc_net_tcp() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123 1 0 100 0 0 10 0\n   \
            1: 0100007F:1F90 0100007F:D2F0 01 00000000:0000002A 00:00000000 00000000     0        0 456 1 0 20 4 30 10 -1\n";
        let sockets = parse_proc_net_tcp(text);
        assert_eq!(sockets.len(), 2);
        assert_eq!(sockets[0].state, TCP_LISTEN);
        assert_eq!(sockets[0].local_port, 8080);
        assert_eq!(sockets[1].state, 1);
        assert_eq!(sockets[1].received, 42);
        assert_eq!(Snapshot::new(None, &sockets).connections(), 1);
    }

    /// A sock_diag reply as the kernel writes it: one socket, then DONE.
    fn reply(state: u8, port: u16, cookie: u64, received: u64) -> Vec<u8> {
        let mut msg = vec![0u8; INET_DIAG_MSG];
        msg[0] = libc::AF_INET as u8;
        msg[1] = state;
        msg[4..6].copy_from_slice(&port.to_be_bytes());
        msg[44..48].copy_from_slice(&(cookie as u32).to_ne_bytes());
        msg[48..52].copy_from_slice(&((cookie >> 32) as u32).to_ne_bytes());
        let info_len = std::mem::size_of::<libc::tcp_info>();
        let mut info = vec![0u8; info_len];
        info[BYTES_RECEIVED..BYTES_RECEIVED + 8].copy_from_slice(&received.to_ne_bytes());
        msg.extend_from_slice(&((4 + info_len) as u16).to_ne_bytes());
        msg.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
        msg.extend_from_slice(&info);
        msg.resize(align(msg.len()), 0);
        let mut data = Vec::new();
        for (kind, payload) in [(SOCK_DIAG_BY_FAMILY, msg), (NLMSG_DONE, vec![0u8; 4])] {
            data.extend_from_slice(&((NLMSG_HEADER + payload.len()) as u32).to_ne_bytes());
            data.extend_from_slice(&kind.to_ne_bytes());
            data.extend_from_slice(&[0u8; 10]);
            data.extend_from_slice(&payload);
        }
        data
    }

    #[test]
    fn parses_a_sock_diag_reply() {
        let mut sockets = Vec::new();
        let data = reply(1, 8080, 0x1_0000_0002, 12345);
        assert_eq!(parse_diag(&data, &mut sockets), Ok(Dump::Done));
        assert_eq!(sockets, vec![socket(1, 8080, 0x1_0000_0002, 12345)]);
    }

    #[test]
    fn refuses_malformed_replies_without_panicking() {
        let data = reply(1, 8080, 7, 1);
        for cut in 0..data.len() {
            let _ = parse_diag(&data[..cut], &mut Vec::new());
        }
        let mut bad = data.clone();
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(parse_diag(&bad, &mut Vec::new()).is_err());
    }

    #[test]
    fn the_request_asks_for_every_tcp_socket_with_its_info() {
        let request = diag_request(libc::AF_INET6 as u8);
        assert_eq!(request.len(), 72);
        assert_eq!(u32_at(&request, 0), 72);
        assert_eq!(request[16], libc::AF_INET6 as u8);
        assert_eq!(request[17], libc::IPPROTO_TCP as u8);
        assert_eq!(request[18], 2);
    }
}
