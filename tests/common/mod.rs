//! Shared by the integration tests: run the built drainit as PID 1 of a new
//! PID namespace (or as a plain process), signal it, and read what the
//! recording app (`recorder.py`) saw.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const DRAINIT: &str = env!("CARGO_BIN_EXE_drainit");

/// The drainit under test: this build, or the binary `TEST_DRAINIT_BIN`
/// names (to run the suite against a static release build).
pub fn drainit_binary() -> &'static str {
    static BINARY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| std::env::var("TEST_DRAINIT_BIN").unwrap_or_else(|_| DRAINIT.to_string()))
}
pub const RECORDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/recorder.py");
/// Not the pyenv shim, which would add processes of its own.
pub const PYTHON: &str = "/usr/bin/python3";

/// Nanoseconds of CLOCK_MONOTONIC, the clock the recorder writes.
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

/// Panics, failing the test, unless `program` is on PATH (or in /usr/sbin).
pub fn require(program: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{program} not found: this test needs it (apt-get install -y {package})")
        })
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
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

/// One line of the recorder's log.
#[derive(Debug, Clone)]
pub struct Record {
    pub at_ns: u64,
    pub role: String,
    pub what: String,
}

/// A drainit run: the process tree, its output files and the recorder's log.
pub struct Run {
    child: Child,
    /// The pid to signal: drainit itself (in the parent namespace's numbering).
    pub drainit_pid: i32,
    pub scratch: Scratch,
    pub log: PathBuf,
    started: Instant,
    status: Option<ExitStatus>,
}

/// How to start drainit.
pub struct Launch {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Run as PID 1 of a new PID namespace (the default), or as a plain process.
    pub pid1: bool,
    /// Also in a network namespace of its own (only loopback, down until the app brings it up).
    pub own_network: bool,
    /// Runs first (inside the PID namespace) and execs drainit with its arguments.
    pub wrapper: Vec<String>,
    /// drainit's stderr, instead of a file the test reads with [`Run::stderr`].
    pub stderr: Option<std::os::fd::OwnedFd>,
    /// The working directory drainit starts in.
    pub cwd: Option<PathBuf>,
}

impl Launch {
    /// drainit with these options, then `--`, then the given command.
    pub fn new(options: &[&str]) -> Launch {
        Launch {
            args: options.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            pid1: true,
            own_network: false,
            wrapper: Vec::new(),
            stderr: None,
            cwd: None,
        }
    }

    /// drainit started by `wrapper`, which execs it (`setpriv ...`, `sh -c 'exec "$0" "$@"'`).
    pub fn wrapper(mut self, wrapper: &[&str]) -> Launch {
        self.wrapper = wrapper.iter().map(|s| s.to_string()).collect();
        self
    }

    /// drainit's stderr is `fd` (a pipe the test holds), not a file.
    pub fn stderr(mut self, fd: std::os::fd::OwnedFd) -> Launch {
        self.stderr = Some(fd);
        self
    }

    /// drainit starts in `dir`.
    pub fn cwd(mut self, dir: &Path) -> Launch {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    pub fn own_network(mut self) -> Launch {
        self.own_network = true;
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Launch {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn not_pid1(mut self) -> Launch {
        self.pid1 = false;
        self
    }

    /// Starts drainit on the recorder with `recorder_args`, and waits until
    /// the app is ready.
    pub fn recorder(self, recorder_args: &[&str]) -> Run {
        let scratch = Scratch::new();
        let log = scratch.path("events.log");
        let mut command: Vec<String> = vec![PYTHON.into(), RECORDER.into(), "--log".into()];
        command.push(log.to_string_lossy().into_owned());
        command.extend(recorder_args.iter().map(|s| s.to_string()));
        let run = self.start(scratch, log, &command);
        run.wait_for(|r| r.role == "app" && r.what.starts_with("ready"), 10.0);
        run
    }

    /// Starts drainit on an arbitrary command; does not wait for anything.
    pub fn command(self, command: &[&str]) -> Run {
        let scratch = Scratch::new();
        let log = scratch.path("events.log");
        let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        self.start(scratch, log, &command)
    }

    fn start(self, scratch: Scratch, log: PathBuf, command: &[String]) -> Run {
        let stderr = match self.stderr {
            Some(fd) => Stdio::from(fd),
            None => fs::File::create(scratch.path("stderr")).unwrap().into(),
        };
        let mut argv: Vec<&str> = Vec::new();
        if self.pid1 {
            argv.extend(["unshare", "--pid", "--fork", "--mount-proc"]);
            if self.own_network {
                argv.push("--net");
            }
        }
        argv.extend(self.wrapper.iter().map(String::as_str));
        argv.push(drainit_binary());
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..]);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd.args(&self.args)
            .arg("--")
            .args(command)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = cmd.spawn().expect("cannot start drainit");
        let mut run = Run {
            drainit_pid: child.id() as i32,
            child,
            scratch,
            log,
            started: Instant::now(),
            status: None,
        };
        if self.pid1 {
            run.find_drainit_under_unshare();
        }
        run
    }
}

/// Children of `parent`, from /proc.
pub fn children(parent: i32) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|p| p.ppid == parent)
        .map(|p| p.pid)
        .collect()
}

/// A process as /proc/PID/stat shows it.
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
}

pub fn process(pid: i32) -> Option<Process> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Process { pid, ppid, state })
}

pub fn processes() -> Vec<Process> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(process)
        .collect()
}

/// Zombies whose parent is `parent`.
pub fn zombies_of(parent: i32) -> usize {
    processes()
        .iter()
        .filter(|p| p.ppid == parent && p.state == 'Z')
        .count()
}

/// Voluntary plus involuntary context switches of `pid`.
pub fn context_switches(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .filter(|l| l.contains("ctxt_switches"))
        .map(|l| l.split_whitespace().last().unwrap().parse::<u64>().unwrap())
        .sum()
}

impl Run {
    /// drainit is the child unshare forks. If drainit has already exited (a
    /// command such as `true`), its pid does not matter any more.
    fn find_drainit_under_unshare(&mut self) {
        let unshare = self.drainit_pid;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pid) = children(unshare).first() {
                self.drainit_pid = *pid;
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                self.status = Some(status);
                return;
            }
            assert!(Instant::now() < deadline, "unshare started no child");
            sleep(Duration::from_millis(2));
        }
    }

    /// Sends `signal` to drainit and returns the CLOCK_MONOTONIC instant just before.
    pub fn signal(&self, signal: i32) -> u64 {
        let at = now_ns();
        // SAFETY: kill has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.drainit_pid, signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.drainit_pid);
        at
    }

    /// A command that runs `program` in drainit's network namespace.
    pub fn in_network(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/proc/{}/ns/net", self.drainit_pid))
            .arg(program);
        command
    }

    /// Everything the recorder has logged so far.
    pub fn records(&self) -> Vec<Record> {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
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

    /// Waits up to `timeout_s` for a record matching `want` and returns it.
    pub fn wait_for(&self, want: impl Fn(&Record) -> bool, timeout_s: f64) -> Record {
        let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
        loop {
            if let Some(record) = self.records().into_iter().find(&want) {
                return record;
            }
            if Instant::now() > deadline {
                panic!(
                    "no matching record after {timeout_s}s; records: {:?}; drainit stderr:\n{}",
                    self.records(),
                    self.stderr()
                );
            }
            sleep(Duration::from_millis(5));
        }
    }

    /// The first time `role` recorded signal `what` (e.g. "TERM"), if it did.
    pub fn received(&self, role: &str, what: &str) -> Option<u64> {
        self.records()
            .into_iter()
            .find(|r| r.role == role && r.what == what)
            .map(|r| r.at_ns)
    }

    /// Waits for drainit to exit (at most `timeout_s`) and returns its exit
    /// code and the time since it started.
    pub fn wait_exit(&mut self, timeout_s: f64) -> (i32, Duration) {
        let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
        loop {
            if let Some(status) = self.status.or_else(|| self.child.try_wait().unwrap()) {
                self.status = Some(status);
                let code = status.code().unwrap_or_else(|| {
                    panic!("drainit died of a signal: {status:?}\n{}", self.stderr())
                });
                return (code, self.started.elapsed());
            }
            if Instant::now() > deadline {
                panic!(
                    "drainit still running after {timeout_s}s; stderr:\n{}",
                    self.stderr()
                );
            }
            sleep(Duration::from_millis(2));
        }
    }

    /// Waits for the exit and returns the code and the CLOCK_MONOTONIC instant it was seen.
    pub fn wait_exit_at(&mut self, timeout_s: f64) -> (i32, u64) {
        let (code, _) = self.wait_exit(timeout_s);
        (code, now_ns())
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.scratch.path("stderr")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        &self.scratch.0
    }
}

impl Drop for Run {
    /// A failed test must not leave drainit and its app behind.
    fn drop(&mut self) {
        if self.status.is_none() {
            // Not as PID 1, the app would outlive drainit: kill its group first.
            for child in children(self.drainit_pid) {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(-child, libc::SIGKILL) };
            }
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(self.drainit_pid, libc::SIGKILL) };
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs drainit directly with `args` and `env` (nothing else in the
/// environment) and returns its exit code and stderr.
pub fn run_plain(args: &[&OsStr], env: &[(&str, &str)]) -> (i32, String) {
    let output = Command::new(drainit_binary())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
