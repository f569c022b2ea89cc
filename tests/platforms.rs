//! What real platforms and the peers' users do to PID 1: a stderr pipe
//! nobody reads, Kubernetes service links, an image's STOPSIGNAL, an app
//! drainit may not signal, a stopped app, a shell's background job, no /proc,
//! a repeated stop, SIGPIPE from outside, the working directory, `--no-group`
//! leftovers and the parent-death signal. Through the binary, as PID 1 where
//! that is what matters.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::*;

/// How late a signal may arrive and still count as on time (a loaded 2-core machine).
const LATE_S: f64 = 1.0;

/// Docker's blocking log mode or a stuck log driver: stderr is a full pipe
/// nobody reads. The stop signal and SIGKILL still go out on time, drainit
/// exits before the platform's deadline, and says how many lines it dropped.
#[test]
fn a_full_stderr_pipe_moves_no_deadline() {
    let (read, write) = pipe();
    let mut writer = fs::File::from(write.try_clone().unwrap());
    writer
        .write_all(&vec![b'.'; pipe_capacity(&write)])
        .unwrap();
    drop(writer);
    let mut run = Launch::new(&["--drain", "1s", "--grace", "4s", "--kill-margin", "1s"])
        .stderr(write)
        .recorder(&["--ignore", "TERM"]);
    let t0 = run.signal(libc::SIGTERM);
    let term = run.wait_for(|r| r.what == "TERM", 5.0).at_ns;
    assert_within("the stop signal", secs(term - t0), 1.0, LATE_S, "");
    // Someone reads the pipe again (the log driver came back): the next line says what was lost.
    let before = read_available(&read);
    assert!(!before.contains("drainit:"), "{before}");
    let (code, exited) = run.wait_exit(10.0);
    let after = read_available(&read);
    assert_eq!(code, 137, "{after}");
    // SIGKILL at grace − margin = +3s; the platform's deadline is +4s.
    assert_within("drainit's exit", secs(exited - t0), 3.0, 0.9, &after);
    println!(
        "full stderr pipe: stop signal at +{:.3}s, drainit exited at +{:.3}s",
        secs(term - t0),
        secs(exited - t0)
    );
    assert!(
        after.starts_with("drainit: 2 log lines dropped: stderr was full\n"),
        "{after}"
    );
    assert!(after.contains("sending SIGKILL"), "{after}");
}

/// The kubelet sets these for a Service named `drainit` or `drainit-demo`.
#[test]
fn kubernetes_service_links_do_not_stop_the_pod() {
    let links = [
        ("DRAINIT_SERVICE_HOST", "10.96.0.12"),
        ("DRAINIT_SERVICE_PORT", "80"),
        ("DRAINIT_SERVICE_PORT_HTTP", "80"),
        ("DRAINIT_PORT", "tcp://10.96.0.12:80"),
        ("DRAINIT_PORT_80_TCP", "tcp://10.96.0.12:80"),
        ("DRAINIT_PORT_80_TCP_PROTO", "tcp"),
        ("DRAINIT_PORT_80_TCP_PORT", "80"),
        ("DRAINIT_PORT_80_TCP_ADDR", "10.96.0.12"),
        ("DRAINIT_DEMO_SERVICE_HOST", "10.96.0.13"),
        ("DRAINIT_DEMO_PORT_8080_TCP", "tcp://10.96.0.13:8080"),
    ];
    let args = ["--", "true"].map(OsStr::new);
    let (code, stderr) = run_plain(&args, &links);
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = run_plain(&args, &[("DRAINIT_DRIAN", "5s")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("drainit: DRAINIT_DRIAN is not a drainit variable"),
        "{stderr}"
    );
}

/// `FROM nginx` brings `STOPSIGNAL SIGQUIT`: with `DRAINIT_DRAIN_ON=TERM,QUIT`
/// a SIGQUIT from the runtime starts the same drain as SIGTERM.
#[test]
fn a_drain_on_signal_starts_the_drain() {
    let mut run = Launch::new(&["--drain", "1s"])
        .env("DRAINIT_DRAIN_ON", "TERM,QUIT")
        .recorder(&[]);
    let t0 = run.signal(libc::SIGQUIT);
    let (code, _) = run.wait_exit(10.0);
    let stderr = run.stderr();
    assert_eq!(code, 0, "{stderr}");
    let term = run.received("app", "TERM").expect("no stop signal");
    assert_within("the stop signal", secs(term - t0), 1.0, LATE_S, &stderr);
    assert_eq!(run.received("app", "QUIT"), None, "SIGQUIT was forwarded");
    assert!(stderr.contains("SIGQUIT: draining for 1s"), "{stderr}");
}

/// `USER 65532` and a setuid app that became root: drainit may not signal it
/// (EPERM). It gives up half the kill margin after its SIGKILL, before the
/// platform's deadline, and says which signal was refused; as PID 1, its exit
/// ends the container, so the kernel kills what it could not.
#[test]
fn a_sigkill_that_cannot_land_does_not_hang_drainit() {
    require("setpriv", "util-linux");
    let dir = Scratch::new();
    let app = compile("become_root", &dir.0);
    fs::set_permissions(&app, fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).unwrap();
    let ready = dir.path("ready");
    let options = ["--drain", "500ms", "--grace", "3s", "--kill-margin", "1s"];
    let mut run = Launch::new(&options)
        .wrapper(&[
            "setpriv",
            "--reuid=65532",
            "--regid=65532",
            "--clear-groups",
        ])
        .command(&[app.to_str().unwrap(), ready.to_str().unwrap()]);
    assert!(
        eventually(10.0, || ready.exists()),
        "the app did not start: {}",
        run.stderr()
    );
    let t0 = run.signal(libc::SIGTERM);
    let (code, exited) = run.wait_exit(10.0);
    let stderr = run.stderr();
    assert_eq!(code, 137, "{stderr}");
    println!(
        "SIGKILL not permitted: drainit exited at +{:.3}s",
        secs(exited - t0)
    );
    // SIGKILL at +2s, given up at +2.5s; the platform's deadline is +3s.
    assert_within("drainit's exit", secs(exited - t0), 2.5, 0.45, &stderr);
    assert!(
        stderr.contains("cannot send SIGKILL to the app's group"),
        "{stderr}"
    );
    assert!(stderr.contains("(SIGKILL was not permitted)"), "{stderr}");
    assert!(stderr.contains("SIGKILL not permitted at +2."), "{stderr}");
}

/// An app stopped by SIGSTOP (a debugger, job control) handles its stop
/// signal: drainit sends SIGCONT after it.
#[test]
fn a_stopped_app_still_gets_to_stop() {
    let mut run = Launch::new(&["--drain", "500ms"]).recorder(&[]);
    let app = children(run.drainit_pid)[0];
    kill(app, libc::SIGSTOP).unwrap();
    assert!(
        eventually(5.0, || process(app).is_some_and(|p| p.state == 'T')),
        "the app did not stop"
    );
    let t0 = run.signal(libc::SIGTERM);
    let (code, exited) = run.wait_exit(10.0);
    let stderr = run.stderr();
    assert_eq!(code, 0, "the app did not handle SIGTERM: {stderr}");
    let term = run.received("app", "TERM").expect("no SIGTERM");
    assert_within("the stop signal", secs(term - t0), 0.5, LATE_S, &stderr);
    assert_within("drainit's exit", secs(exited - t0), 0.5, LATE_S, &stderr);
}

/// `drainit -- app &` from an interactive shell: the shell keeps the
/// terminal. A job-control shell puts a background job in a process group
/// of its own and leaves the terminal's foreground group as it is; this
/// Python "shell" does exactly that on a real pseudo-terminal.
#[test]
fn started_in_the_background_drainit_leaves_the_terminal_to_the_shell() {
    const SHELL: &str = r#"
import os, signal, sys, time
log, drainit, recorder = sys.argv[1:4]
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.execv(drainit, [drainit, "--", sys.executable, recorder, "--log", log])
os.setpgid(pid, pid)
time.sleep(1.5)
with open(log, "a") as f:
    fg = os.tcgetpgrp(0) == os.getpgrp()
    f.write(f"0 shell foreground={'shell' if fg else os.tcgetpgrp(0)}\n")
# Stop it as a user would (the app runs in a group of its own): drainit
# forwards the SIGTERM and exits with the app.
os.kill(pid, signal.SIGTERM)
os.waitpid(pid, 0)
"#;
    let scratch = Scratch::new();
    let log = scratch.path("events.log");
    let status = Command::new(PYTHON)
        .args([
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/pty_run.py"),
            "--",
            PYTHON,
            "-c",
            SHELL,
        ])
        .arg(&log)
        .args([drainit_binary(), RECORDER])
        .env_clear()
        .env("PATH", PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let records = fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{records}");
    assert!(records.contains("shell foreground=shell"), "{records}");
    assert!(records.contains("tty=bg"), "{records}");
}

/// Not PID 1 in a container without /proc, drainit cannot find the
/// processes the app leaves outside its group: it says so once, and runs.
#[test]
fn not_pid1_without_proc_drainit_says_so_once() {
    let mut run = Launch::new(&[])
        .not_pid1()
        .wrapper(&[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tmpfs none /proc && exec \"$0\" \"$@\"",
        ])
        .recorder(&[]);
    run.signal(libc::SIGTERM);
    let (code, _) = run.wait_exit(10.0);
    let stderr = run.stderr();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stderr.matches("cannot list drainit's children").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("processes the app leaves outside its process group will get no signal"),
        "{stderr}"
    );
}

/// `kill -PIPE 1`, `docker kill -s PIPE`: forwarded, as tini and dumb-init do.
#[test]
fn sigpipe_from_another_process_is_forwarded() {
    let mut run = Launch::new(&[]).recorder(&[]);
    let sent = run.signal(libc::SIGPIPE);
    let got = run.wait_for(|r| r.what == "PIPE", 5.0);
    assert!(secs(got.at_ns - sent) < LATE_S);
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait_exit(10.0).0, 0, "{}", run.stderr());
}

/// stderr a pipe with no reader: each of drainit's lines raises SIGPIPE
/// against drainit itself, and none reaches the app.
#[test]
fn the_sigpipe_of_drainits_own_write_is_not_forwarded() {
    let (read, write) = pipe();
    drop(read);
    let mut run = Launch::new(&["-v"]).stderr(write).recorder(&[]);
    run.signal(libc::SIGUSR1);
    run.wait_for(|r| r.what == "USR1", 5.0);
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait_exit(10.0).0, 0);
    assert_eq!(run.received("app", "PIPE"), None, "{:?}", run.records());
}

/// PID 1 never holds a mount busy: drainit moves to `/` once the app runs
/// in the caller's directory.
#[test]
fn drainit_works_in_root_and_the_app_where_it_was_started() {
    let start = Scratch::new();
    let run = Launch::new(&[]).cwd(&start.0).recorder(&[]);
    let app = children(run.drainit_pid)[0];
    let cwd = |pid: i32| fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(cwd(run.drainit_pid), std::path::Path::new("/"));
    assert_eq!(cwd(app), fs::canonicalize(&start.0).unwrap());
}

/// `--no-group`, not PID 1, is dumb-init's `-c` and tini's default: when the
/// app exits, drainit exits with it and leaves its leftovers alone.
#[test]
fn no_group_not_pid1_leaves_the_leftovers_alone() {
    let mut run = Launch::new(&["--no-group"]).not_pid1().recorder(&[
        "--orphan-sleep",
        "30",
        "--exit-after",
        "0.5:3",
    ]);
    let orphan = run.wait_for(|r| r.what.starts_with("orphan pid="), 5.0);
    let orphan: i32 = orphan.what["orphan pid=".len()..].parse().unwrap();
    let (code, exited) = run.wait_exit(10.0);
    let stderr = run.stderr();
    assert_eq!(code, 3, "{stderr}");
    let app_exit = run.received("app", "exit").expect("the app did not exit");
    assert!(secs(exited - app_exit) < LATE_S, "{stderr}");
    let alive = process(orphan).is_some_and(|p| p.state != 'Z');
    let _ = kill(orphan, libc::SIGKILL);
    assert!(alive, "the leftover was signalled: {stderr}");
}

/// `--pdeathsig TERM` is tini's `-p`: when drainit's parent dies, drainit
/// gets SIGTERM and drains as if the platform had sent it.
#[test]
fn pdeathsig_drains_when_drainits_parent_dies() {
    const PARENT: &str = r#"
import os, sys, time
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
print(pid, flush=True)
time.sleep(1.0)
"#;
    let scratch = Scratch::new();
    let log = scratch.path("events.log");
    let mut parent = Command::new(PYTHON)
        .args(["-c", PARENT, drainit_binary()])
        .args([
            "--pdeathsig",
            "TERM",
            "--drain",
            "1s",
            "--",
            PYTHON,
            RECORDER,
            "--log",
        ])
        .arg(&log)
        .env_clear()
        .env("PATH", PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // One line: drainit and the app hold the pipe open after it.
    let mut out = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(parent.stdout.take().unwrap()),
        &mut out,
    )
    .unwrap();
    let drainit: i32 = out.trim().parse().unwrap();
    parent.wait().unwrap();
    let died = now_ns();
    let records = || format!("{:?}", records_in(&log));
    if !eventually(10.0, || recorded(&log, "app", "TERM").is_some()) {
        let _ = kill(drainit, libc::SIGKILL);
        panic!("no SIGTERM reached the app: {}", records());
    }
    let term = recorded(&log, "app", "TERM").unwrap_or_default();
    assert_within(
        "the stop signal",
        secs(term.saturating_sub(died)),
        0.9,
        0.1 + LATE_S,
        &records(),
    );
}

/// With stderr a pipe, drainit's one descriptor beyond stdio is its own
/// non-blocking description of that same pipe (so that the app's stays
/// blocking), close-on-exec: the app does not get it.
#[test]
fn the_non_blocking_stderr_is_the_same_pipe_and_stays_drainits() {
    let (read, write) = pipe();
    let mut run = Launch::new(&["-v"]).stderr(write).recorder(&[]);
    let app = children(run.drainit_pid)[0];
    let theirs = fds(run.drainit_pid);
    let pipe = theirs[2].1.clone();
    assert!(pipe.starts_with("pipe:"), "{theirs:?}");
    assert_eq!(
        theirs,
        vec![
            (0, "/dev/null".to_string()),
            (1, "/dev/null".to_string()),
            (2, pipe.clone()),
            (3, pipe.clone())
        ]
    );
    let flags = fs::read_to_string(format!("/proc/{}/fdinfo/3", run.drainit_pid)).unwrap();
    let flags = flags
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
        .unwrap();
    assert_ne!(flags & libc::O_NONBLOCK as u32, 0, "fd 3 blocks");
    assert_ne!(
        flags & libc::O_CLOEXEC as u32,
        0,
        "fd 3 is not close-on-exec"
    );
    let in_app = fds(app).into_iter().filter(|(_, t)| *t == pipe).count();
    assert_eq!(in_app, 1, "the app's descriptors: {:?}", fds(app));
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait_exit(10.0).0, 0);
    assert!(read_available(&read).contains("drainit: started"));
}
