//! drainit's exit code: the app's, 128+N for signal N, 126 and 127 when the
//! command cannot run.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

fn exit_code_of(command: &[&str]) -> (i32, String) {
    let mut run = Launch::new(&[]).command(command);
    let (code, _) = run.wait_exit(10.0);
    (code, run.stderr())
}

#[test]
fn exit_code_is_the_apps() {
    assert_eq!(exit_code_of(&["true"]).0, 0);
    assert_eq!(exit_code_of(&["sh", "-c", "exit 3"]).0, 3);
}

#[test]
fn death_by_signal_n_is_128_plus_n() {
    let (code, stderr) = exit_code_of(&["sh", "-c", "kill -USR1 $$"]);
    assert_eq!(code, 128 + libc::SIGUSR1, "{stderr}");
    assert!(stderr.contains("app killed by SIGUSR1"), "{stderr}");
}

#[test]
fn a_command_that_is_not_executable_is_126() {
    let scratch = Scratch::new();
    let script = scratch.path("script");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, stderr) = exit_code_of(&[script.to_str().unwrap()]);
    assert_eq!(code, 126);
    assert!(
        stderr.contains("cannot run") && stderr.contains("Permission denied"),
        "{stderr}"
    );
}

#[test]
fn a_command_that_does_not_exist_is_127() {
    let (code, stderr) = exit_code_of(&["/nonexistent/app"]);
    assert_eq!(code, 127);
    assert!(
        stderr.contains("cannot run \"/nonexistent/app\""),
        "{stderr}"
    );
    let (code, _) = exit_code_of(&["no-such-command-on-path"]);
    assert_eq!(code, 127);
}
