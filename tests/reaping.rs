//! Zombies: drainit reaps every orphan, as PID 1 and as a subreaper.

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::*;

#[test]
fn pid1_reaps_hundreds_of_orphans() {
    let mut run = Launch::new(&[]).recorder(&["--orphans", "300"]);
    run.wait_for(|r| r.what == "orphans-done", 30.0);
    // Zombies would stay; give drainit a moment to reap the last of them.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while zombies_of(run.drainit_pid) > 0 && std::time::Instant::now() < deadline {
        sleep(Duration::from_millis(20));
    }
    assert_eq!(zombies_of(run.drainit_pid), 0, "zombies left under drainit");
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait_exit(10.0).0, 0);
}

#[test]
fn not_pid1_it_becomes_a_subreaper_and_reaps_orphans() {
    let mut run = Launch::new(&[])
        .not_pid1()
        .recorder(&["--orphan-sleep", "1"]);
    let orphan: i32 = run
        .wait_for(|r| r.what.starts_with("orphan pid="), 10.0)
        .what["orphan pid=".len()..]
        .parse()
        .unwrap();
    let parent = process(orphan).expect("the orphan is gone too early").ppid;
    assert_eq!(
        parent, run.drainit_pid,
        "the orphan was not re-parented to drainit"
    );
    sleep(Duration::from_millis(1500));
    assert!(
        process(orphan).is_none(),
        "the orphan was not reaped: {:?}",
        process(orphan)
    );
    assert_eq!(zombies_of(run.drainit_pid), 0);
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait_exit(10.0).0, 0);
}
