//! drainit as the entrypoint of real OCI containers, under runc and podman:
//! a static drainit in a rootfs that holds only busybox (from busybox-static),
//! drainit and `stamp`, a tiny static app (`tests/containers/stamp.rs`) that
//! writes the instant of every signal it gets to a bind-mounted directory.
//!
//! The container shares the host's monotonic clock, so the test compares the
//! app's instants with its own. The SIGTERM goes through the runtime (`runc
//! kill`, `podman stop`), so it reaches drainit a little after the test's t0:
//! lower bounds stay exact (a stop signal before t0 + drain is early whatever
//! the runtime's delay), upper bounds leave room for the runtime and a loaded
//! 2-core machine.
//!
//! Needs root and: runc, podman, busybox-static (Debian packages of the same
//! names), python3; the test builds the static drainit itself (cargo, into
//! `target/static`) and `stamp` (rustc).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;
use drainit::render;

/// How late the app's stop signal may come, counted from the test's t0: the
/// runtime's own delay in passing SIGTERM on, plus scheduling.
const LATE_S: f64 = 1.0;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const OCI_CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/containers/oci_config.py"
);

/// Runs a command to its end; panics with its output unless it succeeds.
fn run_ok(command: &mut Command) -> Output {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// drainit built as a static binary, as it would be copied into an image
/// (`scripts/static-build.sh`, the README's build): once per test binary,
/// into `target/static` (its own lock, so this does not wait for the `cargo
/// test` that runs it).
fn static_drainit() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(REPO).join("target/static");
        let output = run_ok(
            Command::new(Path::new(REPO).join("scripts/static-build.sh"))
                .args(["--bin", "drainit"])
                .env("CARGO_TARGET_DIR", &dir)
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env_remove("CARGO_BUILD_TARGET")
                .env_remove("CARGO_BUILD_RUSTFLAGS"),
        );
        let release = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let binary = Path::new(&release).join("drainit");
        assert_static(&binary, "the static build of drainit");
        binary
    })
}

/// The `stamp` app (`tests/containers/stamp.rs`), built static with rustc.
fn stamp() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(REPO).join("target/static/helpers");
        fs::create_dir_all(&dir).unwrap();
        // Built under a name of this process, then renamed: another test
        // binary may be doing the same.
        let partial = dir.join(format!("stamp.{}", std::process::id()));
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        run_ok(
            Command::new(rustc)
                .args([
                    "--edition",
                    "2021",
                    "-O",
                    "-C",
                    "target-feature=+crt-static",
                ])
                .arg(Path::new(REPO).join("tests/containers/stamp.rs"))
                .arg("-o")
                .arg(&partial),
        );
        let binary = dir.join("stamp");
        fs::rename(&partial, &binary).unwrap();
        assert_static(&binary, "stamp");
        binary
    })
}

/// A dynamically linked binary names its loader in the first page.
fn assert_static(binary: &Path, what: &str) {
    let bytes = fs::read(binary).unwrap_or_else(|e| panic!("cannot read {binary:?}: {e}"));
    let head = &bytes[..bytes.len().min(4096)];
    assert!(
        !head
            .windows(8)
            .any(|w| w == b"/lib64/l" || w == b"/lib/ld-"),
        "{what} ({binary:?}) is dynamically linked; it cannot run in a rootfs without libc"
    );
}

/// A container's files: `rootfs/` (busybox, /drainit, /stamp) and `shared/`,
/// bind-mounted at /shared, where the app writes its records.
struct Bundle {
    scratch: Scratch,
    id: String,
}

impl Bundle {
    fn new() -> Bundle {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let busybox = require("busybox", "busybox-static");
        let drainit = static_drainit();
        let stamp = stamp();
        assert_static(
            &busybox,
            "busybox (install busybox-static, not busybox, for a static one)",
        );
        let scratch = Scratch::new();
        let rootfs = scratch.path("rootfs");
        for dir in ["bin", "shared", "proc", "dev", "sys", "tmp", "etc"] {
            fs::create_dir_all(rootfs.join(dir)).unwrap();
        }
        fs::create_dir_all(scratch.path("shared")).unwrap();
        fs::copy(&busybox, rootfs.join("bin/busybox")).unwrap();
        // The one applet the tests use.
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
        fs::copy(drainit, rootfs.join("drainit")).unwrap();
        fs::copy(stamp, rootfs.join("stamp")).unwrap();
        let id = format!(
            "drainit-test-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        Bundle { scratch, id }
    }

    fn rootfs(&self) -> PathBuf {
        self.scratch.path("rootfs")
    }

    fn shared(&self) -> PathBuf {
        self.scratch.path("shared")
    }

    /// What the app wrote to /shared/NAME: (instant, what) pairs.
    fn records(&self, name: &str) -> Vec<(u64, String)> {
        let text = fs::read_to_string(self.shared().join(name)).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, ' ');
                let at = parts.next()?.parse().ok()?;
                let _role = parts.next()?;
                Some((at, parts.next()?.to_string()))
            })
            .collect()
    }

    /// The first instant /shared/NAME recorded `what`.
    fn received(&self, name: &str, what: &str) -> Option<u64> {
        self.records(name)
            .into_iter()
            .find(|(_, w)| w == what)
            .map(|(at, _)| at)
    }

    /// Waits until every one of `names` has recorded `ready`.
    fn wait_ready(&self, names: &[&str], runtime: &mut Child, stderr: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !names.iter().all(|name| {
            self.records(name)
                .iter()
                .any(|(_, w)| w.starts_with("ready"))
        }) {
            if let Some(status) = runtime.try_wait().unwrap() {
                panic!(
                    "the container exited ({status}) before the app was ready:\n{}",
                    fs::read_to_string(stderr).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the app did not start in 20s:\n{}",
                fs::read_to_string(stderr).unwrap_or_default()
            );
            sleep(Duration::from_millis(10));
        }
    }
}

/// Waits for `child` to exit, at most `timeout_s`; returns its exit code and
/// the CLOCK_MONOTONIC instant its exit was seen.
fn wait_child(child: &mut Child, timeout_s: f64, stderr: &Path) -> (i32, u64) {
    let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let code = status.code().unwrap_or_else(|| panic!("killed: {status}"));
            return (code, now_ns());
        }
        assert!(
            Instant::now() < deadline,
            "still running after {timeout_s}s:\n{}",
            fs::read_to_string(stderr).unwrap_or_default()
        );
        sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------- runc

fn runc() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| require("runc", "runc"))
}

/// A container run in the foreground by `runc run`, a child of the test: runc
/// then exits with the container's exit code, and deletes it.
struct Runc {
    bundle: Bundle,
    child: Child,
    done: bool,
}

impl Runc {
    /// Starts drainit (with `drainit_args`, then `--`, then `app`) as the
    /// container's process, with `env` added to the container's environment.
    fn start(drainit_args: &[&str], env: &[&str], app: &[&str]) -> Runc {
        let bundle = Bundle::new();
        fs::create_dir_all(bundle.scratch.path("state")).unwrap();
        run_ok(
            Command::new(runc())
                .args(["spec", "--bundle"])
                .arg(&bundle.scratch.0),
        );
        let mut edit = Command::new(PYTHON);
        edit.arg(OCI_CONFIG).arg(bundle.scratch.path("config.json"));
        for variable in env {
            edit.args(["--env", variable]);
        }
        edit.arg("--bind")
            .arg(format!("{}:/shared", bundle.shared().to_string_lossy()));
        edit.arg("--")
            .arg("/drainit")
            .args(drainit_args)
            .arg("--")
            .args(app);
        run_ok(&mut edit);
        let child = Command::new(runc())
            .arg("--root")
            .arg(bundle.scratch.path("state"))
            .args(["run", "--bundle"])
            .arg(&bundle.scratch.0)
            .arg(&bundle.id)
            .stdin(Stdio::null())
            .stdout(fs::File::create(bundle.scratch.path("stdout")).unwrap())
            .stderr(fs::File::create(bundle.scratch.path("stderr")).unwrap())
            .spawn()
            .expect("cannot start runc");
        Runc {
            bundle,
            child,
            done: false,
        }
    }

    fn runc(&self, args: &[&str]) -> Output {
        Command::new(runc())
            .arg("--root")
            .arg(self.bundle.scratch.path("state"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run runc")
    }

    /// `runc state`'s status: "running", "stopped", ...
    fn status(&self) -> String {
        let output = self.runc(&["state", &self.bundle.id]);
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines()
            .find_map(|l| l.trim().strip_prefix("\"status\": \""))
            .map(|s| s.trim_end_matches([',', '"']).to_string())
            .unwrap_or_else(|| format!("unknown: {text}"))
    }

    /// `runc kill ID SIG`; returns the instant just before.
    fn kill(&self, signal: &str) -> u64 {
        let at = now_ns();
        let output = self.runc(&["kill", &self.bundle.id, signal]);
        assert!(
            output.status.success(),
            "runc kill failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        at
    }

    fn stderr_path(&self) -> PathBuf {
        self.bundle.scratch.path("stderr")
    }

    /// drainit's stderr (runc passes its own stdio to the container).
    fn stderr(&self) -> String {
        fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    fn wait_ready(&mut self, names: &[&str]) {
        let stderr = self.stderr_path();
        self.bundle.wait_ready(names, &mut self.child, &stderr);
    }

    /// runc's exit code (the container's) and when it was seen.
    fn wait_exit(&mut self, timeout_s: f64) -> (i32, u64) {
        let stderr = self.stderr_path();
        let result = wait_child(&mut self.child, timeout_s, &stderr);
        self.done = true;
        result
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        if !self.done {
            self.runc(&["kill", &self.bundle.id, "KILL"]);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.runc(&["delete", "--force", &self.bundle.id]);
    }
}

#[test]
fn runc_the_drain_is_honoured_and_the_container_exits_with_the_apps_code() {
    // The app is a busybox shell that starts a second stamp in the background
    // (same process group) and then becomes the main stamp, which exits 3.
    let mut runc = Runc::start(
        &["--drain", "1s"],
        &["DRAINIT_GRACE=10s", "DRAINIT_KILL_MARGIN=2s"],
        &[
            "/bin/sh",
            "-c",
            "/stamp /shared/child & exec /stamp /shared/app --exit 3",
        ],
    );
    runc.wait_ready(&["app", "child"]);
    assert_eq!(runc.status(), "running");
    let t0 = runc.kill("TERM");
    // Draining: the container runs on (if this machine is quick enough to
    // ask runc before the drain is over).
    let status = runc.status();
    if secs(now_ns() - t0) < 0.9 {
        assert_eq!(status, "running", "{}", runc.stderr());
    }
    let (code, exited) = runc.wait_exit(15.0);
    let stderr = runc.stderr();
    assert_eq!(code, 3, "runc must exit with the app's code:\n{stderr}");
    for name in ["app", "child"] {
        let term = runc
            .bundle
            .received(name, "TERM")
            .unwrap_or_else(|| panic!("{name} got no SIGTERM: {:?}", runc.bundle.records(name)));
        let after = secs(term.saturating_sub(t0));
        assert!(
            term >= t0 + 1_000_000_000 && after < 1.0 + LATE_S,
            "{name} got SIGTERM at +{after:.3}s, expected +1s (the drain)"
        );
    }
    let exit = secs(exited - t0);
    assert!(
        exit < 1.0 + LATE_S + 1.0,
        "the container exited at +{exit:.3}s; the app stopped at +1s and SIGKILL was due at +8s"
    );
    assert!(
        stderr.contains("SIGTERM: draining for 1s") && stderr.contains("exit 3: SIGTERM at +0s"),
        "{stderr}"
    );
    assert!(!stderr.contains(render::SENDING_SIGKILL), "{stderr}");
    println!("runc, drain 1s, grace 10s: app and child stopped at +1s, container exited {code} at +{exit:.2}s");
    // `runc run` deletes the container it ran.
    assert!(
        !runc.runc(&["state", &runc.bundle.id]).status.success(),
        "the container is still known to runc"
    );
}

#[test]
fn runc_an_app_that_ignores_sigterm_is_killed_at_grace_minus_margin() {
    let mut runc = Runc::start(
        &["--drain", "500ms", "--grace", "4s"],
        &["DRAINIT_KILL_MARGIN=1.5s"],
        &["/stamp", "/shared/app", "--ignore", "TERM"],
    );
    runc.wait_ready(&["app"]);
    let t0 = runc.kill("TERM");
    let (code, exited) = runc.wait_exit(15.0);
    let stderr = runc.stderr();
    assert_eq!(code, 137, "{stderr}");
    let term = runc.bundle.received("app", "TERM").expect("no SIGTERM");
    assert!(
        term >= t0 + 500_000_000 && secs(term - t0) < 0.5 + LATE_S,
        "SIGTERM at +{:.3}s, expected +0.5s",
        secs(term.saturating_sub(t0))
    );
    let exit = secs(exited - t0);
    println!(
        "runc, app ignores SIGTERM, grace 4s − margin 1.5s: container exited {code} at +{exit:.2}s"
    );
    assert!(
        (2.5..4.0).contains(&exit),
        "the container exited at +{exit:.3}s; drainit's SIGKILL is due at +2.5s, the platform's at +4s"
    );
    assert!(
        stderr.contains("exit 137: SIGTERM at +0s")
            && stderr.contains("sending SIGKILL to the app's group and every other process"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------- podman

fn podman() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| require("podman", "podman"))
}

/// A container run in the foreground by `podman run --rootfs`, with storage
/// and state of its own in the scratch directory (nothing shared with other
/// podman users of the machine), and no network. Without CAP_SYS_RESOURCE
/// (as in CI containers), podman's default limits (above its own: it caps its
/// nproc at 32768, and nofile stays at the caller's) make runc fail with
/// EPERM, so the test gives modest ones.
struct Podman {
    bundle: Bundle,
    child: Child,
    done: bool,
}

impl Podman {
    /// Runs `command` (the container's process) with `env` added to its environment.
    fn start(env: &[&str], command_line: &[&str]) -> Podman {
        let bundle = Bundle::new();
        let mut command = Command::new(podman());
        Self::global_options(&mut command, &bundle);
        command
            .args(["run", "--name", &bundle.id, "--network", "none"])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=4096:4096",
            ])
            .arg("--volume")
            .arg(format!("{}:/shared", bundle.shared().to_string_lossy()));
        for variable in env {
            command.args(["--env", variable]);
        }
        // `--rootfs` takes no value: the first argument after the options is the rootfs.
        command
            .arg("--rootfs")
            .arg(bundle.rootfs())
            .args(command_line);
        let child = command
            .stdin(Stdio::null())
            .stdout(fs::File::create(bundle.scratch.path("stdout")).unwrap())
            .stderr(fs::File::create(bundle.scratch.path("stderr")).unwrap())
            .spawn()
            .expect("cannot start podman");
        Podman {
            bundle,
            child,
            done: false,
        }
    }

    fn global_options(command: &mut Command, bundle: &Bundle) {
        command
            .arg("--root")
            .arg(bundle.scratch.path("storage"))
            .arg("--runroot")
            .arg(bundle.scratch.path("run"))
            .arg("--tmpdir")
            .arg(bundle.scratch.path("libpod-tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"]);
    }

    fn podman(&self, args: &[&str]) -> Output {
        let mut command = Command::new(podman());
        Self::global_options(&mut command, &self.bundle);
        command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run podman")
    }

    /// `podman stop -t GRACE`: returns its stderr, the instant just before
    /// and how long it took.
    fn stop(&self, grace_s: u32) -> (String, u64, f64) {
        let at = now_ns();
        let output = self.podman(&["stop", "-t", &grace_s.to_string(), &self.bundle.id]);
        let took = secs(now_ns() - at);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "podman stop failed: {stderr}");
        (stderr, at, took)
    }

    fn stderr_path(&self) -> PathBuf {
        self.bundle.scratch.path("stderr")
    }

    /// podman run's stderr: the container's, drainit's log lines included.
    fn stderr(&self) -> String {
        fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    fn wait_ready(&mut self, names: &[&str]) {
        let stderr = self.stderr_path();
        self.bundle.wait_ready(names, &mut self.child, &stderr);
    }

    /// The exit code of `podman run` and the one podman recorded.
    fn wait_exit(&mut self, timeout_s: f64) -> (i32, i32) {
        let stderr = self.stderr_path();
        let (code, _) = wait_child(&mut self.child, timeout_s, &stderr);
        self.done = true;
        let output = self.podman(&[
            "inspect",
            "--format",
            "{{.State.ExitCode}}",
            &self.bundle.id,
        ]);
        let recorded = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("podman inspect: {output:?}"));
        (code, recorded)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.podman(&["rm", "--force", "--time", "0", &self.bundle.id]);
    }
}

/// What podman says when it has to SIGKILL a container itself.
const PODMAN_KILLED: &str = "resorting to SIGKILL";

#[test]
fn podman_stop_drains_and_never_needs_its_own_sigkill() {
    let mut podman = Podman::start(
        &["DRAINIT_DRAIN=1s", "DRAINIT_GRACE=6s"],
        &["/drainit", "--", "/stamp", "/shared/app", "--exit", "3"],
    );
    podman.wait_ready(&["app"]);
    let (stop_stderr, t0, took) = podman.stop(6);
    let (code, recorded) = podman.wait_exit(15.0);
    let stderr = podman.stderr();
    assert_eq!(
        (code, recorded),
        (3, 3),
        "the app's exit code, not podman's 137:\n{stderr}"
    );
    let term = podman.bundle.received("app", "TERM").expect("no SIGTERM");
    assert!(
        term >= t0 + 1_000_000_000 && secs(term - t0) < 1.0 + LATE_S,
        "SIGTERM at +{:.3}s, expected +1s (the drain)",
        secs(term.saturating_sub(t0))
    );
    assert!(
        took < 1.0 + LATE_S + 1.5,
        "podman stop took {took:.3}s; the app stopped at +1s"
    );
    assert!(!stop_stderr.contains(PODMAN_KILLED), "{stop_stderr}");
    assert!(stderr.contains("exit 3: SIGTERM at +0s"), "{stderr}");
    println!("podman stop -t 6, drain 1s: took {took:.2}s, exit code {code}");
}

#[test]
fn podman_stop_of_an_app_that_ignores_sigterm_ends_at_grace_minus_margin() {
    let mut podman = Podman::start(
        &["DRAINIT_GRACE=6s", "DRAINIT_KILL_MARGIN=3s"],
        &[
            "/drainit",
            "--drain",
            "1s",
            "--",
            "/stamp",
            "/shared/app",
            "--ignore",
            "TERM",
        ],
    );
    podman.wait_ready(&["app"]);
    let (stop_stderr, t0, took) = podman.stop(6);
    let (code, recorded) = podman.wait_exit(15.0);
    let stderr = podman.stderr();
    assert_eq!((code, recorded), (137, 137), "{stderr}");
    let term = podman.bundle.received("app", "TERM").expect("no SIGTERM");
    assert!(
        term >= t0 + 1_000_000_000,
        "SIGTERM at +{:.3}s, before the drain ended",
        secs(term.saturating_sub(t0))
    );
    // podman's own SIGKILL would come at +6s: podman stop would take 6s or more.
    assert!(
        (3.0..6.0).contains(&took),
        "podman stop took {took:.3}s; drainit's SIGKILL is due at +3s, podman's at +6s"
    );
    assert!(
        !stop_stderr.contains(PODMAN_KILLED),
        "podman had to kill the container itself: {stop_stderr}"
    );
    // drainit saw the app die of its SIGKILL and exited on its own.
    assert!(
        stderr.contains("exit 137: SIGTERM at +0s")
            && stderr.contains("sending SIGKILL to the app's group and every other process"),
        "{stderr}"
    );
    println!("podman stop -t 6, app ignores SIGTERM, drainit: took {took:.2}s, exit code {code}");
}

/// The control of the test above: the same app without drainit leaves podman
/// to SIGKILL it at the deadline, and podman says so (the warning the tests
/// above look for).
#[test]
fn podman_without_drainit_has_to_sigkill_an_app_that_ignores_sigterm() {
    let mut podman = Podman::start(&[], &["/stamp", "/shared/app", "--ignore", "TERM"]);
    podman.wait_ready(&["app"]);
    let (stop_stderr, _, took) = podman.stop(2);
    let (code, recorded) = podman.wait_exit(15.0);
    assert_eq!((code, recorded), (137, 137));
    assert!(took >= 2.0, "podman stop took {took:.3}s");
    assert!(stop_stderr.contains(PODMAN_KILLED), "{stop_stderr}");
    println!(
        "podman stop -t 2, app ignores SIGTERM, no drainit: took {took:.2}s, exit code {code}"
    );
}
