//! The sock_diag reply parser takes any datagram (truncated messages,
//! lengths that lie about what follows, attributes longer than their message)
//! without panicking, and what it accepts is what the bytes say.
#![no_main]

use drainit::activity::{lookup, parse, parse_proc_net_tcp, Dump};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut sockets = Vec::new();
    let result = parse(data, &mut sockets);
    // At most one socket per 16-byte header plus its 72-byte message.
    assert!(sockets.len() <= data.len() / 88);
    if let Ok(Dump::Done) = result {
        // Parsing stops at DONE: the same bytes parse the same way twice.
        let mut again = Vec::new();
        assert_eq!(parse(data, &mut again), Ok(Dump::Done));
        assert_eq!(sockets, again);
    }
    // Whatever the reply said, the request that looks a socket up again is
    // one fixed-size message (header and inet_diag_req_v2) that ends with
    // the socket's id as the reply gave it.
    for socket in &sockets {
        if let Some(id) = &socket.id {
            let request = lookup(id);
            assert_eq!(request.len(), 72);
            assert_eq!(u32::from_ne_bytes(request[..4].try_into().unwrap()), 72);
        }
    }
    // Every prefix, as a datagram cut short would be.
    for cut in [data.len() / 2, data.len().saturating_sub(1)] {
        let _ = parse(&data[..cut], &mut Vec::new());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_proc_net_tcp(text);
    }
});
