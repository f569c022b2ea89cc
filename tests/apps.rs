//! Real apps under drainit as PID 1 of a PID namespace: an HTTP app under
//! load (zero dropped requests), nginx (graceful quit with a download in
//! flight) and redis (its RDB written at shutdown holds every key). The PID
//! namespace does not isolate the network: the test talks to the apps on
//! loopback.
//!
//! Needs root and: python3, nginx (nginx-light), redis-server (which brings
//! redis-cli).

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{sleep, JoinHandle};
use std::time::{Duration, Instant};

use common::*;
use drainit::render;

const HTTP_APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/apps/http_app.py");

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Sleeps until `secs` after the CLOCK_MONOTONIC instant `t0`.
fn sleep_until(t0: u64, secs_after: f64) {
    let target = t0 + (secs_after * 1e9) as u64;
    let now = now_ns();
    if target > now {
        sleep(Duration::from_nanos(target - now));
    }
}

/// One HTTP/1.0 request on a new connection, with short timeouts, as a load
/// balancer's health-unaware client would send it. `Err` says what failed.
fn http_get(port: u16, path: &str) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect_timeout(&addr(port), Duration::from_secs(1))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("receive: {e}"))?;
    Ok(response)
}

/// Polls `ready` until it holds, at most `timeout_s`; drainit must not exit meanwhile.
fn wait_until(run: &Run, what: &str, timeout_s: f64, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what}: not ready after {timeout_s}s; drainit stderr:\n{}",
            run.stderr()
        );
        sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------- zero dropped requests

/// One request of the load: when it started and ended, and why it failed if it did.
struct Request {
    at_ns: u64,
    end_ns: u64,
    error: Option<String>,
}

/// Clients that send requests one after another, each on a new connection,
/// until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Vec<Request>>>,
}

impl Load {
    fn start(port: u16, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut requests = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        let at_ns = now_ns();
                        let error = match http_get(port, "/") {
                            Ok(response) if response.starts_with(b"HTTP/1.0 200 ") => None,
                            Ok(response) => Some(format!(
                                "bad response: {:?}",
                                String::from_utf8_lossy(&response[..response.len().min(60)])
                            )),
                            Err(error) => Some(error),
                        };
                        let end_ns = now_ns();
                        requests.push(Request {
                            at_ns,
                            end_ns,
                            error,
                        });
                        sleep(Duration::from_millis(5));
                    }
                    requests
                })
            })
            .collect();
        Load { stop, clients }
    }

    fn finish(self) -> Vec<Request> {
        self.stop.store(true, Ordering::SeqCst);
        let mut all: Vec<Request> = self
            .clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        all.sort_by_key(|r| r.at_ns);
        all
    }
}

/// What the load saw in one run.
struct Outcome {
    before: usize,
    failed_before: usize,
    after: usize,
    failed_after: usize,
    first_failure: Option<(f64, String)>,
}

/// The HTTP app under drainit with `drain`, under load from before the
/// SIGTERM until `keep_sending_s` after it, as a load balancer does until it
/// learns that the endpoint is gone.
fn serve_under_load(drain: &str, keep_sending_s: f64) -> Outcome {
    let port = free_port();
    let mut run = Launch::new(&["--drain", drain, "--grace", "10s"]).command(&[
        PYTHON,
        HTTP_APP,
        &port.to_string(),
    ]);
    wait_until(&run, "the HTTP app", 10.0, || http_get(port, "/").is_ok());
    let load = Load::start(port, 4);
    sleep(Duration::from_millis(500));
    let t0 = run.signal(libc::SIGTERM);
    sleep_until(t0, keep_sending_s);
    let requests = load.finish();
    let (code, _) = run.wait_exit(15.0);
    assert_eq!(code, 0, "the app exits 0 on SIGTERM:\n{}", run.stderr());
    // A request in flight at the SIGTERM counts as after it: the shutdown may cut it.
    let (before, after): (Vec<&Request>, Vec<&Request>) =
        requests.iter().partition(|r| r.end_ns < t0);
    let failed = |rs: &[&Request]| rs.iter().filter(|r| r.error.is_some()).count();
    Outcome {
        before: before.len(),
        failed_before: failed(&before),
        after: after.len(),
        failed_after: failed(&after),
        first_failure: after
            .iter()
            .find_map(|r| Some(((r.at_ns as f64 - t0 as f64) / 1e9, r.error.clone()?))),
    }
}

#[test]
fn a_drain_longer_than_the_load_balancers_delay_drops_no_request() {
    // The load balancer keeps sending for 2s after the SIGTERM.
    const L: f64 = 2.0;
    let drained = serve_under_load("3s", L);
    let undrained = serve_under_load("0", L);
    for (drain, outcome) in [("3s", &drained), ("0 ", &undrained)] {
        let first = match &outcome.first_failure {
            Some((at, error)) => format!(" (the first sent at {at:+.3}s: {error})"),
            None => String::new(),
        };
        println!(
            "drain {drain}: {} requests done before SIGTERM, {} failed; {} in flight at SIGTERM or sent in the {L}s after, {} failed{first}",
            outcome.before, outcome.failed_before, outcome.after, outcome.failed_after
        );
    }
    for outcome in [&drained, &undrained] {
        assert!(
            outcome.before > 20 && outcome.after > 50,
            "too few requests to show anything"
        );
        assert_eq!(outcome.failed_before, 0, "requests failed before SIGTERM");
    }
    assert_eq!(
        drained.failed_after, 0,
        "with a 3s drain, no request may fail: {:?}",
        drained.first_failure
    );
    assert!(
        undrained.failed_after > 0,
        "without a drain, requests sent after the SIGTERM should fail"
    );
}

// ---------------------------------------------------------------- nginx

/// `GET path` on a new HTTP/1.1 connection: the Content-Length header and
/// the body, with when the request started and when the body ended.
fn download(port: u16, path: &str) -> (usize, Vec<u8>, u64, u64) {
    let started = now_ns();
    let mut stream = TcpStream::connect_timeout(&addr(port), Duration::from_secs(2))
        .expect("cannot connect to nginx");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    let mut response = Vec::new();
    let result = stream.read_to_end(&mut response);
    let ended = now_ns();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete header ({result:?}): {} bytes", response.len()));
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap_or_else(|| panic!("no Content-Length: {head}"))
        .trim()
        .parse()
        .unwrap();
    (length, response[split + 4..].to_vec(), started, ended)
}

/// The bytes of the big file: not all alike, so that a gap would show.
fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

#[test]
fn nginx_finishes_a_download_in_flight_when_the_drain_ends_with_sigquit() {
    let nginx = require("nginx", "nginx-light");
    let port = free_port();
    let dir = Scratch::new();
    let d = dir.0.display();
    fs::create_dir_all(dir.path("www")).unwrap();
    // 2 MB at 1 MB/s: about 2s.
    const SIZE: usize = 2 << 20;
    fs::write(dir.path("www/big.bin"), pattern(SIZE)).unwrap();
    fs::write(dir.path("www/index.html"), "ok\n").unwrap();
    let config = format!(
        "daemon off;
master_process on;
worker_processes 2;
user root;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
        location /big.bin {{ limit_rate 1m; }}
    }}
}}
"
    );
    fs::write(dir.path("nginx.conf"), config).unwrap();
    let conf = dir.path("nginx.conf");
    let error_log = dir.path("error.log");
    let mut run = Launch::new(&["--drain", "1.5s", "--grace", "15s"])
        .env("DRAINIT_STOP_SIGNAL", "QUIT")
        .command(&[
            nginx.to_str().unwrap(),
            "-p",
            &format!("{d}/"),
            "-e",
            error_log.to_str().unwrap(),
            "-c",
            conf.to_str().unwrap(),
        ]);
    wait_until(&run, "nginx", 10.0, || {
        http_get(port, "/").is_ok_and(|r| r.starts_with(b"HTTP/1.1 200 "))
    });
    let t0 = run.signal(libc::SIGTERM);
    // The download starts 0.7s before the drain ends and takes about 2s.
    sleep_until(t0, 0.8);
    let client = std::thread::spawn(move || download(port, "/big.bin"));
    let (length, body, started, ended) = client.join().unwrap();
    let (code, exited) = run.wait_exit(15.0);
    let stderr = run.stderr();
    let log = fs::read_to_string(&error_log).unwrap_or_default();
    println!(
        "nginx: download of {} bytes from +{:.2}s to +{:.2}s, SIGQUIT at +1.5s, drainit exited {code} at +{:.2}s",
        body.len(),
        secs(started - t0),
        secs(ended - t0),
        secs(exited - t0)
    );
    assert_eq!(length, SIZE);
    assert!(
        body.len() == SIZE && body == pattern(SIZE),
        "the download was cut or corrupted: {} of {SIZE} bytes\n{stderr}\n{log}",
        body.len()
    );
    assert!(
        secs(started - t0) < 1.5 && secs(ended - t0) > 1.8,
        "the download was not in flight when the drain ended: +{:.2}s to +{:.2}s",
        secs(started - t0),
        secs(ended - t0)
    );
    assert_eq!(code, 0, "nginx exits 0 on SIGQUIT:\n{stderr}\n{log}");
    assert!(
        stderr.contains("drain over: sending SIGQUIT to the app at +1.5"),
        "{stderr}"
    );
    // The workers exited before the master, which exited by itself: drainit
    // found nothing left to clean up and killed nothing.
    assert!(
        !stderr.contains(render::LEFT_PROCESSES) && !stderr.contains(render::SENDING_SIGKILL),
        "{stderr}"
    );
    assert!(log.contains("gracefully shutting down"), "{log}");
    assert_eq!(
        log.matches(" exited with code 0").count(),
        2,
        "both workers should exit with code 0:\n{log}"
    );
    assert!(log.lines().last().unwrap_or("").ends_with("exit"), "{log}");
}

// ---------------------------------------------------------------- redis

/// Sends `commands` (inline protocol, pipelined) and returns their replies,
/// which must be one line each (`+OK`, `:1`, ...).
fn redis(port: u16, commands: &[String]) -> Vec<String> {
    let mut stream = TcpStream::connect_timeout(&addr(port), Duration::from_secs(2))
        .expect("cannot connect to redis");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut batch = String::new();
    for command in commands {
        batch.push_str(command);
        batch.push_str("\r\n");
    }
    stream.write_all(batch.as_bytes()).unwrap();
    let mut replies = Vec::new();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 65536];
    while replies.len() < commands.len() {
        let n = stream.read(&mut chunk).expect("redis did not answer");
        assert!(n > 0, "redis closed the connection");
        buffer.extend_from_slice(&chunk[..n]);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\r\n") {
            replies.push(String::from_utf8_lossy(&buffer[..end]).into_owned());
            buffer.drain(..end + 2);
        }
    }
    replies
}

fn set_keys(port: u16, keys: std::ops::Range<usize>) {
    let commands: Vec<String> = keys.map(|i| format!("SET key:{i} value-{i}")).collect();
    let replies = redis(port, &commands);
    assert!(replies.iter().all(|r| r == "+OK"), "{replies:?}");
}

/// A plain redis-server, not under drainit, on an RDB file left by the test.
struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_server(dir: &Path, port: u16, save: &str) -> Vec<String> {
    vec![
        "redis-server".into(),
        "--port".into(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--dir".into(),
        dir.display().to_string(),
        "--dbfilename".into(),
        "dump.rdb".into(),
        "--save".into(),
        save.into(),
        "--appendonly".into(),
        "no".into(),
        "--daemonize".into(),
        "no".into(),
        "--logfile".into(),
        dir.join("redis.log").display().to_string(),
    ]
}

fn redis_ready(port: u16) -> bool {
    TcpStream::connect(addr(port)).is_ok_and(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut reply = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok()
            && s.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    })
}

#[test]
fn redis_saves_every_key_to_its_rdb_when_stopped_after_the_drain() {
    require("redis-server", "redis-server");
    let redis_cli = require("redis-cli", "redis-server");
    const N: usize = 5000;
    let dir = Scratch::new();
    let data = dir.path("data");
    fs::create_dir_all(&data).unwrap();
    let port = free_port();
    // A save point that never comes during the test: the RDB is written at shutdown.
    let args = redis_server(&data, port, "3600 1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = Launch::new(&["--drain", "1s", "--grace", "15s"]).command(&args);
    wait_until(&run, "redis", 10.0, || redis_ready(port));
    set_keys(port, 0..N);
    let rdb = data.join("dump.rdb");
    assert!(!rdb.exists(), "the RDB was written before the shutdown");
    run.signal(libc::SIGTERM);
    // Draining: redis still takes writes, and they must be saved too.
    set_keys(port, N..N + 100);
    let (code, _) = run.wait_exit(15.0);
    let log = fs::read_to_string(data.join("redis.log")).unwrap_or_default();
    assert_eq!(
        code,
        0,
        "redis exits 0 on SIGTERM:\n{}\n{log}",
        run.stderr()
    );
    assert!(
        log.contains("DB saved on disk") && log.contains("ready to exit"),
        "{log}"
    );
    assert!(rdb.exists(), "no RDB after the shutdown:\n{log}");

    // A new redis-server loads the RDB: every key is there.
    let port = free_port();
    let args = redis_server(&data, port, "");
    let check = Redis(
        Command::new(&args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot start redis-server"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !redis_ready(port) {
        assert!(Instant::now() < deadline, "the second redis did not start");
        sleep(Duration::from_millis(20));
    }
    let output = Command::new(redis_cli)
        .args(["-p", &port.to_string(), "DBSIZE"])
        .output()
        .unwrap();
    let keys: usize = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("redis-cli DBSIZE: {output:?}"));
    println!("redis: {keys} keys in the RDB written at shutdown ({N} before SIGTERM, 100 during the drain)");
    assert_eq!(keys, N + 100);
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "GET", &format!("key:{}", N + 99)])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("value-{}", N + 99)
    );
    drop(check);
}
