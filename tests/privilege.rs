//! Least privilege: drainit holds nothing but stdio, opens no socket and no
//! other descriptor while it runs (it waits with sigtimedwait: no signalfd,
//! no epoll, no timerfd, no pidfd), and passes the environment to the app
//! exactly as it got it.
//!
//! drainit is started by `tests/common`'s `Launch` with 0, 1 and 2 only
//! (whatever the test process inherited is closed at exec), so every other
//! descriptor would be drainit's own.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use common::*;

/// drainit's descriptors are exactly stdin and stdout on /dev/null and
/// stderr on the test's file: nothing else, and no socket.
fn assert_only_stdio(drainit: &Run, stderr: &Path, when: &str) {
    let fds = fds(drainit.drainit_pid);
    let sockets: Vec<_> = fds
        .iter()
        .filter(|(_, t)| t.starts_with("socket:"))
        .collect();
    assert!(sockets.is_empty(), "{when}: drainit holds sockets: {fds:?}");
    let expected = vec![
        (0, "/dev/null".to_string()),
        (1, "/dev/null".to_string()),
        (2, stderr.to_string_lossy().into_owned()),
    ];
    assert_eq!(fds, expected, "{when}: drainit's file descriptors");
}

/// Looks at drainit's descriptors while the app runs, during the drain and
/// during the cleanup of a process the app left behind (which ignores the
/// stop signal): app.py exits 5 on SIGTERM and leaves a child in its group.
fn only_stdio(pid1: bool) {
    let out = Scratch::new();
    let dir = Scratch::new();
    let stderr = dir.path("stderr");
    let command = app(&out.0, &["--on-term", "5", "--linger"]);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let mut launch = Launch::new(&["--drain", "1s", "--cleanup", "1.5s"]).stderr_to(&stderr);
    if !pid1 {
        launch = launch.not_pid1();
    }
    let mut drainit = launch.command(&command);
    ready(&out.0, 10.0);
    assert_only_stdio(&drainit, &stderr, "app running");
    let t0 = drainit.signal(libc::SIGTERM);
    sleep(Duration::from_millis(500));
    assert_only_stdio(&drainit, &stderr, "during the drain");
    let exited = eventually(5.0, || {
        events(&out.0)
            .iter()
            .any(|e| e.role == "app" && e.what == "TERM")
    });
    assert!(exited, "the app got no SIGTERM");
    sleep(Duration::from_millis(300));
    assert!(
        drainit.stderr().contains("but left processes running"),
        "no cleanup under way: {}",
        drainit.stderr()
    );
    assert_only_stdio(&drainit, &stderr, "during the cleanup");
    let (code, at) = drainit.wait_exit(10.0);
    assert_eq!(code, 5, "{}", drainit.stderr());
    assert!(
        secs(at - t0) < 4.0,
        "drainit exited at +{:.3}s",
        secs(at - t0)
    );
}

#[test]
fn as_pid1_drainit_holds_only_stdio_and_no_socket() {
    only_stdio(true);
}

#[test]
fn not_pid1_drainit_holds_only_stdio_and_no_socket() {
    only_stdio(false);
}

/// Every system call that makes a file descriptor, traced with strace on
/// drainit (not its children) from just after the spawn to its exit: a
/// forward, a drain, a stop signal, a cleanup with SIGKILL, reaping. (stderr
/// is a file here: with a pipe or a terminal, drainit opens one descriptor
/// more at its first log line, see `tests/platforms.rs`.)
#[test]
fn drainit_makes_no_file_descriptor_while_it_runs() {
    const SYSCALLS: &str = "%network,open,openat,openat2,creat,pipe,pipe2,dup,dup2,dup3,\
        signalfd,signalfd4,eventfd,eventfd2,epoll_create,epoll_create1,timerfd_create,\
        inotify_init,inotify_init1,pidfd_open,pidfd_getfd,memfd_create,userfaultfd,\
        perf_event_open,io_uring_setup,fanotify_init,open_by_handle_at";
    require("strace", "strace");
    let out = Scratch::new();
    let dir = Scratch::new();
    let command = app(&out.0, &["--on-term", "5", "--escape", "--count", "HUP"]);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let mut drainit = Launch::new(&["-v", "--drain", "500ms", "--cleanup", "500ms"])
        .stderr_to(&dir.path("stderr"))
        .command(&command);
    ready(&out.0, 10.0);
    let trace = dir.path("trace");
    let strace = Command::new("strace")
        .args(["-qq", "-e", &format!("trace={SYSCALLS}"), "-o"])
        .arg(&trace)
        .args(["-p", &drainit.drainit_pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // strace has attached once drainit's status shows a tracer.
    let attached = eventually(10.0, || {
        status_field(drainit.drainit_pid, "TracerPid").is_some_and(|t| t != "0")
    });
    assert!(attached, "strace did not attach");
    drainit.signal(libc::SIGHUP);
    drainit.signal(libc::SIGTERM);
    let (code, _) = drainit.wait_exit(10.0);
    assert_eq!(code, 5, "{}", drainit.stderr());
    let output = strace.wait_with_output().unwrap();
    let calls = fs::read_to_string(&trace).unwrap_or_default();
    assert!(
        calls.trim().is_empty(),
        "drainit made file descriptors:\n{calls}\nstrace: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = drainit.stderr();
    assert!(stderr.contains("forwarding SIGHUP"), "{stderr}");
    assert!(stderr.contains("sending SIGKILL"), "{stderr}");
}

/// An environment no shell would make: not sorted, a name twice, an entry
/// without `=`, one that starts with `=`, bytes that are not UTF-8 in names
/// and values, an empty value, a 64 KiB value, drainit's own variables and
/// Kubernetes' marker. The app must see exactly that, in that order.
fn environment_unchanged(pid1: bool) {
    let out = Scratch::new();
    let dir = Scratch::new();
    let long = format!("LONG={}", "x".repeat(64 * 1024));
    let env: Vec<OsString> = [
        b"ZULU=last letter first".as_slice(),
        b"DRAINIT_DRAIN=300ms",
        b"DUP=first",
        format!("PATH={PATH}").as_bytes(),
        b"KUBERNETES_SERVICE_HOST=10.0.0.1",
        b"NO_EQUALS_SIGN",
        b"=starts with equals",
        b"EMPTY=",
        b"LATIN1=caf\xe9",
        b"NAME_\xff=value",
        b"DUP=second",
        b"DRAINIT_LOG=debug",
        b"ALPHA=a=b",
        long.as_bytes(),
    ]
    .iter()
    .map(|b| bytes(b))
    .collect();
    let command = app(&out.0, &["--on-term", "0", "--dump"]);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let mut launch = Launch::new(&[])
        .exact_env(env.clone())
        .stderr_to(&dir.path("stderr"));
    if !pid1 {
        launch = launch.not_pid1();
    }
    let mut drainit = launch.command(&command);
    ready(&out.0, 10.0);
    let own = fs::read(format!("/proc/{}/environ", drainit.drainit_pid)).unwrap();
    drainit.signal(libc::SIGTERM);
    assert_eq!(drainit.wait_exit(10.0).0, 0, "{}", drainit.stderr());
    // drainit read its variables: the drain is DRAINIT_DRAIN's, at debug level.
    assert!(
        drainit.stderr().contains("SIGTERM: draining for 300ms"),
        "{}",
        drainit.stderr()
    );

    let entries = |block: &[u8]| -> Vec<Vec<u8>> {
        block
            .strip_suffix(b"\0")
            .unwrap_or(block)
            .split(|&b| b == 0)
            .map(<[u8]>::to_vec)
            .collect()
    };
    let given: Vec<Vec<u8>> = env.iter().map(|e| e.as_bytes().to_vec()).collect();
    let show = |e: &Vec<u8>| String::from_utf8_lossy(&e[..e.len().min(40)]).into_owned();
    let shows = |list: &[Vec<u8>]| list.iter().map(show).collect::<Vec<_>>();
    let own = entries(&own);
    assert!(
        own == given,
        "drainit did not get the test's environment: {:?}",
        shows(&own)
    );
    let seen = entries(&fs::read(out.path("environ")).unwrap());
    // Ordering aside: nothing added, nothing removed, nothing changed.
    let count = |list: &[Vec<u8>]| {
        let mut counts: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for entry in list {
            *counts.entry(entry.clone()).or_default() += 1;
        }
        counts
    };
    let (want, got) = (count(&given), count(&seen));
    let removed: Vec<_> = want
        .keys()
        .filter(|e| !got.contains_key(*e))
        .map(show)
        .collect();
    let added: Vec<_> = got
        .keys()
        .filter(|e| !want.contains_key(*e))
        .map(show)
        .collect();
    assert!(
        removed.is_empty() && added.is_empty(),
        "drainit changed the environment: removed {removed:?}, added {added:?}"
    );
    assert_eq!(want, got, "an entry appears a different number of times");
    // And in the same order, byte for byte.
    assert!(
        seen == given,
        "the environment was reordered: {:?}, expected {:?}",
        shows(&seen),
        shows(&given)
    );
}

#[test]
fn as_pid1_the_environment_reaches_the_app_unchanged() {
    environment_unchanged(true);
}

#[test]
fn not_pid1_the_environment_reaches_the_app_unchanged() {
    environment_unchanged(false);
}
