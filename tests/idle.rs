//! No polling: an idle drainit, and a draining one, never wake up.

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::*;

#[test]
fn an_idle_drainit_does_not_wake_up() {
    let mut run = Launch::new(&[]).command(&["sleep", "1000"]);
    sleep(Duration::from_millis(300));
    let before = context_switches(run.drainit_pid);
    sleep(Duration::from_secs(2));
    let after = context_switches(run.drainit_pid);
    assert_eq!(
        after - before,
        0,
        "drainit woke up {} times in 2s of idling",
        after - before
    );
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait_exit(10.0).0, 128 + libc::SIGTERM);
}

#[test]
fn a_draining_drainit_sleeps_until_the_drain_ends() {
    let mut run = Launch::new(&["--drain", "3s"]).command(&["sleep", "1000"]);
    sleep(Duration::from_millis(300));
    run.signal(libc::SIGTERM);
    sleep(Duration::from_millis(300));
    let before = context_switches(run.drainit_pid);
    sleep(Duration::from_secs(2));
    let after = context_switches(run.drainit_pid);
    assert_eq!(
        after - before,
        0,
        "drainit woke up {} times during the drain",
        after - before
    );
    assert_eq!(run.wait_exit(10.0).0, 128 + libc::SIGTERM);
}
