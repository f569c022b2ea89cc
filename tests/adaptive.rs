//! The adaptive drain (`--drain-quiet`): the drain ends once the app's TCP
//! listeners have had no traffic for the quiet time, measured from the
//! kernel. drainit runs as PID 1 with a network namespace of its own, so that
//! no other traffic on this machine counts.

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::*;

const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/adaptive/server.py");
const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/adaptive/client.py");
const PORT: &str = "8080";

/// Starts the server under drainit with `options`, a client that keeps
/// sending (`mode`) until `load_s` after the SIGTERM, sends the SIGTERM, and
/// returns when the app got its stop signal (seconds after the SIGTERM), the
/// client's failed requests, and drainit's stderr.
fn drain_under_load(options: &[&str], mode: &str, load_s: f64) -> (f64, u32, String) {
    let scratch = Scratch::new();
    let log = scratch.path("server.log");
    let app = format!(
        "ip link set lo up && exec {PYTHON} {SERVER} {} {PORT}",
        log.display()
    );
    let mut run = Launch::new(options)
        .own_network()
        .command(&["sh", "-c", &app]);
    wait_for_line(&log, "app ready");
    let lead = Duration::from_millis(500);
    let until = now_ns() + lead.as_nanos() as u64 + (load_s * 1e9) as u64;
    let client = run
        .in_network(PYTHON)
        .args([CLIENT, PORT, &until.to_string(), mode])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    sleep(lead);
    let t0 = run.signal(libc::SIGTERM);
    let output = client.wait_with_output().unwrap();
    let (code, _) = run.wait_exit(40.0);
    assert_eq!(code, 0, "{}", run.stderr());
    let report = String::from_utf8_lossy(&output.stdout).to_string();
    println!("{mode} load for {load_s}s after SIGTERM: {}", report.trim());
    let count = |key: &str| -> u32 {
        report
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {report:?}"))
    };
    assert!(count("ok=") > 20, "the client barely ran: {report}");
    let term = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .find(|l| l.ends_with("app TERM"))
        .and_then(|l| l.split(' ').next()?.parse::<u64>().ok())
        .expect("the app got no SIGTERM");
    (secs(term - t0), count("failed="), run.stderr())
}

fn wait_for_line(path: &std::path::Path, line: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(path)
        .unwrap_or_default()
        .contains(line)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no {line:?} in {path:?}"
        );
        sleep(Duration::from_millis(10));
    }
}

const ADAPTIVE: [&str; 6] = ["--drain", "20s", "--drain-min", "1s", "--drain-quiet", "1s"];

#[test]
fn the_drain_ends_a_quiet_time_after_new_connections_stop() {
    let (stop, failed, stderr) = drain_under_load(&ADAPTIVE, "new", 2.0);
    println!("stop signal at +{stop:.2}s (traffic until +2s, quiet 1s, maximum 20s)");
    assert_eq!(failed, 0);
    assert!(
        (3.0..4.0).contains(&stop),
        "stop signal at +{stop:.3}s, expected about +3s\n{stderr}"
    );
    assert!(
        stderr.contains("no new connection and no byte received for 1s"),
        "{stderr}"
    );
}

#[test]
fn bytes_on_keep_alive_connections_count_as_traffic() {
    let (stop, failed, stderr) = drain_under_load(&ADAPTIVE, "keepalive", 2.0);
    println!("stop signal at +{stop:.2}s (keep-alive traffic until +2s, quiet 1s)");
    assert_eq!(failed, 0);
    assert!(
        (3.0..4.0).contains(&stop),
        "stop signal at +{stop:.3}s, expected about +3s\n{stderr}"
    );
}

#[test]
fn traffic_that_never_stops_gets_the_whole_maximum() {
    let options = [
        "--drain",
        "3s",
        "--drain-min",
        "500ms",
        "--drain-quiet",
        "500ms",
    ];
    let (stop, failed, stderr) = drain_under_load(&options, "new", 5.0);
    println!("stop signal at +{stop:.2}s (traffic until +5s, maximum 3s)");
    assert!(
        (3.0..3.75).contains(&stop),
        "stop signal at +{stop:.3}s, expected +3s\n{stderr}"
    );
    assert!(
        stderr.contains("drain reached its maximum of 3s"),
        "{stderr}"
    );
    // Requests after the stop fail: the maximum was too short for this load.
    assert!(failed > 0);
}

#[test]
fn without_traffic_the_drain_lasts_its_minimum() {
    let scratch = Scratch::new();
    let log = scratch.path("server.log");
    let app = format!(
        "ip link set lo up && exec {PYTHON} {SERVER} {} {PORT}",
        log.display()
    );
    let mut run = Launch::new(&[
        "--drain",
        "20s",
        "--drain-min",
        "1.5s",
        "--drain-quiet",
        "500ms",
    ])
    .own_network()
    .command(&["sh", "-c", &app]);
    wait_for_line(&log, "app ready");
    let t0 = run.signal(libc::SIGTERM);
    let (code, exited) = run.wait_exit(30.0);
    assert_eq!(code, 0, "{}", run.stderr());
    let at = secs(exited - t0);
    assert!(
        (1.5..2.25).contains(&at),
        "exited at +{at:.3}s, expected about +1.5s"
    );
}
