//! The options a tini or dumb-init user reaches for, through the binary as
//! PID 1: rewrite, no-group, success-exit, app-pdeathsig, subreaper, verbosity,
//! cleanup of leftover processes, the terminal, and --check.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;

const LATE_S: f64 = 0.75;

#[test]
fn rewrite_forwards_one_signal_as_another_or_drops_it() {
    let run = Launch::new(&["--rewrite", "USR1:HUP"])
        .env("DRAINIT_REWRITE", "USR2:0")
        .recorder(&[]);
    let sent = run.signal(libc::SIGUSR1);
    let got = run.wait_for(|r| r.what == "HUP", 5.0);
    assert!(secs(got.at_ns - sent) < LATE_S);
    // The flag wins over the variable: USR2 is not dropped...
    run.signal(libc::SIGUSR2);
    run.wait_for(|r| r.what == "USR2", 5.0);
    assert_eq!(run.received("app", "USR1"), None);

    let run = Launch::new(&[])
        .env("DRAINIT_REWRITE", "USR1:HUP,USR2:0")
        .recorder(&[]);
    // ...but from the variable alone it is. Signals are taken lowest first,
    // so USR2 (12) would reach the app before WINCH (28) if it were forwarded.
    run.signal(libc::SIGUSR2);
    run.signal(libc::SIGWINCH);
    run.wait_for(|r| r.what == "WINCH", 5.0);
    run.signal(libc::SIGUSR1);
    run.wait_for(|r| r.what == "HUP", 5.0);
    assert_eq!(run.received("app", "USR2"), None, "USR2 was forwarded");
}

#[test]
fn no_group_forwards_to_the_main_process_only() {
    for launch in [
        Launch::new(&["--no-group"]),
        Launch::new(&[]).env("DRAINIT_NO_GROUP", "1"),
    ] {
        let mut run = launch.recorder(&["--grandchild"]);
        run.wait_for(
            |r| r.role == "grandchild" && r.what.starts_with("ready"),
            10.0,
        );
        run.signal(libc::SIGHUP);
        run.wait_for(|r| r.role == "app" && r.what == "HUP", 5.0);
        run.signal(libc::SIGTERM);
        // The app stops; its grandchild is then cleaned up with the stop signal.
        assert_eq!(run.wait_exit(10.0).0, 0);
        assert_eq!(
            run.received("grandchild", "HUP"),
            None,
            "{:?}",
            run.records()
        );
        assert!(run.received("grandchild", "TERM").is_some());
    }
}

#[test]
fn by_default_signals_reach_the_whole_group() {
    let mut run = Launch::new(&[]).recorder(&["--grandchild"]);
    run.wait_for(
        |r| r.role == "grandchild" && r.what.starts_with("ready"),
        10.0,
    );
    run.signal(libc::SIGHUP);
    run.wait_for(|r| r.role == "grandchild" && r.what == "HUP", 5.0);
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait_exit(10.0).0, 0);
}

#[test]
fn success_exit_codes_become_zero() {
    let mut run = Launch::new(&["--success-exit", "143"]).command(&["sh", "-c", "kill -TERM $$"]);
    assert_eq!(run.wait_exit(10.0).0, 0, "{}", run.stderr());
    assert!(
        run.stderr().contains("exit 0 (143 counts as success)"),
        "{}",
        run.stderr()
    );
    let mut run = Launch::new(&[])
        .env("DRAINIT_SUCCESS_EXIT", "3,143")
        .command(&["sh", "-c", "exit 3"]);
    assert_eq!(run.wait_exit(10.0).0, 0);
    let mut run = Launch::new(&[])
        .env("DRAINIT_SUCCESS_EXIT", "3,143")
        .command(&["sh", "-c", "exit 4"]);
    assert_eq!(run.wait_exit(10.0).0, 4);
}

#[test]
fn app_pdeathsig_reaches_the_app_when_drainit_dies() {
    let run = Launch::new(&["--app-pdeathsig", "USR1"])
        .not_pid1()
        .recorder(&[]);
    let ready = run.wait_for(|r| r.what.starts_with("ready"), 5.0);
    let app: i32 = ready.what["ready pid=".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let sent = run.signal(libc::SIGKILL);
    let got = run.wait_for(|r| r.what == "USR1", 5.0);
    assert!(secs(got.at_ns - sent) < LATE_S);
    let _ = kill(app, libc::SIGKILL);
}

#[test]
fn no_subreaper_leaves_orphans_to_someone_else() {
    for launch in [
        Launch::new(&["--no-subreaper"]),
        Launch::new(&[]).env("DRAINIT_SUBREAPER", "0"),
    ] {
        let mut run = launch.not_pid1().recorder(&["--orphan-sleep", "1"]);
        let orphan: i32 = run
            .wait_for(|r| r.what.starts_with("orphan pid="), 10.0)
            .what["orphan pid=".len()..]
            .parse()
            .unwrap();
        let parent = process(orphan).map(|p| p.ppid);
        assert!(
            parent.is_some() && parent != Some(run.drainit_pid),
            "{parent:?}"
        );
        run.signal(libc::SIGTERM);
        assert_eq!(run.wait_exit(10.0).0, 0);
    }
    // --subreaper is accepted, and as a plain process drainit reaps orphans.
    let mut run = Launch::new(&["--subreaper"])
        .not_pid1()
        .recorder(&["--orphan-sleep", "0.2"]);
    let orphan: i32 = run
        .wait_for(|r| r.what.starts_with("orphan pid="), 10.0)
        .what["orphan pid=".len()..]
        .parse()
        .unwrap();
    sleep(Duration::from_millis(800));
    assert!(process(orphan).is_none(), "orphan not reaped");
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait_exit(10.0).0, 0);
}

#[test]
fn verbosity_from_flags_and_the_variable() {
    let stderr_of = |launch: Launch| {
        let mut run = launch.recorder(&[]);
        run.signal(libc::SIGHUP);
        run.wait_for(|r| r.what == "HUP", 5.0);
        run.signal(libc::SIGTERM);
        assert_eq!(run.wait_exit(10.0).0, 0);
        run.stderr()
    };
    let normal = stderr_of(Launch::new(&[]));
    assert!(
        normal.contains("SIGTERM: no drain") && !normal.contains("forwarding SIGHUP"),
        "{normal}"
    );
    let verbose = stderr_of(Launch::new(&["-v"]));
    assert!(
        verbose.contains("forwarding SIGHUP to the app's group"),
        "{verbose}"
    );
    let quiet = stderr_of(Launch::new(&["-q"]));
    assert!(!quiet.contains("SIGTERM: no drain"), "{quiet}");
    let off = stderr_of(Launch::new(&[]).env("DRAINIT_LOG", "off"));
    assert_eq!(off, "");
    let debug = stderr_of(Launch::new(&[]).env("DRAINIT_LOG", "debug"));
    assert!(debug.contains("forwarding SIGHUP"), "{debug}");
}

#[test]
fn leftovers_get_the_stop_signal_and_drainit_exits_with_the_apps_code() {
    let mut run = Launch::new(&["--stop-signal", "QUIT"]).recorder(&[
        "--grandchild",
        "--exit-after",
        "0.5:5",
    ]);
    let (code, exited) = run.wait_exit(10.0);
    assert_eq!(code, 5, "{}", run.stderr());
    let app_exit = run.received("app", "exit").unwrap();
    let quit = run
        .received("grandchild", "QUIT")
        .expect("the leftover got no SIGQUIT");
    assert!(secs(quit - app_exit) < LATE_S);
    assert!(secs(exited - app_exit) < LATE_S);
    assert!(
        run.stderr()
            .contains("left processes running: sending SIGQUIT"),
        "{}",
        run.stderr()
    );
}

#[test]
fn leftovers_that_ignore_it_get_sigkill_after_the_cleanup_time() {
    let mut run = Launch::new(&["--cleanup", "1s"]).recorder(&[
        "--grandchild",
        "--ignore",
        "TERM",
        "--exit-after",
        "0.5:5",
    ]);
    let (code, exited) = run.wait_exit(10.0);
    assert_eq!(code, 5, "{}", run.stderr());
    let app_exit = run.received("app", "exit").unwrap();
    assert!(run.received("grandchild", "TERM").is_some());
    let took = secs(exited - app_exit);
    assert!(
        (1.0..1.0 + LATE_S).contains(&took),
        "exited {took:.3}s after the app"
    );
    assert!(
        run.stderr().contains("SIGKILL to leftovers"),
        "{}",
        run.stderr()
    );
}

#[test]
fn the_cleanup_never_runs_past_the_sigkill_deadline() {
    let mut run = Launch::new(&["--drain", "1s", "--grace", "3s", "--kill-margin", "1s"])
        .env("DRAINIT_CLEANUP", "30s")
        .recorder(&["--grandchild", "--ignore", "TERM", "--exit-after", "1.5:5"]);
    let t0 = run.signal(libc::SIGTERM);
    let (code, exited) = run.wait_exit(10.0);
    assert_eq!(code, 5, "{}", run.stderr());
    let at = secs(exited - t0);
    assert!(
        (2.0..3.0).contains(&at),
        "exited at +{at:.3}s, SIGKILL due at +2s"
    );
}

#[test]
fn a_terminal_belongs_to_the_app() {
    let scratch = Scratch::new();
    let log = scratch.path("events.log");
    let mut driver = Command::new(PYTHON)
        .args([
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/pty_run.py"),
            "--",
        ])
        .args([
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            drainit_binary(),
            "--",
            PYTHON,
            RECORDER,
            "--log",
        ])
        .arg(&log)
        .env_clear()
        .env("PATH", PATH)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let records = |want: &str| -> Option<String> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .find(|l| l.contains(want))
            .map(str::to_string)
    };
    let wait = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = records(want) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no {want:?} in {:?}",
                std::fs::read_to_string(&log)
            );
            sleep(Duration::from_millis(10));
        }
    };
    let ready = wait("ready");
    assert!(
        ready.contains("tty=fg"),
        "the app is not the terminal's foreground group: {ready}"
    );
    let keys = driver.stdin.as_mut().unwrap();
    keys.write_all(b"\x1a").unwrap(); // Ctrl-Z
    wait("app TSTP");
    keys.write_all(b"\x03").unwrap(); // Ctrl-C
    wait("app INT");
    let status = driver.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn drainit_does_not_stop_itself_on_job_control_signals() {
    let run = Launch::new(&[]).not_pid1().recorder(&[]);
    for (signal, name) in [
        (libc::SIGTSTP, "TSTP"),
        (libc::SIGTTIN, "TTIN"),
        (libc::SIGTTOU, "TTOU"),
    ] {
        run.signal(signal);
        run.wait_for(|r| r.what == name, 5.0);
        let state = process(run.drainit_pid).unwrap().state;
        assert_ne!(state, 'T', "drainit stopped on {name}");
    }
}

#[test]
fn check_prints_the_plan_and_runs_nothing() {
    let scratch = Scratch::new();
    let marker = scratch.path("app-ran");
    let output = Command::new(drainit_binary())
        .args(["--check", "--drain", "10s", "--", "touch"])
        .arg(&marker)
        .env_clear()
        .env("DRAINIT_GRACE", "1m")
        .env("KUBERNETES_SERVICE_HOST", "10.0.0.1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(!marker.exists());
    let text = String::from_utf8_lossy(&output.stdout);
    for line in [
        "drain         10s                (from --drain)",
        "grace         1m                 (from DRAINIT_GRACE)",
        "kill margin   2s                 (default)",
        // The words of the drain's first line in a real run (shutdown.rs checks those).
        "On SIGTERM: draining for 10s while the app keeps serving; SIGTERM to the app at +10s, \
         SIGKILL at +58s (grace 1m − margin 2s) if anything is still running.",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    let output = Command::new(drainit_binary())
        .arg("--check")
        .env_clear()
        .env("KUBERNETES_SERVICE_HOST", "10.0.0.1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("5s                 (default under Kubernetes"),
        "{text}"
    );
    // A bad value: the same message as a real run, exit 2.
    let output = Command::new(drainit_binary())
        .arg("--check")
        .env_clear()
        .env("DRAINIT_DRAIN", "5 seconds")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "drainit: DRAINIT_DRAIN=\"5 seconds\" is not a duration (expected e.g. 5s, 500ms, 1m30s)\n"
    );
}

#[test]
fn version_is_printed() {
    let output = Command::new(drainit_binary())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("drainit 0."));
}
