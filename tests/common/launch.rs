//! Starting drainit the way a platform does, and watching it run.
//!
//! `unshare --pid --fork --mount-proc [WRAPPER...] DRAINIT OPTIONS -- COMMAND`
//! (or the same without unshare), with exactly the environment the test
//! gives (byte for byte), stdin and stdout on /dev/null, stderr where the
//! test says, and no descriptor but 0, 1 and 2: whatever the test process
//! inherited closes at exec. drainit is then signalled through a pidfd, so a
//! signal can never reach a process that got its pid after it was reaped.

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

use super::{children, drainit_binary, exe, now_ns, records_in, Record, Scratch};
use super::{helper, PATH, PYTHON, RECORDER};

/// Where drainit's stderr goes.
enum Stderr {
    /// `stderr` in the run's scratch directory, read with [`Run::stderr`].
    Scratch,
    /// This file.
    File(PathBuf),
    /// This descriptor (a pipe the test holds).
    Fd(OwnedFd),
}

/// How to start drainit: options, environment, namespace, wrapper, stdio.
pub struct Launch {
    options: Vec<OsString>,
    /// The environment, entry by entry (`NAME=value`), in order, byte for byte.
    env: Vec<OsString>,
    pid1: bool,
    own_network: bool,
    /// Runs first (inside the PID namespace) and execs what follows: drainit.
    wrapper: Vec<OsString>,
    stderr: Stderr,
    cwd: Option<PathBuf>,
    /// A `cgroup.procs` file that the first process joins before it execs.
    cgroup_procs: Option<PathBuf>,
    /// Set glibc's reserved signals (32 to SIGRTMIN − 1) to SIG_IGN before
    /// the exec, with the raw system call (glibc's sigaction refuses them).
    ignore_reserved: bool,
}

fn os(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

/// Bytes as an argument or a variable.
pub fn bytes(item: &[u8]) -> OsString {
    OsStr::from_bytes(item).to_os_string()
}

impl Launch {
    /// drainit with these options, as PID 1, with only [`PATH`] in its environment.
    pub fn new(options: &[&str]) -> Launch {
        Launch::new_os(os(options))
    }

    /// [`Launch::new`] with options of any bytes.
    pub fn new_os(options: Vec<OsString>) -> Launch {
        Launch {
            options,
            env: vec![format!("PATH={PATH}").into()],
            pid1: true,
            own_network: false,
            wrapper: Vec::new(),
            stderr: Stderr::Scratch,
            cwd: None,
            cgroup_procs: None,
            ignore_reserved: false,
        }
    }

    /// Adds `name=value` to the environment.
    pub fn env(self, name: &str, value: &str) -> Launch {
        self.env_entry(format!("{name}={value}").into())
    }

    /// Adds one environment entry, any bytes (`NAME=value`, or not even that).
    pub fn env_entry(mut self, entry: OsString) -> Launch {
        self.env.push(entry);
        self
    }

    /// Exactly these environment entries, nothing else (not even PATH).
    pub fn exact_env(mut self, entries: Vec<OsString>) -> Launch {
        self.env = entries;
        self
    }

    /// A plain process, not PID 1 of a namespace.
    pub fn not_pid1(mut self) -> Launch {
        self.pid1 = false;
        self
    }

    /// Also in a network namespace of its own (only loopback, down until the app brings it up).
    pub fn own_network(mut self) -> Launch {
        self.own_network = true;
        self
    }

    /// drainit started by `wrapper`, which execs it (`setpriv ...`, `sh -c 'exec "$0" "$@"'`).
    pub fn wrapper(mut self, wrapper: &[&str]) -> Launch {
        self.wrapper = os(wrapper);
        self
    }

    /// Behind `tests/hostile/wrap.py` with these options: drainit starts in a
    /// hostile state (dispositions, mask, rlimits, stdio).
    pub fn wrapped(mut self, wrap_options: &[&str]) -> Launch {
        self.wrapper = os(&[PYTHON, &helper("wrap.py")]);
        self.wrapper.extend(os(wrap_options));
        self.wrapper.push("--".into());
        self
    }

    /// drainit's stderr is `fd` (a pipe the test holds).
    pub fn stderr(mut self, fd: OwnedFd) -> Launch {
        self.stderr = Stderr::Fd(fd);
        self
    }

    /// drainit's stderr goes to the file `path`.
    pub fn stderr_to(mut self, path: &Path) -> Launch {
        self.stderr = Stderr::File(path.to_path_buf());
        self
    }

    /// drainit starts in `dir`.
    pub fn cwd(mut self, dir: &Path) -> Launch {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// The first process joins this cgroup (its `cgroup.procs`) before it execs.
    pub fn cgroup_procs(mut self, procs: &Path) -> Launch {
        self.cgroup_procs = Some(procs.to_path_buf());
        self
    }

    /// glibc's reserved signals start ignored.
    pub fn ignore_reserved(mut self) -> Launch {
        self.ignore_reserved = true;
        self
    }

    /// Starts drainit on the recorder with `recorder_args`, and waits until
    /// the app is ready.
    pub fn recorder(self, recorder_args: &[&str]) -> Run {
        let scratch = Scratch::new();
        let log = scratch.path("events.log");
        let mut command = os(&[PYTHON, RECORDER, "--log"]);
        command.push(log.clone().into());
        command.extend(os(recorder_args));
        let run = self.start(scratch, log, command);
        run.wait_for(|r| r.role == "app" && r.what.starts_with("ready"), 10.0);
        run
    }

    /// Starts drainit on an arbitrary command; does not wait for anything.
    pub fn command(self, command: &[&str]) -> Run {
        self.command_os(os(command))
    }

    /// [`Launch::command`] with arguments of any bytes.
    pub fn command_os(self, command: Vec<OsString>) -> Run {
        let scratch = Scratch::new();
        let log = scratch.path("events.log");
        self.start(scratch, log, command)
    }

    fn start(self, scratch: Scratch, log: PathBuf, command: Vec<OsString>) -> Run {
        let mut argv: Vec<OsString> = Vec::new();
        if self.pid1 {
            argv.extend(os(&["unshare", "--pid", "--fork", "--mount-proc"]));
            if self.own_network {
                argv.push("--net".into());
            }
        }
        argv.extend(self.wrapper);
        argv.push(drainit_binary().into());
        argv.extend(self.options);
        argv.push("--".into());
        argv.extend(command);
        // execve does not search PATH: the first word is a path.
        let program = which(&argv[0]);
        let program = cstring(program.as_os_str().as_bytes());
        let args = Strings::new(&argv);
        let env = Strings::new(&self.env);
        let cgroup = self.cgroup_procs.map(|p| cstring(p.as_os_str().as_bytes()));
        let reserved = if self.ignore_reserved {
            32..libc::SIGRTMIN()
        } else {
            0..0
        };
        let (stderr, stderr_path) = match self.stderr {
            Stderr::Scratch => {
                let path = scratch.path("stderr");
                (fs::File::create(&path).unwrap().into(), Some(path))
            }
            Stderr::File(path) => (fs::File::create(&path).unwrap().into(), Some(path)),
            Stderr::Fd(fd) => (Stdio::from(fd), None),
        };
        let mut command = Command::new(&argv[0]);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
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
        let mut run = Run {
            outer: child.id() as i32,
            child,
            drainit_pid: 0,
            pidfd: None,
            ns: None,
            scratch,
            log,
            stderr: stderr_path,
            status: None,
        };
        run.find(self.pid1);
        run
    }
}

/// Where `name` is: itself if it is a path, else on the test's PATH.
fn which(name: &OsStr) -> PathBuf {
    if name.as_bytes().contains(&b'/') {
        return PathBuf::from(name);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/bin".into(), "/bin".into()])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{name:?} not found"))
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

/// A drainit started by [`Launch`]: its process, stderr and the recorder's log.
pub struct Run {
    child: Child,
    /// The process the test started: unshare, the wrapper, or drainit itself.
    outer: i32,
    /// drainit's pid on the host (0 if it exited before it was seen).
    pub drainit_pid: i32,
    pidfd: Option<PidFd>,
    /// drainit's PID namespace, as /proc/PID/ns/pid reads (`pid:[N]`).
    pub ns: Option<PathBuf>,
    pub scratch: Scratch,
    /// The recorder's log.
    pub log: PathBuf,
    stderr: Option<PathBuf>,
    status: Option<ExitStatus>,
}

impl Run {
    /// Waits until drainit runs (after unshare's fork and the wrapper's exec).
    /// If drainit has already exited (a command such as `true`), its pid does
    /// not matter any more.
    fn find(&mut self, pid1: bool) {
        // The program drainit runs as: itself, or what `TEST_DRAINIT_EXE` names
        // (`qemu-aarch64-static`, when the arm64 build runs under qemu-user).
        let drainit = std::env::var_os("TEST_DRAINIT_EXE")
            .map(PathBuf::from)
            .unwrap_or_else(|| fs::canonicalize(drainit_binary()).unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let candidate = if pid1 {
                children(self.outer).first().copied()
            } else {
                Some(self.outer)
            };
            if let Some(pid) = candidate {
                if exe(pid).as_deref() == Some(drainit.as_path()) {
                    self.drainit_pid = pid;
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

    /// Sends `signal` to drainit and returns the CLOCK_MONOTONIC instant just before.
    pub fn signal(&self, signal: i32) -> u64 {
        let at = now_ns();
        self.pidfd
            .as_ref()
            .expect("drainit was not seen running")
            .signal(signal)
            .unwrap_or_else(|e| panic!("cannot send signal {signal} to drainit: {e}"));
        at
    }

    /// drainit's pidfd, for tests that signal it from several threads.
    pub fn pidfd(&self) -> PidFd {
        PidFd::open(self.drainit_pid).expect("drainit is not running")
    }

    /// The app: drainit's first child, once it has exec'd `exe_name` (its
    /// file name, e.g. `sleep` or `python3.11`), or any child if `None`.
    pub fn app(&self, exe_name: Option<&str>, timeout_s: f64) -> i32 {
        let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
        loop {
            for pid in children(self.drainit_pid) {
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
        records_in(&self.log)
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
        super::recorded(&self.log, role, what)
    }

    /// Waits for drainit's exit, at most `timeout_s`: its exit code and the
    /// CLOCK_MONOTONIC instant it was seen. drainit dying of a signal is a
    /// failure of the test: its code would pass for the app's 128 + N.
    pub fn wait_exit(&mut self, timeout_s: f64) -> (i32, u64) {
        self.try_wait_exit(timeout_s).unwrap_or_else(|| {
            panic!(
                "drainit still running after {timeout_s}s; stderr:\n{}",
                self.stderr()
            )
        })
    }

    /// Like [`Run::wait_exit`], `None` if it is still running.
    pub fn try_wait_exit(&mut self, timeout_s: f64) -> Option<(i32, u64)> {
        let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
        loop {
            if let Some(status) = self.status.or_else(|| self.child.try_wait().unwrap()) {
                self.status = Some(status);
                let code = status.code().unwrap_or_else(|| {
                    panic!(
                        "drainit died of signal {:?}; stderr:\n{}",
                        status.signal(),
                        self.stderr()
                    )
                });
                return Some((code, now_ns()));
            }
            if Instant::now() > deadline {
                return None;
            }
            sleep(Duration::from_millis(2));
        }
    }

    /// What drainit wrote to stderr (nothing if it went to a descriptor).
    pub fn stderr(&self) -> String {
        self.stderr
            .as_ref()
            .and_then(|path| fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        &self.scratch.0
    }
}

impl Drop for Run {
    /// A failed test must not leave drainit and its app behind.
    fn drop(&mut self) {
        if self.status.is_none() {
            // Not as PID 1, the app would outlive drainit: kill its group
            // first. (Never for pid 0, whose "children" are the host's init
            // and kthreadd: `kill(-1)` would end everything.)
            let app_groups = match self.drainit_pid {
                pid if pid > 1 => children(pid),
                _ => Vec::new(),
            };
            for child in app_groups.into_iter().filter(|&c| c > 1) {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(-child, libc::SIGKILL) };
            }
            if let Some(pidfd) = &self.pidfd {
                let _ = pidfd.signal(libc::SIGKILL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
