//! Bad input is refused before the app starts: exit 2 and a message naming
//! the option or variable, the value and what was expected.

mod common;

use std::ffi::OsStr;

use common::*;

/// Runs drainit with `args` then a command that would leave a marker file,
/// and checks exit 2, the message, and that the app never ran.
fn refused(args: &[&str], env: &[(&str, &str)], message: &str) {
    let scratch = Scratch::new();
    let marker = scratch.path("app-ran");
    let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let command = ["--", "touch", marker.to_str().unwrap()];
    all.extend(command.iter().map(OsStr::new));
    let (code, stderr) = run_plain(&all, env);
    assert_eq!(code, 2, "{args:?} {env:?}: {stderr}");
    assert!(
        stderr.contains(message),
        "{args:?} {env:?}: expected {message:?} in:\n{stderr}"
    );
    assert!(!marker.exists(), "{args:?} {env:?}: the app ran");
}

#[test]
fn an_env_var_that_is_not_a_duration() {
    refused(
        &[],
        &[("DRAINIT_DRAIN", "5 seconds")],
        "drainit: DRAINIT_DRAIN=\"5 seconds\" is not a duration (expected e.g. 5s, 500ms, 1m30s)",
    );
    refused(
        &[],
        &[("DRAINIT_GRACE", "")],
        "DRAINIT_GRACE=\"\" is not a duration",
    );
    refused(
        &[],
        &[("DRAINIT_KILL_MARGIN", "-1s")],
        "DRAINIT_KILL_MARGIN=\"-1s\" is not a duration",
    );
}

#[test]
fn a_flag_that_is_not_a_duration() {
    refused(
        &["--grace", "abc"],
        &[],
        "--grace=\"abc\" is not a duration",
    );
    refused(&["--drain=1m30"], &[], "--drain=\"1m30\" is not a duration");
}

#[test]
fn an_unknown_signal() {
    refused(
        &[],
        &[("DRAINIT_STOP_SIGNAL", "FOO")],
        "DRAINIT_STOP_SIGNAL=\"FOO\" is not a signal",
    );
    refused(
        &["--stop-signal", "99"],
        &[],
        "--stop-signal=\"99\" is not a signal",
    );
}

#[test]
fn an_unknown_log_level() {
    refused(
        &[],
        &[("DRAINIT_LOG", "loud")],
        "DRAINIT_LOG=\"loud\" is not a log level",
    );
}

#[test]
fn a_drain_that_leaves_no_time_before_the_kill() {
    refused(
        &[],
        &[("DRAINIT_DRAIN", "30s")],
        "the drain (DRAINIT_DRAIN=30s) leaves no time before the SIGKILL at +28s",
    );
    refused(
        &["--grace", "10s", "--kill-margin", "2s", "--drain", "8s"],
        &[],
        "the drain (--drain=8s) leaves no time before the SIGKILL at +8s",
    );
    refused(
        &[],
        &[
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ("DRAINIT_GRACE", "6s"),
        ],
        "the drain (default 5s under Kubernetes) leaves no time",
    );
    refused(
        &["--kill-margin", "30s"],
        &[],
        "the kill margin (--kill-margin=30s) must be shorter",
    );
}

#[test]
fn a_misspelt_variable() {
    refused(
        &[],
        &[("DRAINIT_DRIAN", "10s")],
        "DRAINIT_DRIAN is not a drainit variable",
    );
}

#[test]
fn a_wrong_flag_or_no_command() {
    refused(
        &["--bogus"],
        &[],
        "drainit: unknown option --bogus (see drainit --help",
    );
    refused(&["-x"], &[], "drainit: unknown option -x");
    refused(&["--check=1"], &[], "drainit: --check takes no value");
    let (code, stderr) = run_plain(&[], &[]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        "drainit: no COMMAND given (usage: drainit [OPTIONS] [--] COMMAND [ARGS]...)\n"
    );
    let (code, stderr) = run_plain(&[OsStr::new("--drain"), OsStr::new("1s")], &[]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn help_and_version_show_every_option_with_its_variable() {
    let (code, _) = run_plain(&[OsStr::new("--version")], &[]);
    assert_eq!(code, 0);
    let output = std::process::Command::new(drainit_binary())
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for (flag, var) in [
        ("--drain", "DRAINIT_DRAIN"),
        ("--grace", "DRAINIT_GRACE"),
        ("--kill-margin", "DRAINIT_KILL_MARGIN"),
        ("--stop-signal", "DRAINIT_STOP_SIGNAL"),
        ("--log", "DRAINIT_LOG"),
    ] {
        assert!(
            help.contains(flag) && help.contains(var),
            "{flag} / {var} missing from:\n{help}"
        );
    }
}

#[test]
fn issue_4_options_refuse_bad_values() {
    refused(
        &["--rewrite", "TERM:QUIT"],
        &[],
        "--rewrite=\"TERM:QUIT\" is refused: SIGTERM starts the drain",
    );
    refused(
        &[],
        &[("DRAINIT_REWRITE", "USR1:HUP,CHLD:HUP")],
        "DRAINIT_REWRITE=\"CHLD:HUP\" is refused",
    );
    refused(
        &[],
        &[("DRAINIT_REWRITE", "USR1")],
        "DRAINIT_REWRITE=\"USR1\" is not a rewrite",
    );
    refused(
        &[],
        &[("DRAINIT_NO_GROUP", "maybe")],
        "DRAINIT_NO_GROUP=\"maybe\" is not a yes/no value",
    );
    refused(
        &[],
        &[("DRAINIT_SUCCESS_EXIT", "143,256")],
        "DRAINIT_SUCCESS_EXIT=\"256\" is not an exit code",
    );
    refused(
        &["--pdeathsig", "NOPE"],
        &[],
        "--pdeathsig=\"NOPE\" is not a signal",
    );
    refused(
        &[],
        &[("DRAINIT_SUBREAPER", "sure")],
        "DRAINIT_SUBREAPER=\"sure\" is not a yes/no value",
    );
    refused(
        &[],
        &[("DRAINIT_CLEANUP", "2 s")],
        "DRAINIT_CLEANUP=\"2 s\" is not a duration",
    );
}

#[test]
fn adaptive_drain_options_refuse_bad_values() {
    refused(
        &[],
        &[("DRAINIT_DRAIN_QUIET", "soon")],
        "DRAINIT_DRAIN_QUIET=\"soon\" is not a duration",
    );
    refused(
        &["--drain-min", "1s"],
        &[],
        "--drain-min=1s only applies to the adaptive drain",
    );
    refused(
        &[],
        &[("DRAINIT_DRAIN_QUIET", "1s")],
        "the adaptive drain (DRAINIT_DRAIN_QUIET=1s) needs a maximum",
    );
}

#[test]
fn odd_values_are_refused_with_what_was_wrong() {
    refused(
        &["--stop-signal", "STOP"],
        &[],
        "--stop-signal=\"STOP\" is refused: SIGSTOP does not end a process",
    );
    refused(
        &[],
        &[("DRAINIT_STOP_SIGNAL", "CHLD")],
        "DRAINIT_STOP_SIGNAL=\"CHLD\" is refused: SIGCHLD does not end a process",
    );
    refused(
        &[],
        &[("DRAINIT_DRAIN_ON", "TERM,KILL")],
        "DRAINIT_DRAIN_ON=\"KILL\" is refused: drainit cannot drain on SIGKILL",
    );
    refused(
        &["--drain-on", "TERM,QUIT", "--rewrite", "QUIT:HUP"],
        &[],
        "--rewrite=\"QUIT:HUP\" is refused: SIGQUIT starts the drain (from --drain-on)",
    );
    refused(
        &["--drain", "5s5s5s"],
        &[],
        "--drain=\"5s5s5s\" is not a duration (expected e.g. 5s, 500ms, 1m30s)",
    );
    refused(
        &[],
        &[("DRAINIT_GRACE", "99999999999999999999999")],
        "DRAINIT_GRACE=\"99999999999999999999999\" is too long (expected at most 8760h)",
    );
    refused(
        &["--drain", "5s", "--drain-quiet", "5s"],
        &[],
        "the quiet time (--drain-quiet=5s) must be shorter than the drain (--drain=5s)",
    );
}

/// A non-UTF-8 option is refused (it was once read as the command: exit
/// 127); a non-UTF-8 program name is still the command.
#[test]
fn bytes_that_are_not_utf8_in_an_option_or_a_drainit_variable_name() {
    use std::os::unix::ffi::OsStrExt;
    let option = OsStr::from_bytes(b"--dra\xffin");
    let (code, stderr) = run_plain(&[option, OsStr::new("5s"), OsStr::new("true")], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("drainit: option \"--dra\\xFFin\" is not valid UTF-8"),
        "{stderr}"
    );
    let (code, stderr) = run_plain(&[OsStr::from_bytes(b"/nonexistent/\xff")], &[]);
    assert_eq!(code, 127, "{stderr}");
    let output = std::process::Command::new(drainit_binary())
        .args(["--", "true"])
        .env_clear()
        .env(OsStr::from_bytes(b"DRAINIT_\xff"), "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is not valid UTF-8, and starts with DRAINIT_"),
        "{stderr}"
    );
}
