//! The one test harness of the integration tests: start the built drainit
//! (or the binary `TEST_DRAINIT_BIN` names) as PID 1 of a new PID namespace
//! or as a plain process ([`Launch`]), signal it through a pidfd and wait for
//! its exit ([`Run`]), read what the apps recorded ([`Record`]), and look at
//! processes from the host's /proc ([`procfs`]).
#![allow(dead_code, unused_imports, unsafe_code)]

mod launch;
mod procfs;

pub use launch::*;
pub use procfs::*;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// This build of drainit.
pub const DRAINIT: &str = env!("CARGO_BIN_EXE_drainit");

/// The drainit under test: this build, or the binary `TEST_DRAINIT_BIN`
/// names (to run the suite against a static release build).
pub fn drainit_binary() -> &'static str {
    static BINARY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| std::env::var("TEST_DRAINIT_BIN").unwrap_or_else(|_| DRAINIT.to_string()))
}

/// The recording app: `tests/common/recorder.py`.
pub const RECORDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/recorder.py");
/// Not the pyenv shim, which would add processes of its own.
pub const PYTHON: &str = "/usr/bin/python3";
/// The PATH drainit and its apps get, in every test.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The helper scripts and C sources of the hostile tests.
pub const HOSTILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile");

/// `tests/hostile/<name>`.
pub fn helper(name: &str) -> String {
    format!("{HOSTILE}/{name}")
}

/// Nanoseconds of CLOCK_MONOTONIC, the clock the recorders write.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Panics, failing the test, unless `program` is on PATH (or in /usr/sbin):
/// a test never skips silently, it names the install line.
pub fn require(program: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{program} not found: this test needs it (apt-get install -y {package})")
        })
}

/// `at_s` is in `from_s..from_s + late_s`; drainit's stderr (`context`), whose
/// last line gives its own view of the timeline, goes with a failure.
pub fn assert_within(what: &str, at_s: f64, from_s: f64, late_s: f64, context: &str) {
    assert!(
        (from_s..from_s + late_s).contains(&at_s),
        "{what} at +{at_s:.3}s, expected +{from_s:.3}s (no earlier, at most {late_s}s later); \
         drainit's stderr:\n{context}"
    );
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Compiles `tests/hostile/<name>.c` into `dir` with the C compiler rustc
/// links with (`cc`, so it is there wherever these tests build).
pub fn compile(name: &str, dir: &Path) -> PathBuf {
    let out = dir.join(name);
    let output = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&out)
        .arg(helper(&format!("{name}.c")))
        .output()
        .expect("cannot run cc");
    assert!(
        output.status.success(),
        "cc {name}.c failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// A scratch directory of one test, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Scratch {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "drainit-test-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One line of what an app recorded: `<CLOCK_MONOTONIC ns> <role> <what>`,
/// as `recorder.py` and `hostile/app.py` write them.
#[derive(Debug, Clone)]
pub struct Record {
    pub at_ns: u64,
    pub role: String,
    pub what: String,
}

/// Every record in `path` so far: the one parser of the apps' logs.
pub fn records_in(path: &Path) -> Vec<Record> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ' ');
            Some(Record {
                at_ns: parts.next()?.parse().ok()?,
                role: parts.next()?.to_string(),
                what: parts.next()?.to_string(),
            })
        })
        .collect()
}

/// The first time `role` recorded `what` in `path`, if it did.
pub fn recorded(path: &Path, role: &str, what: &str) -> Option<u64> {
    records_in(path)
        .into_iter()
        .find(|r| r.role == role && r.what == what)
        .map(|r| r.at_ns)
}

/// `tests/hostile/app.py --out DIR` and these options, as a command.
pub fn app(dir: &Path, options: &[&str]) -> Vec<String> {
    let mut command = vec![
        PYTHON.to_string(),
        helper("app.py"),
        "--out".into(),
        dir.to_string_lossy().into_owned(),
    ];
    command.extend(options.iter().map(|s| s.to_string()));
    command
}

/// What `hostile/app.py` recorded in `DIR/events`.
pub fn events(dir: &Path) -> Vec<Record> {
    records_in(&dir.join("events"))
}

/// Fields of app.py's ready file: `pid=N pgid=N sid=N`.
pub fn ready(dir: &Path, timeout_s: f64) -> Vec<(String, i32)> {
    wait_file(&dir.join("ready"), timeout_s)
        .split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Waits up to `timeout_s` for `path` to exist and returns its contents.
pub fn wait_file(path: &Path, timeout_s: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
    loop {
        if let Ok(text) = fs::read_to_string(path) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear in {timeout_s}s",
            path.display()
        );
        sleep(Duration::from_millis(5));
    }
}

/// Waits up to `timeout_s` for `check` to hold; whether it did.
pub fn eventually(timeout_s: f64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        sleep(Duration::from_millis(10));
    }
}

/// Runs drainit directly with `args` and `env` (nothing else in the
/// environment but [`PATH`]) and returns its exit code and stderr.
pub fn run_plain(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> (i32, String) {
    let output = Command::new(drainit_binary())
        .args(args)
        .env_clear()
        .env("PATH", PATH)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
