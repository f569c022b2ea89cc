//! The shutdown timeline as a user sees it: drainit as PID 1 of a PID
//! namespace, the recorder as the app, real signals and real clocks.
//!
//! Lower bounds are exact (the stop signal must never come early); upper
//! bounds leave room for a loaded 2-core machine.

mod common;

use common::*;

/// How late a signal may arrive and still count as on time (scheduling on a busy machine).
const LATE_S: f64 = 0.75;

#[test]
fn stop_signal_reaches_the_whole_group_at_the_end_of_the_drain_not_before() {
    let mut run = Launch::new(&["--drain", "1.5s"])
        .env("DRAINIT_STOP_SIGNAL", "QUIT")
        .recorder(&["--grandchild"]);
    run.wait_for(
        |r| r.role == "grandchild" && r.what.starts_with("ready"),
        10.0,
    );
    let t0 = run.signal(libc::SIGTERM);
    let (code, _) = run.wait_exit(10.0);
    assert_eq!(code, 0, "{}", run.stderr());
    for role in ["app", "grandchild"] {
        let at = run
            .received(role, "QUIT")
            .unwrap_or_else(|| panic!("{role} got no SIGQUIT: {:?}", run.records()));
        let after = secs(at - t0);
        assert!(
            (1.5..1.5 + LATE_S).contains(&after),
            "{role} got SIGQUIT {after:.3}s after SIGTERM, expected 1.5s"
        );
        assert_eq!(
            run.received(role, "TERM"),
            None,
            "the app must not see SIGTERM"
        );
    }
    assert!(
        run.stderr().contains("SIGTERM: draining for 1.5s"),
        "{}",
        run.stderr()
    );
}

#[test]
fn an_app_that_ignores_the_stop_signal_is_killed_at_grace_minus_margin() {
    let mut run = Launch::new(&["--drain", "500ms", "--grace", "4s", "--kill-margin", "1.5s"])
        .recorder(&["--ignore", "TERM"]);
    let t0 = run.signal(libc::SIGTERM);
    let (code, exited) = run.wait_exit(10.0);
    assert_eq!(code, 137, "{}", run.stderr());
    let term = secs(run.received("app", "TERM").expect("no SIGTERM") - t0);
    assert!(
        (0.5..0.5 + LATE_S).contains(&term),
        "SIGTERM at +{term:.3}s"
    );
    let exit = secs(exited - t0);
    assert!(
        (2.5..4.0).contains(&exit),
        "drainit exited at +{exit:.3}s; SIGKILL is due at +2.5s and the platform's at +4s"
    );
    let stderr = run.stderr();
    assert!(
        stderr.contains("sending SIGKILL to the app's group and every other process"),
        "{stderr}"
    );
    assert!(stderr.contains("exit 137: SIGTERM at +0s"), "{stderr}");
}

#[test]
fn the_app_exiting_mid_drain_ends_drainit_at_once_with_its_code() {
    let mut run =
        Launch::new(&["--drain", "20s", "--grace", "30s"]).recorder(&["--exit-after", "1:4"]);
    let t0 = run.signal(libc::SIGTERM);
    let (code, exited) = run.wait_exit(10.0);
    assert_eq!(code, 4, "{}", run.stderr());
    let app_exit = run
        .received("app", "exit")
        .expect("the app did not exit by itself");
    assert!(
        secs(exited - app_exit) < LATE_S,
        "drainit exited {:.3}s after the app",
        secs(exited - app_exit)
    );
    assert!(secs(exited - t0) < 5.0);
    assert_eq!(run.received("app", "TERM"), None);
}

#[test]
fn a_repeated_sigterm_does_not_cut_the_drain_short() {
    // Kubernetes retries the stop from the start when the kubelet or the
    // runtime restarts mid-termination.
    let mut run = Launch::new(&["--drain", "1.5s"]).recorder(&[]);
    let t0 = run.signal(libc::SIGTERM);
    std::thread::sleep(std::time::Duration::from_millis(300));
    run.signal(libc::SIGTERM);
    let (code, _) = run.wait_exit(10.0);
    let stderr = run.stderr();
    assert_eq!(code, 0, "{stderr}");
    let term = secs(run.received("app", "TERM").expect("no SIGTERM") - t0);
    assert!(
        (1.5..1.5 + LATE_S).contains(&term),
        "SIGTERM at +{term:.3}s, expected at the end of the drain, +1.5s\n{stderr}"
    );
    assert!(stderr.contains("SIGTERM again at +0."), "{stderr}");
    assert!(stderr.contains("the drain goes on"), "{stderr}");
}

#[test]
fn sigint_is_forwarded_at_once_and_cuts_the_drain_short() {
    let mut run = Launch::new(&["--drain", "20s"]).recorder(&[]);
    run.signal(libc::SIGTERM);
    let sent = run.signal(libc::SIGINT);
    let (code, _) = run.wait_exit(10.0);
    assert_eq!(code, 0);
    let int = secs(run.received("app", "INT").expect("no SIGINT") - sent);
    assert!(int < LATE_S, "SIGINT arrived after {int:.3}s");
    assert_eq!(run.received("app", "TERM"), None);
}

#[test]
fn sigint_without_sigterm_is_forwarded_at_once() {
    let mut run = Launch::new(&["--drain", "20s"]).recorder(&[]);
    let sent = run.signal(libc::SIGINT);
    let (code, _) = run.wait_exit(10.0);
    assert_eq!(code, 0);
    let int = secs(run.received("app", "INT").expect("no SIGINT") - sent);
    assert!(int < LATE_S, "SIGINT arrived after {int:.3}s");
}

#[test]
fn other_signals_are_forwarded_at_once_before_and_during_the_drain() {
    let run = Launch::new(&["--drain", "20s"]).recorder(&[]);
    for (signal, name) in [(libc::SIGHUP, "HUP"), (libc::SIGUSR1, "USR1")] {
        let sent = run.signal(signal);
        let got = run.wait_for(|r| r.what == name, 5.0);
        assert!(
            secs(got.at_ns - sent) < LATE_S,
            "{name} took {:.3}s",
            secs(got.at_ns - sent)
        );
    }
    run.signal(libc::SIGTERM);
    for (signal, name) in [(libc::SIGUSR2, "USR2"), (libc::SIGWINCH, "WINCH")] {
        let sent = run.signal(signal);
        let got = run.wait_for(|r| r.what == name, 5.0);
        assert!(
            secs(got.at_ns - sent) < LATE_S,
            "{name} took {:.3}s",
            secs(got.at_ns - sent)
        );
    }
    assert_eq!(run.received("app", "TERM"), None);
}

#[test]
fn the_app_keeps_answering_http_during_the_drain() {
    let port = free_port();
    let mut run = Launch::new(&["--drain", "2s"]).command(&[
        PYTHON,
        "-m",
        "http.server",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while http_get(port).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never answered"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let t0 = run.signal(libc::SIGTERM);
    for at in [0.3, 1.3] {
        let wait = (at - secs(now_ns() - t0)).max(0.0);
        std::thread::sleep(std::time::Duration::from_secs_f64(wait));
        let status = http_get(port);
        assert_eq!(
            status.as_deref(),
            Some("HTTP/1.0 200 OK"),
            "at +{at}s of the drain"
        );
    }
    let (code, exited) = run.wait_exit(10.0);
    // http.server dies of the SIGTERM that ends the drain.
    assert_eq!(code, 128 + libc::SIGTERM, "{}", run.stderr());
    assert!(secs(exited - t0) >= 2.0);
}

/// The status line of `GET /` on `port`, if the server answers.
fn http_get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.lines().next().map(str::to_string)
}
