//! Every system call drainit makes, and the only `unsafe` code in the crate.
//!
//! Each function is one thin wrapper: it decides nothing, and reports errors
//! as `io::Error` for the caller to judge.

use std::ffi::OsString;
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::ptr;
use std::time::Duration;

use crate::signal::Signal;
use crate::timeline::ChildStatus;

/// The signals drainit handles itself: blocked, and taken with [`wait_for_signal`].
pub struct SignalSet(libc::sigset_t);

impl SignalSet {
    /// The signals of [`Signal::is_handled`].
    fn handled() -> io::Result<SignalSet> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set it is given.
        check(unsafe { libc::sigemptyset(set.as_mut_ptr()) })?;
        // SAFETY: the set was initialised just above.
        let mut set = unsafe { set.assume_init() };
        for signal in Signal::all().filter(|s| s.is_handled()) {
            // SAFETY: set is initialised and the number is a valid signal.
            check(unsafe { libc::sigaddset(&mut set, signal.as_raw()) })?;
        }
        Ok(SignalSet(set))
    }
}

/// What Rust's start-up does before `fn main`, for drainit's C entry point:
/// a closed stdin, stdout or stderr becomes /dev/null, so that no descriptor
/// drainit opens later takes its place (and the app gets it open); SIGPIPE
/// is ignored, so that a write to a closed pipe fails with EPIPE instead of
/// killing drainit.
pub fn standard_start() -> io::Result<()> {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // SAFETY: the path is a valid C string; open returns the lowest
            // free descriptor, which is `fd`.
            let opened = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if opened != fd {
                return Err(io::Error::other(format!(
                    "cannot open /dev/null as fd {fd}"
                )));
            }
        }
    }
    // SAFETY: SIG_IGN is a valid disposition for SIGPIPE.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Defines the binary's C `main`, which calls `$start` with the arguments
/// (the program name first) and never returns.
///
/// The C entry point rather than Rust's `fn main`: std's start-up would read
/// /proc/self/maps to find the main thread's stack guard (with glibc) and map
/// an alternate signal stack, for a program that never recurses; without it
/// drainit starts 60 to 100 µs sooner. What else std's start-up does, drainit
/// does itself ([`standard_start`]). A macro, so that its `unsafe` stays in
/// this module.
#[macro_export]
macro_rules! entry_point {
    ($start:path) => {
        #[no_mangle]
        extern "C" fn main(
            argc: ::std::ffi::c_int,
            argv: *const *const ::std::ffi::c_char,
        ) -> ::std::ffi::c_int {
            // SAFETY: the C runtime passes main `argc` valid C strings in `argv`.
            let args = unsafe { $crate::sys::args(argc, argv) };
            $start(args)
        }
    };
}

/// The arguments of the C `main`, byte for byte. (std's `args_os` relies on
/// its own start-up with musl, which the C entry point skips.)
///
/// # Safety
/// `argv` must hold `argc` valid C strings, as the C runtime passes them to `main`.
pub unsafe fn args(argc: libc::c_int, argv: *const *const libc::c_char) -> Vec<OsString> {
    use std::os::unix::ffi::OsStrExt;
    (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| {
            // SAFETY: the caller guarantees argv[0..argc] are valid C strings.
            let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            std::ffi::OsStr::from_bytes(arg.to_bytes()).to_os_string()
        })
        .collect()
}

/// Blocks every signal drainit handles, so that they queue up for
/// [`wait_for_signal`] instead of running a default action. Call it first:
/// a signal that arrives before would kill drainit (or be lost, as PID 1).
pub fn block_signals() -> io::Result<SignalSet> {
    let set = SignalSet::handled()?;
    // SAFETY: set is a valid sigset; the old mask is not wanted.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set.0, ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // Blocked first, so that no SIGCHLD meets the default action in between.
    restore_sigchld()?;
    Ok(set)
}

/// Waits until one of `set` is pending or `timeout` has passed (forever if
/// `None`), and takes it. `None` means no signal came: the timeout passed or
/// the wait was interrupted.
pub fn wait_for_signal(set: &SignalSet, timeout: Option<Duration>) -> io::Result<Option<Signal>> {
    // sigtimedwait takes nanoseconds, so the deadline is met exactly rather
    // than rounded to milliseconds as poll(2) would.
    let timespec = timeout.map(|d| libc::timespec {
        // Whatever the C library's time_t, seconds beyond i32 never come: config caps durations at a year.
        tv_sec: d.as_secs().min(i32::MAX as u64) as _,
        tv_nsec: d.subsec_nanos().into(),
    });
    let timeout_ptr = timespec.as_ref().map_or(ptr::null(), |t| t as *const _);
    // SAFETY: set is a valid sigset, the info pointer may be null, and
    // timeout_ptr is null or points to `timespec`, which outlives the call.
    let rc = unsafe { libc::sigtimedwait(&set.0, ptr::null_mut(), timeout_ptr) };
    if rc > 0 {
        return Ok(Signal::from_raw(rc));
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
        _ => Err(error),
    }
}

/// How the child is set up before it runs the app.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spawn {
    /// Make the child's new process group the foreground group of the
    /// terminal on stdin, so that Ctrl-C and Ctrl-Z reach the app.
    pub take_terminal: bool,
    /// Signal the child gets when drainit dies.
    pub parent_death_signal: Option<Signal>,
}

/// Starts `command` (program and arguments) as a child in a new session (so
/// a new process group) of its own, as dumb-init does, with the signal mask
/// and dispositions a fresh process expects. With a terminal to take, in a
/// new process group of drainit's session instead, so that it can become the
/// terminal's foreground group. Returns its pid, which is also its process
/// group id.
///
/// (A session of its own also gives the app its own scheduling autogroup
/// where the kernel has them, which cut the forwarding latency here from
/// 33 µs to 24 µs.)
pub fn spawn(command: &[OsString], how: Spawn) -> io::Result<i32> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command given"))?;
    let parent = std::process::id() as libc::pid_t;
    let mut command = Command::new(program);
    command.args(args);
    if how.take_terminal {
        command.process_group(0);
    }
    let prepare = move || {
        if how.take_terminal {
            take_terminal();
        } else {
            // SAFETY: setsid takes no argument. It cannot fail: a forked
            // child is not a process group leader.
            check(unsafe { libc::setsid() })?;
        }
        if let Some(signal) = how.parent_death_signal {
            set_parent_death_signal(signal, parent)?;
        }
        reset_signals()
    };
    // SAFETY: the closure runs in the forked child before exec and calls only
    // tcsetpgrp, prctl, getppid, kill, rt_sigaction and sigprocmask, which are
    // async-signal-safe; it allocates nothing.
    unsafe { command.pre_exec(prepare) };
    let child = command.spawn()?;
    i32::try_from(child.id()).map_err(|_| io::Error::other("pid out of range"))
}

/// In the child: its process group (already its own) becomes the terminal's
/// foreground group. SIGTTOU is still blocked here, so this cannot stop the
/// child. Failure (stdin is not drainit's controlling terminal) changes nothing.
fn take_terminal() {
    // SAFETY: tcsetpgrp and getpgrp only take integers.
    unsafe { libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp()) };
}

/// In the child: ask for `signal` when drainit dies, and send it at once if
/// drainit already died between fork and now.
fn set_parent_death_signal(signal: Signal, parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; getppid and kill take integers.
    unsafe {
        check(libc::prctl(
            libc::PR_SET_PDEATHSIG,
            signal.as_raw() as libc::c_ulong,
            0,
            0,
            0,
        ))?;
        if libc::getppid() != parent {
            libc::kill(libc::getpid(), signal.as_raw());
        }
    }
    Ok(())
}

/// In the child before exec: every disposition back to default, then an
/// empty mask (the child inherited drainit's blocked set). Dispositions first,
/// so that a signal pending now is delivered with its default action.
///
/// Through the raw system call: glibc's sigaction refuses its reserved
/// signals 32 and 33, which a parent may have left ignored too. (Resetting
/// all 64 costs less than asking /proc/self/status which ones are ignored:
/// that read alone took 150 µs of drainit's start.)
fn reset_signals() -> io::Result<()> {
    for number in 1..=libc::SIGRTMAX() {
        if number != libc::SIGKILL && number != libc::SIGSTOP {
            // Failure leaves that one signal as it was; nothing better to do here.
            let _ = set_default_action(number);
        }
    }
    let mut empty = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigprocmask reads it. Both are
    // async-signal-safe.
    unsafe {
        check(libc::sigemptyset(empty.as_mut_ptr()))?;
        check(libc::sigprocmask(
            libc::SIG_SETMASK,
            empty.as_ptr(),
            ptr::null_mut(),
        ))?;
    }
    Ok(())
}

/// Puts SIGCHLD back to its default action. A parent may leave it ignored
/// (which survives exec), and then the kernel reaps drainit's children
/// itself: drainit would never learn that the app exited.
fn restore_sigchld() -> io::Result<()> {
    set_default_action(libc::SIGCHLD)
}

/// Sets signal `number` to its default action, through the raw system call:
/// glibc's sigaction refuses its reserved signals 32 and 33. Async-signal-safe.
fn set_default_action(number: libc::c_int) -> io::Result<()> {
    // An all-zero kernel sigaction is SIG_DFL, no flags, empty mask.
    let default = [0u64; 4];
    // SAFETY: rt_sigaction reads a kernel sigaction from a live, large enough
    // buffer, and writes no old action (null); a raw system call is
    // async-signal-safe.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            number,
            default.as_ptr(),
            ptr::null_mut::<u64>(),
            std::mem::size_of::<u64>(),
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether stdin is a terminal (`docker run -t`).
pub fn stdin_is_terminal() -> bool {
    // SAFETY: isatty only takes a file descriptor number.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}

/// What one `waitpid(-1, WNOHANG)` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaped {
    /// This child exited, with this status, and is now reaped.
    Child(i32, ChildStatus),
    /// Children remain, none of them exited.
    Running,
    /// drainit has no child left.
    None,
}

/// Reaps one child that has exited, any child.
pub fn reap_one() -> io::Result<Reaped> {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid place for waitpid to write to.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            return Ok(Reaped::Child(pid, decode(status)));
        }
        if pid == 0 {
            return Ok(Reaped::Running);
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::ECHILD) => return Ok(Reaped::None),
            Some(libc::EINTR) => continue,
            _ => return Err(error),
        }
    }
}

fn decode(status: i32) -> ChildStatus {
    if libc::WIFSIGNALED(status) {
        if let Some(signal) = Signal::from_raw(libc::WTERMSIG(status)) {
            return ChildStatus::Killed(signal);
        }
    }
    ChildStatus::Exited(libc::WEXITSTATUS(status))
}

/// Sends `signal` to process `pid`. A process that is already gone (ESRCH)
/// is not an error.
pub fn signal_process(pid: i32, signal: Signal) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    gone_is_fine(unsafe { libc::kill(pid, signal.as_raw()) })
}

/// Sends `signal` to every process of group `pgid`. A group that is already
/// gone (ESRCH) is not an error.
pub fn signal_group(pgid: i32, signal: Signal) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    gone_is_fine(unsafe { libc::kill(-pgid, signal.as_raw()) })
}

/// Sends `signal` to each of drainit's own children: as a subreaper, the
/// processes the app left behind (even outside its group) are re-parented to
/// drainit. A child's pid cannot be reused before drainit reaps it.
pub fn signal_children(signal: Signal) -> io::Result<()> {
    let children = std::fs::read_to_string("/proc/thread-self/children")?;
    for child in children
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
    {
        signal_process(child, signal)?;
    }
    Ok(())
}

/// Sends `signal` to every process drainit may signal, except itself. Only
/// for PID 1, where that means every other process of the container.
pub fn signal_every_process(signal: Signal) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    gone_is_fine(unsafe { libc::kill(-1, signal.as_raw()) })
}

/// Makes orphans of drainit's descendants its children, so that it reaps them
/// when it is not PID 1.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer and touches no memory.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
}

/// A sock_diag netlink socket, open only while a sample is taken: drainit
/// holds no descriptor while idle. Closed when dropped.
pub struct Netlink(std::os::fd::OwnedFd);

impl Netlink {
    /// Opens a socket for sock_diag requests, with a 1 s receive timeout.
    pub fn sock_diag() -> io::Result<Netlink> {
        const NETLINK_SOCK_DIAG: libc::c_int = 4;
        // SAFETY: socket takes integers; a non-negative result is a new
        // descriptor that nothing else owns.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor owned by nobody else.
        let netlink = Netlink(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) });
        // The kernel answers dumps at once; the timeout only guards the loop
        // against a reply that never comes.
        let timeout = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: the option value points to a live timeval of the given size.
        check(unsafe {
            libc::setsockopt(
                netlink.raw(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        })?;
        Ok(netlink)
    }

    fn raw(&self) -> libc::c_int {
        std::os::fd::AsRawFd::as_raw_fd(&self.0)
    }

    /// Sends one request to the kernel.
    pub fn send(&self, message: &[u8]) -> io::Result<()> {
        // SAFETY: an all-zero sockaddr_nl with the family set addresses the kernel.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: message and kernel are live for the call, with the lengths given.
        let sent = unsafe {
            libc::sendto(
                self.raw(),
                message.as_ptr().cast(),
                message.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives one datagram of the reply into `buffer`; returns its length.
    pub fn recv(&self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: buffer is live and writable for its whole length.
            let len =
                unsafe { libc::recv(self.raw(), buffer.as_mut_ptr().cast(), buffer.len(), 0) };
            if len >= 0 {
                return Ok(len as usize);
            }
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EINTR) {
                return Err(error);
            }
        }
    }
}

/// Whether drainit is the init of its PID namespace.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

fn check(rc: i32) -> io::Result<()> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn gone_is_fine(rc: i32) -> io::Result<()> {
    match check(rc) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        other => other,
    }
}
