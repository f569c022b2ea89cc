//! The README says what drainit does: these tests run what it shows and
//! compare, so that it stays true. (`cargo test` itself, the examples and the
//! benchmark run in `.ci/run`.)

mod common;

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;

const README: &str = include_str!("../README.md");

/// The lines of the README's first code block that follows `marker`.
fn block_after(marker: &str) -> Vec<&'static str> {
    let start = README
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in README"));
    let rest = &README[start..];
    let open = rest.find("```").unwrap();
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let end = body.find("```").unwrap();
    body[..end].lines().collect()
}

/// `line` with every number replaced by `#`, to compare lines whose timings vary.
fn shape(line: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in line.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

#[test]
fn the_options_table_lists_every_option_and_variable() {
    let table = &README[README.find("## Options").unwrap()..README.find("**Bad input").unwrap()];
    for opt in drainit::cli::OPTIONS {
        assert!(
            table.contains(&format!("--{}", opt.long)),
            "--{} is not in the README's table",
            opt.long
        );
        if let Some(env) = opt.env {
            assert!(table.contains(env), "{env} is not in the README's table");
        }
    }
}

#[test]
fn the_first_example_prints_what_the_readme_shows() {
    let port = free_port().to_string();
    // The README's `cargo run --release -- --drain 2s -- python3 -m http.server 8080`.
    let mut run =
        Launch::new(&["--drain", "2s"])
            .not_pid1()
            .command(&[PYTHON, "-m", "http.server", &port]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err() {
        assert!(Instant::now() < deadline, "the server never listened");
        sleep(Duration::from_millis(20));
    }
    run.signal(libc::SIGTERM);
    sleep(Duration::from_millis(500));
    // `curl -sI localhost:8080` during the drain answers.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_ok());
    let (code, _) = run.wait_exit(10.0);
    assert_eq!(code, 143);
    let shown: Vec<String> = block_after("drainit's stderr, for the first")
        .iter()
        .map(|l| shape(l))
        .collect();
    let printed: Vec<String> = run.stderr().lines().map(shape).collect();
    assert_eq!(printed, shown, "drainit printed:\n{}", run.stderr());
}

#[test]
fn the_check_example_prints_what_the_readme_shows() {
    let output = Command::new(drainit_binary())
        .arg("--check")
        .env_clear()
        .env("DRAINIT_DRAIN", "10s")
        .env("DRAINIT_GRACE", "45s")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&output.stdout);
    for line in block_after("validate at build time").iter().skip(1) {
        if line.trim() != "..." {
            assert!(
                printed.lines().any(|l| l == *line),
                "{line:?} not printed:\n{printed}"
            );
        }
    }
}

#[test]
fn the_bad_input_example_prints_what_the_readme_shows() {
    let output = Command::new(drainit_binary())
        .args(["--", "/app"])
        .env_clear()
        .env("DRAINIT_DRAIN", "5 seconds")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let shown = block_after("**Bad input is refused before the app starts**");
    assert_eq!(String::from_utf8_lossy(&output.stderr).trim_end(), shown[1]);
}

#[test]
fn the_quick_start_settings_pass_check() {
    // The Dockerfile snippet's ENV, and the pod's env.
    for (drain, grace) in [("5s", "30s"), ("10s", "30s")] {
        let status = Command::new(drainit_binary())
            .arg("--check")
            .env_clear()
            .env("DRAINIT_DRAIN", drain)
            .env("DRAINIT_GRACE", grace)
            .env("KUBERNETES_SERVICE_HOST", "10.0.0.1")
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert!(README.contains("ENV DRAINIT_DRAIN=5s DRAINIT_GRACE=30s"));
    assert!(README.contains(r#"{ name: DRAINIT_DRAIN, value: "10s" }"#));
}
