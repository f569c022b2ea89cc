//! drainit under hostile conditions, as PID 1 of a PID namespace: signal
//! storms, orphan floods, apps that escape their process group or fork while
//! being killed, a parent that ignored or blocked signals, closed or broken
//! stdio, too few file descriptors or processes, bytes that are not UTF-8.
//! Each time drainit keeps its timeline and loses nothing.
//!
//! The apps are `tests/hostile/app.py` (records events on CLOCK_MONOTONIC)
//! and two C programs compiled at test time with `cc` (the linker rustc uses,
//! so it is there wherever the tests build): `orphans.c` and `forkloop.c`.
//! `tests/hostile/wrap.py` starts drainit in a hostile state (dispositions,
//! mask, rlimits, stdio) by exec'ing it, inside the namespace, so that drainit
//! is still PID 1.
//!
//! Lower bounds are exact (the stop signal never comes early); upper bounds
//! leave room for a busy 2-core machine.

mod common;

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use common::*;
use drainit::render;

/// How late an action may come and still count as on time.
const LATE_S: f64 = 1.0;

/// The tests that load both cores (storm, orphan flood, fork loop) take
/// turns, so that none of them makes another miss its timing.
fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------- storms

/// ≥100,000 HUP, USR1, USR2, WINCH and CHLD from four sender threads; SIGTERM
/// in the middle of it; the storm goes on through the whole drain.
#[test]
fn a_signal_storm_neither_delays_nor_hastens_the_stop_signal() {
    const DRAIN_S: f64 = 1.5;
    const SIGNALS: [i32; 5] = [
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
        libc::SIGCHLD,
    ];
    let _heavy = heavy();
    let out = Scratch::new();
    let command = app(
        &out.0,
        &[
            "--count",
            "HUP,USR1,USR2,WINCH",
            "--count-max",
            "1000",
            "--on-term",
            "42",
        ],
    );
    let mut run = Launch::new(&["--drain", "1.5s", "--grace", "10s"]).command(&strs(&command));
    ready(&out.0, 10.0);
    let target = Arc::new(PidFd::open(run.drainit_pid).unwrap());
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (target, sent, stop) = (target.clone(), sent.clone(), stop.clone());
            thread::spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    // Bursts, so that the storm lasts through the drain
                    // without taking both cores from everything else.
                    for _ in 0..100 {
                        match target.signal(SIGNALS[i % SIGNALS.len()]) {
                            Ok(()) => sent.fetch_add(1, Ordering::Relaxed),
                            Err(_) => return, // drainit has exited
                        };
                        i += 1;
                    }
                    sleep(Duration::from_millis(2));
                }
            })
        })
        .collect();
    while sent.load(Ordering::Relaxed) < 60_000 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "storm too slow"
        );
        sleep(Duration::from_millis(1));
    }
    let before_term = sent.load(Ordering::Relaxed);
    let t0 = now_ns();
    target.signal(libc::SIGTERM).unwrap();
    let (code, exited) = run.wait_exit(15.0);
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.join().unwrap();
    }
    let total = sent.load(Ordering::Relaxed);
    let during_drain = total - before_term;
    eprintln!(
        "storm: {total} signals sent in {:.2}s, {during_drain} of them after SIGTERM",
        started.elapsed().as_secs_f64()
    );
    assert!(total >= 100_000, "only {total} signals sent");
    assert!(
        during_drain >= 20_000,
        "the storm stopped early: {during_drain}"
    );
    assert_eq!(
        code,
        42,
        "drainit must exit with the app's code\n{}",
        run.stderr()
    );

    let term = recorded(&out.path("events"), "app", "TERM")
        .unwrap_or_else(|| panic!("the app got no SIGTERM: {:?}", events(&out.0)));
    eprintln!(
        "storm: the app got the stop signal at +{:.3}s",
        secs(term - t0)
    );
    assert_within(
        "the stop signal",
        secs(term - t0),
        DRAIN_S,
        LATE_S,
        &run.stderr(),
    );
    assert!(
        secs(exited - t0) < DRAIN_S + LATE_S + 0.5,
        "drainit exited at +{:.3}s\n{}",
        secs(exited - t0),
        run.stderr()
    );
    // Every kind of signal of the storm reached the app (drainit forwards
    // them all but SIGCHLD), and nothing stopped it before the stop signal.
    let counts = events(&out.0)
        .into_iter()
        .find(|e| e.what.starts_with("counts"))
        .expect("no counts")
        .what;
    for kind in ["HUP", "USR1", "USR2", "WINCH"] {
        assert!(
            !counts.contains(&format!(" {kind}=0")),
            "the app got no SIG{kind}: {counts}"
        );
    }
    let stderr = run.stderr();
    assert!(stderr.contains("SIGTERM: draining for 1.5s"), "{stderr}");
    assert!(stderr.contains("drain over: sending SIGTERM"), "{stderr}");
    assert!(!stderr.contains(render::DRAIN_GOES_ON), "{stderr}");
}

/// 10,000 orphans, half of them already zombies when they are re-parented:
/// drainit reaps each one (it logs each at debug level), none is left, and it
/// still answers SIGTERM at once.
#[test]
fn an_orphan_flood_leaves_no_zombie_and_drainit_still_answers() {
    const ORPHANS: usize = 10_000;
    let _heavy = heavy();
    let build = Scratch::new();
    let orphans = compile("orphans", &build.0);
    let done = build.path("done");
    let mut run = Launch::new(&["-v"]).command(&[
        orphans.to_str().unwrap(),
        &ORPHANS.to_string(),
        done.to_str().unwrap(),
    ]);
    wait_file(&done, 15.0);
    let ns = fs::read_link(format!("/proc/{}/ns/pid", run.drainit_pid)).unwrap();
    let reaped = |run: &Run| run.stderr().matches("reaped pid ").count();
    let settled = eventually(8.0, || {
        reaped(&run) == ORPHANS && members(&ns).len() == 2 && zombies_of(run.drainit_pid) == 0
    });
    assert!(
        settled,
        "after the flood: {} orphans reaped of {ORPHANS}, {} processes in the namespace \
         (expected drainit and the app), {} zombies under drainit",
        reaped(&run),
        members(&ns).len(),
        zombies_of(run.drainit_pid)
    );
    let t0 = run.signal(libc::SIGTERM);
    let (code, exited) = run.wait_exit(10.0);
    assert_eq!(code, 7, "{}", run.stderr().lines().last().unwrap_or(""));
    assert!(
        secs(exited - t0) < LATE_S,
        "drainit took {:.3}s to exit after SIGTERM",
        secs(exited - t0)
    );
    assert_eq!(reaped(&run), ORPHANS, "an orphan reaped twice or lost");
}

// ------------------------------------------------- escapees and fork loops

/// The escapee's pid inside the namespace, from app.py's events.
fn escapee(dir: &Path) -> i32 {
    let line = events(dir)
        .into_iter()
        .find(|e| e.role == "escapee")
        .expect("no escapee")
        .what;
    line["escapee pid=".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The host pid of the escapee, after checking that it left the app's group
/// and session.
fn escapee_host_pid(run: &Run, dir: &Path) -> (i32, i32, PathBuf) {
    let app = ready(dir, 10.0);
    let nspid = escapee(dir);
    let ns = fs::read_link(format!("/proc/{}/ns/pid", run.drainit_pid)).unwrap();
    let host = host_pid(&ns, nspid).expect("the escapee is not running");
    // As seen inside the namespace: the last number of NSpgid and NSsid.
    let inner = |field: &str| -> i32 {
        let line = status_field(host, field).unwrap();
        line.split_whitespace().last().unwrap().parse().unwrap()
    };
    let app_pgid = app.iter().find(|(k, _)| k == "pgid").unwrap().1;
    assert_eq!(
        inner("NSpgid"),
        nspid,
        "the escapee did not leave the app's group"
    );
    assert_eq!(inner("NSsid"), nspid, "the escapee did not start a session");
    assert_ne!(nspid, app_pgid);
    (nspid, host, ns)
}

/// drainit reaped `nspid` itself: it was dead before drainit exited, killed
/// by drainit rather than by the kernel when the namespace went away.
fn assert_reaped_by_drainit(run: &Run, nspid: i32, host: i32, ns: &Path) {
    let stderr = run.stderr();
    assert!(
        stderr.contains(&format!("reaped pid {nspid}: ")),
        "drainit did not reap the escapee (pid {nspid}) before it exited:\n{stderr}"
    );
    // An orphan, not the app: its end is not worded as the app's.
    assert!(
        !stderr.contains(&format!("reaped pid {nspid}: app ")),
        "{stderr}"
    );
    assert!(!stderr.contains(render::NOT_REAPED), "{stderr}");
    let gone = eventually(1.0, || {
        process(host).is_none() || !members(ns).contains(&host)
    });
    assert!(gone, "the escapee (host pid {host}) is still there");
}

#[test]
fn an_app_ignoring_term_with_a_setsid_escapee_is_gone_at_grace_minus_margin() {
    let out = Scratch::new();
    let command = app(&out.0, &["--ignore-term", "--escape"]);
    let mut run = Launch::new(&[
        "-v",
        "--drain",
        "300ms",
        "--grace",
        "3s",
        "--kill-margin",
        "1s",
    ])
    .command(&strs(&command));
    let (nspid, host, ns) = escapee_host_pid(&run, &out.0);
    let t0 = run.signal(libc::SIGTERM);
    let (code, exited) = run.wait_exit(10.0);
    assert_eq!(code, 137, "{}", run.stderr());
    let term = recorded(&out.path("events"), "app", "TERM").expect("the app got no SIGTERM");
    assert_within(
        "the stop signal",
        secs(term - t0),
        0.3,
        LATE_S,
        &run.stderr(),
    );
    assert_within(
        "drainit's exit",
        secs(exited - t0),
        2.0,
        LATE_S,
        &run.stderr(),
    );
    assert!(
        run.stderr()
            .contains("sending SIGKILL to the app's group and every other process"),
        "{}",
        run.stderr()
    );
    assert_reaped_by_drainit(&run, nspid, host, &ns);
}

#[test]
fn a_setsid_escapee_left_by_an_exited_app_is_gone_after_the_cleanup() {
    let out = Scratch::new();
    let command = app(&out.0, &["--on-term", "5", "--escape"]);
    let mut run = Launch::new(&[
        "-v",
        "--drain",
        "300ms",
        "--grace",
        "10s",
        "--cleanup",
        "1s",
    ])
    .command(&strs(&command));
    let (nspid, host, ns) = escapee_host_pid(&run, &out.0);
    let t0 = run.signal(libc::SIGTERM);
    let (code, exited) = run.wait_exit(10.0);
    assert_eq!(
        code,
        5,
        "drainit must exit with the app's code\n{}",
        run.stderr()
    );
    let term = recorded(&out.path("events"), "app", "TERM").expect("the app got no SIGTERM");
    assert_within(
        "the stop signal",
        secs(term - t0),
        0.3,
        LATE_S,
        &run.stderr(),
    );
    // Stop signal at +0.3s, the app exits, its escapee ignores the stop
    // signal drainit sends it and gets SIGKILL 1s (the cleanup) later.
    assert_within(
        "drainit's exit",
        secs(exited - t0),
        1.3,
        LATE_S,
        &run.stderr(),
    );
    assert!(
        run.stderr().contains("but left processes running"),
        "{}",
        run.stderr()
    );
    assert_reaped_by_drainit(&run, nspid, host, &ns);
}

/// SIGKILL to a process when dropped, so that a failed test leaves nothing behind.
struct KillOnDrop(PidFd);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.signal(libc::SIGKILL);
    }
}

/// Not PID 1, drainit is a subreaper: the escapee is re-parented to it when
/// the app exits. drainit cannot use kill(-1) outside a container, so it
/// signals its own children as well as the app's group: the escapee gets the
/// stop signal and then SIGKILL, and is reaped before drainit exits. (Found
/// by this test: drainit used to signal the group only, and left it running.)
#[test]
fn not_pid1_a_setsid_escapee_left_by_the_app_is_not_left_running() {
    let out = Scratch::new();
    let command = app(&out.0, &["--on-term", "5", "--escape"]);
    let mut run = Launch::new(&["--cleanup", "500ms"])
        .not_pid1()
        .command(&strs(&command));
    ready(&out.0, 10.0);
    // Not in a namespace of its own: the escapee's pid is a host pid.
    let escapee = escapee(&out.0);
    let handle = KillOnDrop(PidFd::open(escapee).expect("the escapee is not running"));
    run.signal(libc::SIGTERM);
    let (code, _) = run.wait_exit(10.0);
    let alive = handle.0.signal(0).is_ok() && process(escapee).is_some_and(|p| p.state != 'Z');
    let parent = process(escapee).map(|p| p.ppid);
    drop(handle);
    assert_eq!(code, 5, "{}", run.stderr());
    assert!(
        !alive,
        "drainit (not PID 1) exited and left the app's setsid'd child running (pid {escapee}, \
         now a child of {parent:?}); stderr:\n{}",
        run.stderr()
    );
}

/// The app and two children ignore the stop signal and exit by themselves
/// right around grace − margin, racing drainit's SIGKILL: five runs at once,
/// from 40ms before to 40ms after. Whoever wins, drainit exits at once with
/// the app's code or 137, and reaps everything first.
#[test]
fn an_app_exiting_while_the_sigkill_is_sent() {
    const KILL_AFTER_S: f64 = 1.0;
    let runs: Vec<_> = [-0.040, -0.015, 0.0, 0.015, 0.040]
        .into_iter()
        .map(|offset: f64| {
            thread::spawn(move || {
                let out = Scratch::new();
                let exit_after = format!("{:.3}:3", KILL_AFTER_S + offset);
                let command = app(
                    &out.0,
                    &["--exit-after-term", &exit_after, "--children", "2"],
                );
                let mut run = Launch::new(&["--grace", "1.5s", "--kill-margin", "500ms"])
                    .command(&strs(&command));
                ready(&out.0, 10.0);
                let ns = fs::read_link(format!("/proc/{}/ns/pid", run.drainit_pid)).unwrap();
                let ready_children = eventually(10.0, || {
                    events(&out.0)
                        .iter()
                        .filter(|e| e.role == "child" && e.what.starts_with("ready"))
                        .count()
                        == 2
                });
                assert!(ready_children, "the app's children did not start");
                let t0 = run.signal(libc::SIGTERM);
                let (code, exited) = run.wait_exit(10.0);
                let stderr = run.stderr();
                assert!(
                    code == 3 || code == 137,
                    "offset {offset}: exit {code}\n{stderr}"
                );
                assert!(
                    secs(exited - t0) < KILL_AFTER_S + 0.040 + LATE_S,
                    "offset {offset}: drainit exited at +{:.3}s\n{stderr}",
                    secs(exited - t0)
                );
                assert!(!stderr.contains(render::NOT_REAPED), "{stderr}");
                assert!(
                    eventually(1.0, || members(&ns).is_empty()),
                    "processes left: {:?}",
                    members(&ns)
                );
                code
            })
        })
        .collect();
    let codes: Vec<i32> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    eprintln!("exit codes from 40ms early to 40ms late: {codes:?}");
}

/// The app and three loopers that left its group and session fork a child
/// every half millisecond each and ignore SIGTERM. SIGKILL to every process
/// at grace − margin ends them all at once.
#[test]
fn a_fork_loop_ignoring_term_is_gone_at_grace_minus_margin() {
    let _heavy = heavy();
    let build = Scratch::new();
    let forkloop = compile("forkloop", &build.0);
    let ready_file = build.path("ready");
    let mut run = Launch::new(&["--grace", "2.5s", "--kill-margin", "1s"]).command(&[
        forkloop.to_str().unwrap(),
        "3",
        ready_file.to_str().unwrap(),
    ]);
    wait_file(&ready_file, 10.0);
    let ns = fs::read_link(format!("/proc/{}/ns/pid", run.drainit_pid)).unwrap();
    sleep(Duration::from_millis(300));
    let sessions: std::collections::BTreeSet<i32> = members(&ns)
        .into_iter()
        .filter_map(|pid| {
            status_field(pid, "NSsid")?
                .split_whitespace()
                .last()?
                .parse()
                .ok()
        })
        .collect();
    assert!(
        sessions.len() >= 4,
        "expected the session of drainit and the app, and 3 of the loopers: {sessions:?}"
    );
    let t0 = run.signal(libc::SIGTERM);
    let (code, exited) = run.wait_exit(10.0);
    let stderr = run.stderr();
    assert_eq!(code, 137, "{stderr}");
    assert_within(
        "drainit's exit",
        secs(exited - t0),
        1.5,
        LATE_S,
        &run.stderr(),
    );
    assert!(!stderr.contains(render::NOT_REAPED), "{stderr}");
    assert!(
        eventually(1.0, || members(&ns).is_empty()),
        "processes left: {:?}",
        members(&ns)
    );
}

// ------------------------------------------------ what drainit inherits

/// The signals of a comma list such as `TERM,INT`, as a /proc sigset.
fn bits(names: &str) -> u64 {
    names
        .split(',')
        .map(|name| bit(signal_number(name)))
        .fold(0, |set, b| set | b)
}

fn signal_number(name: &str) -> i32 {
    match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "USR1" => libc::SIGUSR1,
        "PIPE" => libc::SIGPIPE,
        "TERM" => libc::SIGTERM,
        "CHLD" => libc::SIGCHLD,
        other => panic!("no signal {other} here"),
    }
}

/// `wrap.py --ignore ... -- drainit --drain 500ms -- sleep 1000`.
fn sleeper(wrap: &[&str], options: &[&str], stderr: &Path) -> Run {
    Launch::new(options)
        .wrapped(wrap)
        .stderr_to(stderr)
        .command(&["/bin/sleep", "1000"])
}

/// exec(2) keeps ignored signals, and so do tini and dumb-init for their
/// child: `nohup drainit -- app` leaves SIGHUP ignored in the app. drainit
/// still drains on the SIGTERM its parent ignored.
#[test]
fn signals_ignored_by_the_parent_stay_ignored_in_the_app_and_drainit_still_drains() {
    let dir = Scratch::new();
    let ignored = "TERM,INT,HUP,QUIT,USR1,PIPE";
    // The app ignores TERM too: it is stopped with USR2, which it does not ignore.
    let mut drainit = sleeper(
        &["--ignore", ignored],
        &["--drain", "500ms", "--stop-signal", "USR2"],
        &dir.path("stderr"),
    );
    let app = drainit.app(Some("sleep"), 10.0);
    assert_eq!(
        sigset(drainit.drainit_pid, "SigIgn") & STANDARD,
        bits(ignored),
        "wrap.py"
    );
    assert_eq!(
        sigset(app, "SigIgn") & STANDARD,
        bits(ignored),
        "the app's SigIgn"
    );
    assert_eq!(sigset(app, "SigBlk"), 0, "the app's SigBlk");
    let t0 = drainit.signal(libc::SIGTERM);
    let (code, exited) = drainit.wait_exit(10.0);
    assert_eq!(code, 128 + libc::SIGUSR2, "{}", drainit.stderr());
    assert_within(
        "drainit's exit",
        secs(exited - t0),
        0.5,
        LATE_S,
        &drainit.stderr(),
    );
    assert!(drainit.stderr().contains("SIGTERM: draining for 500ms"));
}

/// exec(2) keeps the signal mask, and so do tini and dumb-init: the app
/// starts with what drainit's parent blocked (which here keeps it from
/// handling the SIGINT it is sent, so SIGKILL ends it on time).
#[test]
fn signals_blocked_by_the_parent_stay_blocked_in_the_app_and_drainit_still_drains() {
    let dir = Scratch::new();
    let blocked = "TERM,INT,HUP,QUIT,USR1,CHLD";
    let mut drainit = sleeper(
        &["--block", blocked],
        &["--drain", "1.5s", "--grace", "3s", "--kill-margin", "1s"],
        &dir.path("stderr"),
    );
    let app = drainit.app(Some("sleep"), 10.0);
    assert_eq!(sigset(app, "SigBlk"), bits(blocked), "the app's SigBlk");
    assert_eq!(sigset(app, "SigIgn") & STANDARD, 0, "the app's SigIgn");
    let t0 = drainit.signal(libc::SIGTERM);
    sleep(Duration::from_millis(300));
    drainit.signal(libc::SIGINT);
    let (code, exited) = drainit.wait_exit(10.0);
    let stderr = drainit.stderr();
    // SIGTERM started the drain, SIGINT cut it short and went to the app,
    // which has it blocked: SIGKILL at grace − margin.
    assert_eq!(code, 137, "{stderr}");
    assert_within("drainit's exit", secs(exited - t0), 2.0, LATE_S, &stderr);
    assert!(stderr.contains("SIGTERM: draining for 1.5s"), "{stderr}");
    assert!(stderr.contains("drain cut short"), "{stderr}");
}

/// Signals 1 to 31. glibc keeps 32 and 33 for itself (its sigaction refuses them).
const STANDARD: u64 = (1 << 31) - 1;

/// glibc's reserved signals 32 and 33, left ignored by a parent (glibc's
/// posix_spawn leaves 32 ignored in every child): the app inherits them
/// ignored, as through exec, whatever glibc's sigaction allows. Here the test
/// sets both to SIG_IGN itself (with the raw system call), so that it does
/// not depend on how it was started.
#[test]
fn glibc_reserved_signals_ignored_by_the_parent_stay_ignored_in_the_app() {
    let dir = Scratch::new();
    let mut drainit = Launch::new(&[])
        .wrapped(&[])
        .ignore_reserved()
        .stderr_to(&dir.path("stderr"))
        .command(&["/bin/sleep", "1000"]);
    let app = drainit.app(Some("sleep"), 10.0);
    let reserved = bit(32) | bit(33);
    assert_eq!(
        sigset(drainit.drainit_pid, "SigIgn") & reserved,
        reserved,
        "not set up"
    );
    let ignored = sigset(app, "SigIgn");
    drainit.signal(libc::SIGTERM);
    assert_eq!(drainit.wait_exit(10.0).0, 143);
    assert_eq!(
        ignored & reserved,
        reserved,
        "the app's SigIgn {ignored:#x}: bit 31 is signal 32, bit 32 is signal 33"
    );
}

/// A parent that left SIGCHLD ignored (SIG_IGN survives exec): the kernel
/// then reaps drainit's children itself and sends it no SIGCHLD, so drainit
/// never learns that the app exited (as before ce6059f): drainit must set
/// SIGCHLD back to SIG_DFL.
fn chld_ignored(drainit: Launch, dir: &Scratch) {
    let mut drainit =
        drainit
            .stderr_to(&dir.path("stderr"))
            .command(&["/bin/sh", "-c", "sleep 0.3; exit 3"]);
    drainit.app(None, 10.0);
    match drainit.try_wait_exit(4.0) {
        Some((code, _)) => assert_eq!(code, 3, "{}", drainit.stderr()),
        None => panic!(
            "drainit, started with SIGCHLD ignored, did not notice that the app exited \
             (0.3s after the start) and still runs 4s later; stderr:\n{}",
            drainit.stderr()
        ),
    }
}

#[test]
fn chld_ignored_by_the_parent_as_pid1() {
    let dir = Scratch::new();
    let spec = Launch::new(&[]).wrapped(&["--ignore", "CHLD"]);
    chld_ignored(spec, &dir);
}

#[test]
fn chld_ignored_by_the_parent_not_pid1() {
    let dir = Scratch::new();
    let spec = Launch::new(&[]).wrapped(&["--ignore", "CHLD"]).not_pid1();
    chld_ignored(spec, &dir);
}

/// drainit and the app in a hostile state: drain 300ms, app.py exits 9 on SIGTERM.
fn drains_normally(wrap: &[&str], dir: &Scratch) -> Run {
    let out = Scratch::new();
    let command = app(&out.0, &["--on-term", "9"]);
    let mut drainit = Launch::new(&["-v", "--drain", "300ms"])
        .wrapped(wrap)
        .stderr_to(&dir.path("stderr"))
        .command(&strs(&command));
    ready(&out.0, 10.0);
    let t0 = drainit.signal(libc::SIGTERM);
    let (code, exited) = drainit.wait_exit(10.0);
    assert_eq!(code, 9, "{}", drainit.stderr());
    let term = recorded(&out.path("events"), "app", "TERM").expect("the app got no SIGTERM");
    assert_within(
        "the stop signal",
        secs(term - t0),
        0.3,
        LATE_S,
        &drainit.stderr(),
    );
    assert!(
        secs(exited - t0) < 0.3 + LATE_S,
        "drainit exited at +{:.3}s\n{}",
        secs(exited - t0),
        drainit.stderr()
    );
    drainit
}

#[test]
fn started_with_stdin_stdout_and_stderr_closed() {
    let dir = Scratch::new();
    let out = Scratch::new();
    let command = app(&out.0, &["--on-term", "9"]);
    let mut drainit = Launch::new(&["-v", "--drain", "300ms"])
        .wrapped(&["--close-stdio"])
        .stderr_to(&dir.path("stderr"))
        .command(&strs(&command));
    ready(&out.0, 10.0);
    let app = drainit.app(None, 10.0);
    // A closed 0, 1 or 2 becomes /dev/null at start-up, so that no descriptor
    // drainit opens later (the pipe of the spawn) can take the place of stdio.
    for pid in [drainit.drainit_pid, app] {
        let fds = fds(pid);
        let stdio: Vec<_> = fds.iter().filter(|(fd, _)| *fd <= 2).collect();
        for (fd, target) in &stdio {
            assert_eq!(
                target, "/dev/null",
                "pid {pid}: fd {fd} -> {target}: {fds:?}"
            );
        }
        if pid == drainit.drainit_pid {
            assert!(fds.iter().all(|(fd, _)| *fd <= 2), "drainit: {fds:?}");
        }
    }
    let t0 = drainit.signal(libc::SIGTERM);
    let (code, exited) = drainit.wait_exit(10.0);
    assert_eq!(code, 9);
    let term = recorded(&out.path("events"), "app", "TERM").expect("the app got no SIGTERM");
    assert_within(
        "the stop signal",
        secs(term - t0),
        0.3,
        LATE_S,
        &drainit.stderr(),
    );
    assert!(secs(exited - t0) < 0.3 + LATE_S);
}

/// stdout and stderr are a pipe nobody reads (EPIPE on every write), stdin a
/// pipe at EOF: drainit's log lines fail and change nothing.
#[test]
fn started_with_stdout_and_stderr_a_broken_pipe() {
    let dir = Scratch::new();
    drains_normally(&["--broken-stdio"], &dir);
}

#[test]
fn rlimit_nofile_8_is_enough() {
    let dir = Scratch::new();
    drains_normally(&["--nofile", "8"], &dir);
}

/// With RLIMIT_NOFILE 4 the loader still starts drainit (one descriptor at a
/// time) but the spawn needs a pipe: one clear line, exit 1, nothing started.
#[test]
fn rlimit_nofile_4_fails_clearly() {
    let dir = Scratch::new();
    let mut drainit = sleeper(&["--nofile", "4"], &[], &dir.path("stderr"));
    let (code, _) = drainit.wait_exit(10.0);
    let stderr = drainit.stderr();
    assert_eq!(code, 1, "{stderr}");
    // The wording of EMFILE is the C library's (glibc: "Too many open files").
    assert!(
        stderr.starts_with("drainit: cannot run \"/bin/sleep\": ")
            && stderr.ends_with(" (os error 24)\n")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
}

/// A pids cgroup (v1 `pids` or v2 with the pids controller) of the test's
/// own, removed on drop.
struct PidsCgroup(PathBuf);

impl PidsCgroup {
    /// A new child of this process's pids cgroup, with `pids.max` = `max`,
    /// or why there is none.
    fn new(max: u32) -> Result<PidsCgroup, String> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap();
        let mut why = Vec::new();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mount_point = left.split(' ').nth(4).unwrap_or("");
            let mut right = right.split(' ');
            let (fstype, options) = (right.next().unwrap_or(""), right.nth(1).unwrap_or(""));
            let controller = match fstype {
                "cgroup2" => "",
                "cgroup" if options.split(',').any(|o| o == "pids") => "pids",
                _ => continue,
            };
            // Our cgroup in this hierarchy: `0::/path` (v2) or `N:pids:/path` (v1).
            let Some(path) = own.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                let found = if controller.is_empty() {
                    controllers.is_empty()
                } else {
                    controllers.split(',').any(|c| c == controller)
                };
                found.then(|| path.to_string())
            }) else {
                continue;
            };
            let parent = Path::new(mount_point).join(path.trim_start_matches('/'));
            if controller.is_empty() {
                // v2: the pids controller must be enabled for children.
                let enabled =
                    fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
                if !enabled.split_whitespace().any(|c| c == "pids") {
                    if let Err(e) = fs::write(parent.join("cgroup.subtree_control"), "+pids") {
                        why.push(format!("{}: cannot enable pids: {e}", parent.display()));
                        continue;
                    }
                }
            }
            let dir = parent.join(format!(
                "drainit-hostile-{}-{}",
                std::process::id(),
                now_ns()
            ));
            if let Err(e) = fs::create_dir(&dir) {
                why.push(format!("{}: {e}", dir.display()));
                continue;
            }
            let cgroup = PidsCgroup(dir);
            match fs::write(cgroup.0.join("pids.max"), max.to_string()) {
                Ok(()) => return Ok(cgroup),
                Err(e) => why.push(format!("{}: pids.max: {e}", cgroup.0.display())),
            }
        }
        if why.is_empty() {
            why.push("no cgroup v2 mount and no cgroup v1 pids mount".into());
        }
        Err(why.join("; "))
    }

    fn current(&self) -> u32 {
        fs::read_to_string(self.0.join("pids.current"))
            .map(|s| s.trim().parse().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // Processes that just exited may still count for a moment.
        eventually(5.0, || fs::remove_dir(&self.0).is_ok());
    }
}

/// pids.max = 2: unshare and drainit fit, the app's fork does not. RLIMIT_NPROC
/// would not do: root (CAP_SYS_RESOURCE, CAP_SYS_ADMIN) is exempt from it.
#[test]
fn a_pids_limit_that_stops_the_spawn_fails_clearly() {
    let cgroup = match PidsCgroup::new(2) {
        Ok(cgroup) => cgroup,
        Err(why) => {
            panic!(
                "no pids cgroup to limit forks ({why}): this test needs cgroup v2 with the pids \
                 controller, writable by root"
            )
        }
    };
    let dir = Scratch::new();
    let mut drainit = Launch::new(&[])
        .wrapped(&[])
        .cgroup_procs(&cgroup.0.join("cgroup.procs"))
        .stderr_to(&dir.path("stderr"))
        .command(&["/bin/sleep", "1000"]);
    let (code, _) = drainit.wait_exit(10.0);
    let stderr = drainit.stderr();
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr,
        "drainit: cannot run \"/bin/sleep\": Resource temporarily unavailable (os error 11)\n"
    );
    assert!(
        eventually(2.0, || cgroup.current() == 0),
        "{} processes left in the cgroup",
        cgroup.current()
    );
}

// ------------------------------------------------------------- bytes

/// Arguments and variables that are not UTF-8 (and an empty argument, and a
/// variable name that is not UTF-8) reach the app byte for byte.
fn bytes_reach_the_app(pid1: bool) {
    let out = Scratch::new();
    let dir = Scratch::new();
    let mut command: Vec<OsString> = app(&out.0, &["--on-term", "0", "--dump", "--"])
        .into_iter()
        .map(OsString::from)
        .collect();
    let odd: [&[u8]; 7] = [
        b"\xff\xfe",
        b"caf\xe9",
        b"",
        b"two words",
        b"--drain",
        b"\x01\x7f\x80\xc3\x28",
        "d\u{e9}j\u{e0} vu".as_bytes(),
    ];
    command.extend(odd.iter().map(|b| bytes(b)));
    let env: Vec<OsString> = vec![
        bytes(b"LATIN1=caf\xe9"),
        format!("PATH={PATH}").into(),
        bytes(b"INVALID=\xc3\x28\xff"),
        bytes(b"NAME_\xe9=value"),
        bytes(b"EMPTY="),
        bytes(b"EQUALS=a=b=c"),
    ];
    let mut launch = Launch::new(&[])
        .exact_env(env.clone())
        .stderr_to(&dir.path("stderr"));
    if !pid1 {
        launch = launch.not_pid1();
    }
    let mut drainit = launch.command_os(command.clone());
    ready(&out.0, 10.0);
    drainit.signal(libc::SIGTERM);
    assert_eq!(drainit.wait_exit(10.0).0, 0, "{}", drainit.stderr());
    let nul_joined = |items: &[OsString]| -> Vec<u8> {
        items
            .iter()
            .flat_map(|i| {
                let mut v = i.as_bytes().to_vec();
                v.push(0);
                v
            })
            .collect()
    };
    let cmdline = fs::read(out.path("cmdline")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cmdline),
        String::from_utf8_lossy(&nul_joined(&command))
    );
    assert_eq!(cmdline, nul_joined(&command), "the arguments changed");
    let environ = fs::read(out.path("environ")).unwrap();
    assert_eq!(environ, nul_joined(&env), "the environment changed");
}

#[test]
fn bytes_that_are_not_utf8_reach_the_app_as_pid1() {
    bytes_reach_the_app(true);
}

#[test]
fn bytes_that_are_not_utf8_reach_the_app_not_pid1() {
    bytes_reach_the_app(false);
}
