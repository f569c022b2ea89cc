//! Shared by `tests/hostile.rs` and `tests/privilege.rs` (included with
//! `#[path]`), on top of `tests/common`: start drainit with exact bytes for
//! its arguments and environment, behind a wrapper that runs inside the PID
//! namespace (and execs drainit, so that drainit is still PID 1), signal it
//! through a pidfd (never a recycled pid), and look at its namespace from the
//! host's /proc.
#![allow(dead_code)]

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::{children, now_ns, DRAINIT, PYTHON};

/// The helper scripts and C sources of these tests.
pub const HOSTILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile");

/// `tests/hostile/<name>`.
pub fn helper(name: &str) -> String {
    format!("{HOSTILE}/{name}")
}

/// The usual PATH for drainit and its app.
pub const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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

/// A process to signal by pidfd: a signal can never reach another process
/// that got the same pid after this one was reaped.
pub struct PidFd(OwnedFd);

impl PidFd {
    pub fn open(pid: i32) -> io::Result<PidFd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the fd was just created and nothing else owns it.
        Ok(PidFd(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }

    /// Sends `signal`; ESRCH once the process has exited.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        // SAFETY: the fd is a valid pidfd; a null siginfo is allowed.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// Where `name` is in the test's PATH.
fn which(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/bin".into(), "/bin".into()])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{name} not found"))
}

fn cstring(bytes: &[u8]) -> CString {
    CString::new(bytes).expect("a NUL byte in an argument or a variable")
}

/// NUL-terminated strings and the pointer array execve wants, built before
/// fork so that the child allocates nothing.
struct Strings {
    _owned: Vec<CString>,
    pointers: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into `_owned`, which moves with them and is never changed.
unsafe impl Send for Strings {}
// SAFETY: as above; nothing mutates the strings.
unsafe impl Sync for Strings {}

impl Strings {
    fn new(items: &[OsString]) -> Strings {
        let owned: Vec<CString> = items.iter().map(|s| cstring(s.as_bytes())).collect();
        let mut pointers: Vec<*const libc::c_char> = owned.iter().map(|s| s.as_ptr()).collect();
        pointers.push(std::ptr::null());
        Strings {
            _owned: owned,
            pointers,
        }
    }
}

/// How to start drainit: `unshare --pid --fork --mount-proc [WRAPPER...]
/// DRAINIT OPTIONS -- COMMAND`, with exactly `env` as its environment.
pub struct Spec {
    pub pid1: bool,
    /// Runs first (inside the namespace) and execs what follows: drainit.
    pub wrapper: Vec<OsString>,
    pub options: Vec<OsString>,
    pub command: Vec<OsString>,
    /// The environment, entry by entry, in this order, byte for byte.
    pub env: Vec<OsString>,
    /// A `cgroup.procs` file that the first process joins before it execs.
    pub cgroup_procs: Option<PathBuf>,
    /// Set glibc's reserved signals (32 to SIGRTMIN − 1) to SIG_IGN before
    /// the exec, with the raw system call (glibc's sigaction refuses them).
    pub ignore_reserved: bool,
}

pub fn os(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

pub fn bytes(item: &[u8]) -> OsString {
    OsStr::from_bytes(item).to_os_string()
}

impl Spec {
    pub fn new(options: &[&str], command: &[&str]) -> Spec {
        Spec {
            pid1: true,
            wrapper: Vec::new(),
            options: os(options),
            command: os(command),
            env: vec![PATH.into()],
            cgroup_procs: None,
            ignore_reserved: false,
        }
    }

    /// Behind `tests/hostile/wrap.py` with these options.
    pub fn wrapped(mut self, wrap_options: &[&str]) -> Spec {
        self.wrapper = os(&[PYTHON, &helper("wrap.py")]);
        self.wrapper.extend(os(wrap_options));
        self.wrapper.push("--".into());
        self
    }

    pub fn not_pid1(mut self) -> Spec {
        self.pid1 = false;
        self
    }

    /// Starts it, with stdin and stdout on /dev/null and stderr into
    /// `stderr`. Descriptors the test process may have inherited are not
    /// passed on: drainit starts with 0, 1 and 2 only.
    pub fn start(self, stderr: &Path) -> Drainit {
        let mut argv: Vec<OsString> = Vec::new();
        if self.pid1 {
            argv.push(which("unshare").into());
            argv.extend(os(&["--pid", "--fork", "--mount-proc"]));
        }
        argv.extend(self.wrapper);
        argv.push(DRAINIT.into());
        argv.extend(self.options);
        argv.push("--".into());
        argv.extend(self.command);
        let program = cstring(argv[0].as_bytes());
        let args = Strings::new(&argv);
        let env = Strings::new(&self.env);
        let cgroup = self.cgroup_procs.map(|p| cstring(p.as_os_str().as_bytes()));
        let reserved = if self.ignore_reserved {
            32..libc::SIGRTMIN()
        } else {
            0..0
        };
        let mut command = Command::new(&argv[0]);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(stderr).unwrap());
        let exec = move || {
            // The whole structs, not just their pointer fields, move into the closure.
            let (args, env) = (&args, &env);
            // SAFETY: only system calls on memory prepared before fork.
            unsafe {
                // Whatever the test process inherited (and std's own pipe) closes at exec.
                libc::syscall(
                    libc::SYS_close_range,
                    3u32,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                for signal in reserved.clone() {
                    // The kernel's struct sigaction: handler, flags, restorer, mask.
                    let ignore: [libc::c_ulong; 4] = [libc::SIG_IGN as libc::c_ulong, 0, 0, 0];
                    let rc = libc::syscall(
                        libc::SYS_rt_sigaction,
                        signal,
                        ignore.as_ptr(),
                        std::ptr::null_mut::<libc::c_void>(),
                        8,
                    );
                    if rc != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                if let Some(procs) = &cgroup {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                    if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(io::Error::last_os_error());
                    }
                    libc::close(fd);
                }
                libc::execve(
                    program.as_ptr(),
                    args.pointers.as_ptr(),
                    env.pointers.as_ptr(),
                );
            }
            Err(io::Error::last_os_error())
        };
        // SAFETY: the closure makes only async-signal-safe system calls.
        unsafe { command.pre_exec(exec) };
        let child = command.spawn().expect("cannot start drainit");
        let mut drainit = Drainit {
            pid: 0,
            pidfd: None,
            outer: child.id() as i32,
            child,
            stderr: stderr.to_path_buf(),
            status: None,
            ns: None,
        };
        drainit.find(self.pid1);
        drainit
    }
}

/// A drainit started by [`Spec::start`].
pub struct Drainit {
    child: Child,
    /// The process the test started: unshare, or drainit itself.
    outer: i32,
    /// drainit's pid on the host (0 if it exited before it was seen).
    pub pid: i32,
    pidfd: Option<PidFd>,
    stderr: PathBuf,
    status: Option<ExitStatus>,
    /// drainit's PID namespace, as /proc/PID/ns/pid reads (`pid:[N]`).
    pub ns: Option<PathBuf>,
}

/// The file /proc/PID/exe points to.
pub fn exe(pid: i32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/exe")).ok()
}

impl Drainit {
    /// Waits until drainit runs (after unshare's fork and the wrapper's exec).
    fn find(&mut self, pid1: bool) {
        let drainit = fs::canonicalize(DRAINIT).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let candidate = if pid1 {
                children(self.outer).first().copied()
            } else {
                Some(self.outer)
            };
            if let Some(pid) = candidate {
                if exe(pid).as_deref() == Some(drainit.as_path()) {
                    self.pid = pid;
                    self.pidfd = PidFd::open(pid).ok();
                    self.ns = fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
                    return;
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                self.status = Some(status);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "drainit did not start; stderr:\n{}",
                self.stderr()
            );
            sleep(Duration::from_millis(2));
        }
    }

    /// Sends `signal` to drainit; returns the CLOCK_MONOTONIC instant just before.
    pub fn signal(&self, signal: i32) -> u64 {
        let at = now_ns();
        self.pidfd
            .as_ref()
            .expect("drainit was not seen running")
            .signal(signal)
            .unwrap_or_else(|e| panic!("cannot send signal {signal} to drainit: {e}"));
        at
    }

    /// The app: drainit's first child, once it has exec'd `exe_name` (its
    /// file name, e.g. `sleep` or `python3.11`), or any child if `None`.
    pub fn app(&self, exe_name: Option<&str>, timeout_s: f64) -> i32 {
        let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
        loop {
            for pid in children(self.pid) {
                let name = exe(pid);
                let file = name.as_ref().and_then(|p| p.file_name());
                let matches = match exe_name {
                    None => true,
                    Some(want) => file.is_some_and(|f| f.to_string_lossy().starts_with(want)),
                };
                if matches {
                    return pid;
                }
            }
            assert!(
                Instant::now() < deadline,
                "drainit has no app child; stderr:\n{}",
                self.stderr()
            );
            sleep(Duration::from_millis(2));
        }
    }

    /// Waits for drainit's exit, at most `timeout_s`: its exit code (128+N
    /// if it died of signal N) and the CLOCK_MONOTONIC instant it was seen.
    pub fn wait_exit(&mut self, timeout_s: f64) -> (i32, u64) {
        self.try_wait_exit(timeout_s).unwrap_or_else(|| {
            panic!(
                "drainit still running after {timeout_s}s; stderr:\n{}",
                self.stderr()
            )
        })
    }

    /// Like [`Drainit::wait_exit`], `None` if it is still running.
    pub fn try_wait_exit(&mut self, timeout_s: f64) -> Option<(i32, u64)> {
        let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
        loop {
            if let Some(status) = self.status.or_else(|| self.child.try_wait().unwrap()) {
                self.status = Some(status);
                let code = status
                    .code()
                    .or_else(|| status.signal().map(|s| 128 + s))
                    .unwrap();
                return Some((code, now_ns()));
            }
            if Instant::now() > deadline {
                return None;
            }
            sleep(Duration::from_millis(2));
        }
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Drainit {
    /// A failed test must not leave drainit and its app behind.
    fn drop(&mut self) {
        if self.status.is_none() {
            if let Some(pidfd) = &self.pidfd {
                let _ = pidfd.signal(libc::SIGKILL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The host pids of every process in PID namespace `ns` (as /proc/PID/ns/pid reads).
pub fn members(ns: &Path) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &i32| {
            fs::read_link(format!("/proc/{pid}/ns/pid")).ok().as_deref() == Some(ns)
        })
        .collect()
}

/// A line of /proc/PID/status, e.g. `field("SigIgn")`, without the name.
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// A signal set of /proc/PID/status (`SigIgn`, `SigBlk`, `SigCgt`, ...) as a mask.
pub fn sigset(pid: i32, field: &str) -> u64 {
    let hex = status_field(pid, field).unwrap_or_else(|| panic!("no {field} for pid {pid}"));
    u64::from_str_radix(&hex, 16).unwrap()
}

pub fn bit(signal: i32) -> u64 {
    1 << (signal - 1)
}

/// The host pid of the process that is `nspid` inside namespace `ns`.
pub fn host_pid(ns: &Path, nspid: i32) -> Option<i32> {
    members(ns).into_iter().find(|&pid| {
        status_field(pid, "NSpid").and_then(|l| l.split_whitespace().last()?.parse().ok())
            == Some(nspid)
    })
}

/// File descriptors of `pid`: number and what it points to.
pub fn fds(pid: i32) -> Vec<(i32, String)> {
    let mut fds: Vec<(i32, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(e.path()).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect();
    fds.sort();
    fds
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

/// One line of `tests/hostile/app.py`'s events file.
#[derive(Debug, Clone)]
pub struct Event {
    pub at_ns: u64,
    pub role: String,
    pub what: String,
}

pub fn events(dir: &Path) -> Vec<Event> {
    fs::read_to_string(dir.join("events"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ' ');
            Some(Event {
                at_ns: parts.next()?.parse().ok()?,
                role: parts.next()?.to_string(),
                what: parts.next()?.to_string(),
            })
        })
        .collect()
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
