//! sock_diag over netlink: the dump request drainit sends (with a bytecode
//! filter on the watched ports, so that the kernel sends only those sockets)
//! and the parser of the kernel's reply. Pure: [`crate::sys::Netlink`] does
//! the sending and receiving.
//!
//! Layouts from the Linux uapi: linux/netlink.h, linux/sock_diag.h,
//! linux/inet_diag.h.

/// One TCP socket, as sock_diag or /proc/net/tcp describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSocket {
    /// Kernel TCP state (`TCP_LISTEN` = 10, `TCP_ESTABLISHED` = 1, ...).
    pub state: u8,
    /// The port the socket is bound to on this side.
    pub local_port: u16,
    /// The address of the other side, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`).
    pub remote: [u8; 16],
    /// What identifies the connection across snapshots: the socket cookie,
    /// or the remote address and port under /proc.
    pub key: u128,
    /// Bytes received so far (sock_diag with tcp_info), or the receive queue (/proc).
    pub received: u64,
    /// What the kernel calls the socket, to look it up again alone
    /// ([`lookup`]); none under /proc.
    pub id: Option<SocketId>,
}

/// A socket's `struct inet_diag_sockid` (ports, addresses, interface,
/// cookie) and its family, as a dump gave them: sent back verbatim, they
/// name that one socket, and the cookie makes sure it is the same
/// connection, not a later one on the same ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketId {
    family: u8,
    raw: [u8; SOCKID],
}

pub(crate) const NLMSG_HEADER: usize = 16;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
pub(crate) const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// The older request (`struct inet_diag_req`), which alone dumps IPv4 and
/// IPv6 sockets at once: one walk of the kernel's table of connections
/// instead of two. That walk visits every bucket of a table shared by every
/// namespace of the machine (262,144 buckets here), and costs 6.7 ms even
/// when empty.
pub(crate) const TCPDIAG_GETSOCK: u16 = 18;
pub(crate) const INET_DIAG_INFO: u16 = 2;
const INET_DIAG_REQ_BYTECODE: u16 = 1;
/// `struct inet_diag_req_v2`: family, protocol, extensions, pad, states, sockid (48).
const INET_DIAG_REQ_V2: usize = 56;
/// `struct inet_diag_req`: family, src_len, dst_len, extensions, sockid (48), states, dbs.
const INET_DIAG_REQ: usize = 60;
/// `struct inet_diag_msg`: family, state, timer, retrans, sockid (48), expires, rqueue, wqueue, uid, inode.
pub(crate) const INET_DIAG_MSG: usize = 72;
/// `struct inet_diag_sockid`, at offset 4 of a message and 8 of a request.
const SOCKID: usize = 48;
pub(crate) const BYTES_RECEIVED: usize = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_received);

// Bytecode operations (enum of linux/inet_diag.h).
const BC_JMP: u8 = 1;
const BC_S_GE: u8 = 2;
const BC_S_LE: u8 = 3;

/// TCP states of the connections a dump asks for: those that carry or close
/// traffic, and the TIME_WAIT they leave behind (a connection the server
/// closed stays visible there for a minute, however short it was). Not
/// SYN_RECV: a handshake is counted when it completes, as PassiveOpens counts
/// it; not SYN_SENT or CLOSE: those are the app's own outgoing connections.
pub const CONNECTIONS: u32 = 1 << 1 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 8 | 1 << 9 | 1 << 11;
/// The listeners alone: the kernel then walks only its (small) table of
/// listeners, not the connections'.
pub const LISTENERS: u32 = 1 << 10;

/// A sock_diag dump request for the TCP sockets in `states` bound to one of
/// `ports` (any port if empty), with tcp_info (`INET_DIAG_INFO`, the one
/// attribute read) if `with_info`. `family` None: IPv4 and IPv6 in one dump
/// (`TCPDIAG_GETSOCK`).
pub fn request(family: Option<u8>, states: u32, ports: &[u16], with_info: bool) -> Vec<u8> {
    let bytecode = bytecode(ports);
    let attribute = if bytecode.is_empty() {
        0
    } else {
        4 + bytecode.len()
    };
    let (kind, body) = match family {
        Some(_) => (SOCK_DIAG_BY_FAMILY, INET_DIAG_REQ_V2),
        None => (TCPDIAG_GETSOCK, INET_DIAG_REQ),
    };
    let len = NLMSG_HEADER + body + attribute;
    let mut request = Vec::with_capacity(len);
    request.extend_from_slice(&(len as u32).to_ne_bytes());
    request.extend_from_slice(&kind.to_ne_bytes());
    request.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    request.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    let extensions = if with_info {
        1 << (INET_DIAG_INFO - 1)
    } else {
        0
    };
    match family {
        Some(family) => {
            request.extend_from_slice(&[family, libc::IPPROTO_TCP as u8, extensions, 0]);
            request.extend_from_slice(&states.to_ne_bytes());
            request.resize(NLMSG_HEADER + body, 0); // any socket id
        }
        None => {
            request.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, extensions]);
            request.resize(NLMSG_HEADER + 52, 0); // any socket id
            request.extend_from_slice(&states.to_ne_bytes());
            request.extend_from_slice(&0u32.to_ne_bytes()); // dbs
        }
    }
    if !bytecode.is_empty() {
        request.extend_from_slice(&(attribute as u16).to_ne_bytes());
        request.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
        request.extend_from_slice(&bytecode);
    }
    request
}

/// A request for the one socket `id` names, with tcp_info: no dump, so the
/// kernel finds it in its hash table instead of walking the table (about
/// 7 µs here, against 20 ms for a dump among 10,000 connections). The reply
/// is one message, or an error (ENOENT: the connection is gone).
pub fn lookup(id: &SocketId) -> Vec<u8> {
    let len = NLMSG_HEADER + INET_DIAG_REQ_V2;
    let mut request = Vec::with_capacity(len);
    request.extend_from_slice(&(len as u32).to_ne_bytes());
    request.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    request.extend_from_slice(&0u32.to_ne_bytes()); // port id
    let info = 1 << (INET_DIAG_INFO - 1);
    request.extend_from_slice(&[id.family, libc::IPPROTO_TCP as u8, info, 0]);
    request.extend_from_slice(&u32::MAX.to_ne_bytes()); // any state
    request.extend_from_slice(&id.raw);
    request
}

/// One `struct inet_diag_bc_op`: the kernel runs `yes` or `no` bytes further.
fn op(out: &mut Vec<u8>, code: u8, yes: u8, no: u16) {
    out.extend_from_slice(&[code, yes]);
    out.extend_from_slice(&no.to_ne_bytes());
}

/// The filter "local port is one of `ports`" (empty: no filter), compiled as `ss` compiles `sport = :A or sport = :B`: each port is
/// `S_GE p` then `S_LE p` (both kernels old and new have them); a test that
/// fails jumps 4 bytes past its own end, which is the next port's test (past
/// the `JMP` between them) or, after the last, a rejection; a port that
/// matches reaches a `JMP` to the end, an acceptance. The kernel's audit
/// walks the `yes` chain, which passes through every operation.
pub fn bytecode(ports: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ports.len() * 20);
    for (i, &port) in ports.iter().enumerate() {
        op(&mut out, BC_S_GE, 8, 20);
        op(&mut out, 0, 0, port);
        op(&mut out, BC_S_LE, 8, 12);
        op(&mut out, 0, 0, port);
        if i + 1 < ports.len() {
            // Matched: jump over the remaining tests, to the end.
            let rest = (ports.len() - i - 1) * 20 - 4;
            op(&mut out, BC_JMP, 4, (4 + rest) as u16);
        }
    }
    out
}

/// Whether a dump has more to come.
#[derive(Debug, PartialEq, Eq)]
pub enum Dump {
    /// More datagrams of the dump follow.
    More,
    /// The dump ended (NLMSG_DONE).
    Done,
}

/// Parses one datagram of a sock_diag dump into `out`. Lengths that do not
/// fit what surrounds them are refused, never trusted.
pub fn parse(mut data: &[u8], out: &mut Vec<TcpSocket>) -> Result<Dump, String> {
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
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK if payload.len() >= INET_DIAG_MSG => {
                out.push(parse_msg(payload));
            }
            _ => {}
        }
        data = data.get(align(len)..).unwrap_or_default();
    }
    Ok(Dump::More)
}

/// One `struct inet_diag_msg` and its attributes; `msg` is at least
/// [`INET_DIAG_MSG`] long.
fn parse_msg(msg: &[u8]) -> TcpSocket {
    let local_port = u16::from_be_bytes([msg[4], msg[5]]);
    let mut remote = [0u8; 16];
    if msg[0] == libc::AF_INET6 as u8 {
        remote.copy_from_slice(&msg[24..40]);
    } else {
        remote[10..12].copy_from_slice(&[0xff, 0xff]);
        remote[12..16].copy_from_slice(&msg[24..28]);
    }
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
    let mut raw = [0u8; SOCKID];
    raw.copy_from_slice(&msg[4..4 + SOCKID]);
    TcpSocket {
        state: msg[1],
        local_port,
        remote,
        key: u128::from(cookie),
        received,
        id: Some(SocketId {
            family: msg[0],
            raw,
        }),
    }
}

pub(crate) fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// Netlink messages and attributes are 4-byte aligned.
pub(crate) fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Parses /proc/net/tcp or /proc/net/tcp6: `sl local rem st tx:rx ...`.
pub fn parse_proc_net_tcp(text: &str) -> Vec<TcpSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (_, local_port) = fields.get(1)?.split_once(':')?;
            let (remote_address, _) = fields.get(2)?.split_once(':')?;
            let (_, rx_queue) = fields.get(4)?.split_once(':')?;
            // The remote address and port tell connections apart.
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(fields.get(2)?, &mut hasher);
            Some(TcpSocket {
                state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
                local_port: u16::from_str_radix(local_port, 16).ok()?,
                remote: proc_address(remote_address)?,
                key: u128::from(std::hash::Hasher::finish(&hasher)),
                received: u64::from_str_radix(rx_queue, 16).ok()?,
                id: None,
            })
        })
        .collect()
}

/// `0100007F` (IPv4) or 32 hex digits (IPv6): 32-bit words in host order.
fn proc_address(hex: &str) -> Option<[u8; 16]> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let text = hex.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(text, 16).ok()?.to_ne_bytes())
    };
    let mut address = [0u8; 16];
    match hex.len() {
        8 => {
            address[10..12].copy_from_slice(&[0xff, 0xff]);
            address[12..16].copy_from_slice(&word(0)?);
        }
        32 => {
            for i in 0..4 {
                address[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
        }
        _ => return None,
    }
    Some(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sock_diag reply as the kernel writes it: one socket, then DONE.
    pub fn reply(state: u8, port: u16, cookie: u64, received: u64) -> Vec<u8> {
        let mut msg = vec![0u8; INET_DIAG_MSG];
        msg[0] = libc::AF_INET as u8;
        msg[1] = state;
        msg[4..6].copy_from_slice(&port.to_be_bytes());
        msg[24..28].copy_from_slice(&[10, 0, 0, 7]);
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
        assert_eq!(parse(&data, &mut sockets), Ok(Dump::Done));
        let mut remote = [0u8; 16];
        remote[10..].copy_from_slice(&[0xff, 0xff, 10, 0, 0, 7]);
        let mut raw = [0u8; SOCKID];
        raw.copy_from_slice(&data[NLMSG_HEADER + 4..NLMSG_HEADER + 4 + SOCKID]);
        assert_eq!(
            sockets,
            vec![TcpSocket {
                state: 1,
                local_port: 8080,
                remote,
                key: 0x1_0000_0002,
                received: 12345,
                id: Some(SocketId {
                    family: libc::AF_INET as u8,
                    raw
                }),
            }]
        );
    }

    #[test]
    fn a_lookup_sends_back_the_socket_id_of_the_dump() {
        let data = reply(1, 8080, 0x1_0000_0002, 12345);
        let mut sockets = Vec::new();
        parse(&data, &mut sockets).unwrap();
        let id = sockets[0].id.unwrap();
        let request = lookup(&id);
        assert_eq!(request.len(), NLMSG_HEADER + INET_DIAG_REQ_V2);
        assert_eq!(u32_at(&request, 0) as usize, request.len());
        assert_eq!(
            u16::from_ne_bytes([request[4], request[5]]),
            SOCK_DIAG_BY_FAMILY
        );
        // A request, not a dump.
        assert_eq!(u16::from_ne_bytes([request[6], request[7]]), NLM_F_REQUEST);
        assert_eq!(
            request[16..19],
            [libc::AF_INET as u8, libc::IPPROTO_TCP as u8, 2]
        );
        // The sockid of the message, port, address and cookie included, verbatim.
        assert_eq!(
            request[24..],
            data[NLMSG_HEADER + 4..NLMSG_HEADER + 4 + SOCKID]
        );
        // The kernel's one-message reply parses as the dump's did.
        let mut again = Vec::new();
        let one = &data[..NLMSG_HEADER + INET_DIAG_MSG + 4 + std::mem::size_of::<libc::tcp_info>()];
        assert_eq!(parse(one, &mut again), Ok(Dump::More));
        assert_eq!(again, sockets);
    }

    #[test]
    fn refuses_malformed_replies_without_panicking() {
        let data = reply(1, 8080, 7, 1);
        for cut in 0..data.len() {
            let _ = parse(&data[..cut], &mut Vec::new());
        }
        let mut bad = data.clone();
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(parse(&bad, &mut Vec::new()).is_err());
        let mut long = data.clone();
        long[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse(&long, &mut Vec::new()).is_err());
        // An attribute claiming more than the message holds is skipped.
        let mut lying = data;
        lying[NLMSG_HEADER + INET_DIAG_MSG..][..2].copy_from_slice(&u16::MAX.to_ne_bytes());
        let mut sockets = Vec::new();
        assert_eq!(parse(&lying, &mut sockets), Ok(Dump::Done));
        assert_eq!(sockets[0].received, 0);
    }

    #[test]
    fn the_request_asks_for_the_sockets_with_their_info() {
        let request = request(Some(libc::AF_INET6 as u8), CONNECTIONS, &[], true);
        assert_eq!(request.len(), 72);
        assert_eq!(u32_at(&request, 0), 72);
        assert_eq!(request[16], libc::AF_INET6 as u8);
        assert_eq!(request[17], libc::IPPROTO_TCP as u8);
        assert_eq!(request[18], 2);
        assert_eq!(u32_at(&request, 20), CONNECTIONS);
        let both = super::request(None, LISTENERS, &[80], false);
        assert_eq!(u16::from_ne_bytes([both[4], both[5]]), TCPDIAG_GETSOCK);
        assert_eq!(both[16..20], [0, 0, 0, 0]);
        assert_eq!(u32_at(&both, 68), LISTENERS);
        assert_eq!(u32_at(&both, 0) as usize, both.len());
        assert_eq!(both.len(), 76 + 4 + 16);
        assert_eq!(
            u16::from_ne_bytes([both[78], both[79]]),
            INET_DIAG_REQ_BYTECODE
        );
    }

    /// Runs `bytecode` on a socket of local port `port` as the kernel's
    /// inet_diag_bc_run does: true if it accepts the socket.
    fn run(bytecode: &[u8], port: u16) -> bool {
        let mut at = 0usize;
        let len = bytecode.len();
        while at < len {
            let (code, yes) = (bytecode[at], usize::from(bytecode[at + 1]));
            let no = usize::from(u16::from_ne_bytes([bytecode[at + 2], bytecode[at + 3]]));
            let operand = || u16::from_ne_bytes([bytecode[at + 6], bytecode[at + 7]]);
            let matched = match code {
                BC_JMP => false,
                BC_S_GE => port >= operand(),
                BC_S_LE => port <= operand(),
                other => panic!("unexpected op {other}"),
            };
            at += if matched { yes } else { no };
        }
        at == len
    }

    /// The kernel's inet_diag_bc_audit: every jump lands on an operation of
    /// the `yes` chain, or exactly at the end, or 4 bytes past it.
    fn audit(bytecode: &[u8]) -> bool {
        let len = bytecode.len();
        let mut chain = vec![0usize];
        let mut at = 0;
        while at < len {
            at += usize::from(bytecode[at + 1]);
            chain.push(at);
        }
        if at != len {
            return false;
        }
        chain.iter().filter(|&&at| at < len).all(|&at| {
            let no = usize::from(u16::from_ne_bytes([bytecode[at + 2], bytecode[at + 3]]));
            let min = if bytecode[at] == BC_JMP { 4 } else { 8 };
            let target = at + no;
            no >= min && no % 4 == 0 && (target == len + 4 || chain.contains(&target))
        })
    }

    #[test]
    fn the_bytecode_keeps_exactly_the_ports_asked_for() {
        for ports in [vec![8080], vec![80, 443], vec![9000, 8080, 8081, 1]] {
            let code = bytecode(&ports);
            assert!(audit(&code), "{ports:?}");
            for port in [
                0, 1, 2, 79, 80, 81, 443, 8079, 8080, 8081, 8082, 9000, 65535,
            ] {
                assert_eq!(run(&code, port), ports.contains(&port), "{port} {ports:?}");
            }
        }
        assert!(bytecode(&[]).is_empty());
    }

    #[test]
    fn reads_proc_net_tcp() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123 1 0 100 0 0 10 0\n   \
            1: 0100007F:1F90 0200007F:D2F0 01 00000000:0000002A 00:00000000 00000000     0        0 456 1 0 20 4 30 10 -1\n";
        let sockets = parse_proc_net_tcp(text);
        assert_eq!(sockets.len(), 2);
        assert_eq!(sockets[0].state, 10);
        assert_eq!(sockets[0].local_port, 8080);
        assert_eq!(sockets[1].state, 1);
        assert_eq!(sockets[1].received, 42);
        if cfg!(target_endian = "little") {
            assert_eq!(sockets[1].remote[12..], [127, 0, 0, 2]);
        }
    }
}
