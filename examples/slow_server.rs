//! A small HTTP server that shuts down gracefully, to run under drainit.
//!
//! ```sh
//! cargo run --release --example slow_server -- --port 8080
//! curl localhost:8080/                # answers at once
//! curl 'localhost:8080/slow?ms=2000'  # answers after 2 s
//! ```
//!
//! Port: `--port N`, else the PORT variable, else 8080. One thread per
//! connection, one request per connection (`Connection: close`).
//!
//! On SIGTERM or SIGINT it stops accepting (new connections are refused),
//! serves the connections already accepted or queued, waits for every
//! request in flight to finish, and exits 0. drainit decides *when* the
//! app gets that signal: after the drain, so the load balancers have
//! stopped sending traffic by then.
//!
//! Signals without a handler: SIGTERM and SIGINT are blocked in every thread
//! (a blocked signal stays pending) and the main thread takes them with
//! `sigwait`, so the shutdown is ordinary code, not a signal handler.

// An app of its own, not drainit: the crate's unsafe_code lint keeps drainit's
// unsafe code in sys.rs, and this example's two signal calls are its own.
#![allow(unsafe_code)]

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Connections being served, and requests answered, for the log lines.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static SERVED: AtomicUsize = AtomicUsize::new(0);

fn main() {
    // First, before any thread exists: threads inherit the signal mask.
    let signals = block_stop_signals();

    let port = port().unwrap_or_else(|message| {
        eprintln!("slow_server: {message}");
        std::process::exit(2);
    });
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).unwrap_or_else(|e| {
        eprintln!("slow_server: cannot listen on port {port}: {e}");
        std::process::exit(1);
    });
    eprintln!(
        "slow_server: listening on port {port} (pid {})",
        std::process::id()
    );

    let stopping = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let stopping = Arc::clone(&stopping);
        thread::spawn(move || serve(listener, &stopping))
    };

    let signal = wait_for(&signals);
    let name = if signal == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    eprintln!(
        "slow_server: {name}: no longer accepting; finishing {} request(s) in flight",
        IN_FLIGHT.load(Ordering::SeqCst)
    );
    stopping.store(true, Ordering::SeqCst);
    // Wake the acceptor, blocked in accept(), with a connection of our own.
    let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, port));

    acceptor.join().expect("the acceptor thread panicked");
    eprintln!(
        "slow_server: {} request(s) served in all; exiting 0",
        SERVED.load(Ordering::SeqCst)
    );
}

/// Accepts connections until `stopping`, then takes those already queued,
/// closes the listener (new connections are refused from then on) and waits
/// for every connection thread.
fn serve(listener: TcpListener, stopping: &AtomicBool) {
    let mut workers = Vec::new();
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            // Connections the kernel queued already: their clients are in.
            let _ = listener.set_nonblocking(true);
        }
        match stream {
            Ok(stream) => workers.push(thread::spawn(move || handle(stream))),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break, // queue empty
            Err(e) => eprintln!("slow_server: accept: {e}"),
        }
        workers.retain(|worker| !worker.is_finished());
    }
    drop(listener);
    for worker in workers {
        let _ = worker.join();
    }
}

/// Serves one connection; counts it in IN_FLIGHT while it lasts.
fn handle(stream: TcpStream) {
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    match respond(stream) {
        Ok(true) => {
            SERVED.fetch_add(1, Ordering::SeqCst);
        }
        Ok(false) => {} // no request: e.g. the wake-up connection
        Err(e) => eprintln!("slow_server: connection: {e}"),
    }
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
}

/// Reads one request and answers it; returns whether there was a request.
fn respond(mut stream: TcpStream) -> std::io::Result<bool> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    if reader.read_line(&mut request)? == 0 {
        return Ok(false);
    }
    // Skip the headers, up to the empty line.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 && !line.trim_end().is_empty() {
        line.clear();
    }

    let mut words = request.split_whitespace();
    let method = words.next().unwrap_or("");
    let target = words.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (status, body) = match path {
        "/" => ("200 OK", "hello from slow_server\n".to_string()),
        "/slow" => {
            let ms = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("ms="))
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(1000);
            thread::sleep(Duration::from_millis(ms));
            ("200 OK", format!("slept {ms} ms\n"))
        }
        _ => ("404 Not Found", "not found\n".to_string()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    Ok(true)
}

/// `--port N`, else $PORT, else 8080.
fn port() -> Result<u16, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = match args.as_slice() {
        [] => std::env::var("PORT").unwrap_or_else(|_| "8080".into()),
        [flag, value] if flag == "--port" => value.clone(),
        _ => return Err("usage: slow_server [--port N]".into()),
    };
    value
        .parse()
        .map_err(|_| format!("{value:?} is not a port number"))
}

/// Blocks SIGTERM and SIGINT in the calling thread (and the threads it will
/// start); returns the set, for `wait_for`.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises `set` before sigaddset and
    // pthread_sigmask read it; a null old-mask pointer is allowed.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits until one of the (blocked) signals in `set` arrives; returns it.
fn wait_for(set: &libc::sigset_t) -> libc::c_int {
    let mut signal = 0;
    // SAFETY: `set` was initialised by block_stop_signals and `signal` is a
    // valid place for sigwait to write the signal number.
    unsafe { libc::sigwait(set, &mut signal) };
    signal
}
