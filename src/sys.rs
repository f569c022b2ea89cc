//! Every system call drainit makes, and the only `unsafe` code in the crate
//! (`unsafe_code` is denied everywhere else: see Cargo.toml).
//!
//! Each function is one thin wrapper: it decides nothing, and reports errors
//! as `io::Error` for the caller to judge.

#![allow(unsafe_code)]

use std::ffi::OsString;
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::ptr;
use std::time::Duration;

use crate::observed::ChildStatus;
use crate::signal::Signal;

/// The signals drainit handles itself: blocked, and taken with [`wait_for_signal`].
pub struct SignalSet {
    set: libc::sigset_t,
    /// Each signal of the set, at its number (1 to 64, SIGRTMAX where drainit
    /// ships): what the number the kernel returns is looked up in first.
    /// `Signal::from_raw` asks the C library for SIGRTMAX, a call to a page
    /// of its own on every forwarded signal.
    by_number: [Option<Signal>; 65],
}

impl SignalSet {
    /// The signals of [`Signal::is_handled`].
    fn handled() -> io::Result<SignalSet> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set it is given.
        check(unsafe { libc::sigemptyset(set.as_mut_ptr()) })?;
        // SAFETY: the set was initialised just above.
        let mut set = unsafe { set.assume_init() };
        let mut by_number = [None; 65];
        for signal in Signal::all().filter(|s| s.is_handled()) {
            // SAFETY: set is initialised and the number is a valid signal.
            check(unsafe { libc::sigaddset(&mut set, signal.as_raw()) })?;
            if let Some(slot) = usize::try_from(signal.as_raw())
                .ok()
                .and_then(|n| by_number.get_mut(n))
            {
                *slot = Some(signal);
            }
        }
        Ok(SignalSet { set, by_number })
    }
}

/// What Rust's start-up does before `fn main`, for drainit's C entry point:
/// a closed stdin, stdout or stderr becomes /dev/null, so that no descriptor
/// drainit opens later takes its place (and the app gets it open). (Where
/// std ignores SIGPIPE, drainit blocks it with the signals it handles: a
/// write to a closed pipe fails with EPIPE, and [`Received::by_drainit`]
/// tells that SIGPIPE from one sent by another process.)
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

/// What drainit inherited from its parent and changed for itself, given
/// back to the app before exec (exec(2) keeps the mask and the ignored
/// signals; tini and dumb-init pass them on the same way): `nohup drainit --
/// app` leaves SIGHUP ignored in the app.
#[derive(Clone, Copy)]
pub struct Inherited {
    /// The signal mask drainit was started with.
    mask: libc::sigset_t,
    /// SIGCHLD was ignored: drainit set it back to its default for itself.
    chld_ignored: bool,
    /// SIGPIPE was ignored: std's spawn sets it to its default in the child.
    pipe_ignored: bool,
}

/// Blocks every signal drainit handles, so that they queue up for
/// [`wait_for_signal`] instead of running a default action, and returns
/// them with what drainit inherited. Call it first: a signal that arrives
/// before would kill drainit (or be lost, as PID 1).
pub fn block_signals() -> io::Result<(SignalSet, Inherited)> {
    let set = SignalSet::handled()?;
    let mut mask = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: set is a valid sigset; pthread_sigmask writes the old mask into `mask`.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set.set, mask.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: pthread_sigmask succeeded, so it wrote the old mask.
    let mask = unsafe { mask.assume_init() };
    // Blocked first, so that no SIGCHLD meets the default action in between.
    // A parent may leave SIGCHLD ignored (which survives exec), and then the
    // kernel reaps drainit's children itself: drainit would never learn that
    // the app exited.
    let chld_ignored = set_action(libc::SIGCHLD, Some(libc::SIG_DFL))? == libc::SIG_IGN;
    let pipe_ignored = set_action(libc::SIGPIPE, None)? == libc::SIG_IGN;
    let inherited = Inherited {
        mask,
        chld_ignored,
        pipe_ignored,
    };
    Ok((set, inherited))
}

/// A signal taken by [`wait_for_signal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The signal.
    pub signal: Signal,
    /// drainit raised it itself: the kernel's SIGPIPE for a write of
    /// drainit's to a closed pipe comes as if drainit had sent it (SI_USER,
    /// drainit's own pid), while one from `kill -PIPE 1` carries the sender's
    /// pid (0 from outside the PID namespace).
    pub by_drainit: bool,
}

/// Waits until one of `set` is pending or `timeout` has passed (forever if
/// `None`), and takes it. `None` means no signal came: the timeout passed or
/// the wait was interrupted.
pub fn wait_for_signal(set: &SignalSet, timeout: Option<Duration>) -> io::Result<Option<Received>> {
    // sigtimedwait takes nanoseconds, so the deadline is met exactly rather
    // than rounded to milliseconds as poll(2) would.
    let timespec = timeout.map(|d| libc::timespec {
        // Whatever the C library's time_t, seconds beyond i32 never come: config caps durations at a year.
        tv_sec: d.as_secs().min(i32::MAX as u64) as _,
        tv_nsec: d.subsec_nanos().into(),
    });
    let timeout_ptr = timespec.as_ref().map_or(ptr::null(), |t| t as *const _);
    let mut info = MaybeUninit::<libc::siginfo_t>::uninit();
    // SAFETY: set is a valid sigset, info is a live siginfo_t to write to,
    // and timeout_ptr is null or points to `timespec`, which outlives the call.
    let rc = unsafe { raw::sigtimedwait(&set.set, info.as_mut_ptr(), timeout_ptr) };
    if rc > 0 {
        // SAFETY: sigtimedwait filled in the siginfo of the signal it took;
        // si_pid is valid for SI_USER. (Only for SIGPIPE: getpid is a system
        // call, and this is every forwarded signal's path.)
        let by_drainit = rc == libc::SIGPIPE
            && unsafe {
                let info = info.assume_init_ref();
                info.si_code == libc::SI_USER && info.si_pid() == libc::getpid()
            };
        let signal = usize::try_from(rc)
            .ok()
            .and_then(|n| set.by_number.get(n).copied().flatten())
            .or_else(|| Signal::from_raw(rc));
        return Ok(signal.map(|signal| Received { signal, by_drainit }));
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
        _ => Err(error),
    }
}

/// rt_sigtimedwait(2) and kill(2), the two system calls of every forwarded
/// signal, straight to the kernel where drainit ships (x86_64, aarch64):
/// musl's wrappers, its cancellation point and its errno setter are three
/// more pages of code on that path, cold each time a signal comes. They
/// fail as the C library's do: -1, with errno set.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod raw {
    /// The kernel's sigset_t: 64 signals, 8 bytes (the C library's is larger).
    const KERNEL_SIGSET_SIZE: usize = 8;

    /// rt_sigtimedwait(2), as sigtimedwait(3).
    ///
    /// # Safety
    /// As for sigtimedwait(3): `set` valid, `info` writable, `timeout` null or valid.
    pub unsafe fn sigtimedwait(
        set: *const libc::sigset_t,
        info: *mut libc::siginfo_t,
        timeout: *const libc::timespec,
    ) -> libc::c_int {
        // SAFETY: the caller's pointers, as the kernel reads and writes them.
        let rc = unsafe {
            syscall4(
                libc::SYS_rt_sigtimedwait,
                set as usize,
                info as usize,
                timeout as usize,
                KERNEL_SIGSET_SIZE,
            )
        };
        errno(rc)
    }

    /// kill(2).
    pub fn kill(pid: libc::pid_t, signal: libc::c_int) -> libc::c_int {
        // SAFETY: kill takes integers and touches no memory of ours.
        let rc = unsafe { syscall4(libc::SYS_kill, pid as usize, signal as usize, 0, 0) };
        errno(rc)
    }

    /// A raw result (-4095..-1 is -errno) as the C library returns it.
    fn errno(rc: isize) -> libc::c_int {
        if (-4095..0).contains(&rc) {
            // SAFETY: errno is the calling thread's, and always writable.
            unsafe { *libc::__errno_location() = -rc as libc::c_int };
            return -1;
        }
        rc as libc::c_int
    }

    #[cfg(target_arch = "x86_64")]
    unsafe fn syscall4(number: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
        let rc: isize;
        // SAFETY: the Linux x86_64 system call convention; the caller
        // answers for what the call does with its arguments.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") number as isize => rc,
                in("rdi") a,
                in("rsi") b,
                in("rdx") c,
                in("r10") d,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        rc
    }

    #[cfg(target_arch = "aarch64")]
    unsafe fn syscall4(number: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
        let rc: isize;
        // SAFETY: the Linux aarch64 system call convention; the caller
        // answers for what the call does with its arguments.
        unsafe {
            std::arch::asm!(
                "svc 0",
                in("x8") number,
                inlateout("x0") a as isize => rc,
                in("x1") b,
                in("x2") c,
                in("x3") d,
                options(nostack),
            );
        }
        rc
    }
}

/// Elsewhere, the C library's.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod raw {
    pub use libc::sigtimedwait;

    pub fn kill(pid: libc::pid_t, signal: libc::c_int) -> libc::c_int {
        // SAFETY: kill takes integers and touches no memory of ours.
        unsafe { libc::kill(pid, signal) }
    }
}

/// How the child is set up before it runs the app.
#[derive(Clone, Copy)]
pub struct Spawn {
    /// The terminal on stdin, if any: the child gets a new process group of
    /// drainit's session, rather than a session of its own, so that it keeps
    /// the terminal.
    pub terminal: Option<Terminal>,
    /// Signal the child gets when drainit dies.
    pub parent_death_signal: Option<Signal>,
    /// The mask and ignored signals to give back to the app.
    pub inherited: Inherited,
}

/// What the app does with the terminal on stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    /// Its process group becomes the terminal's foreground group, so that
    /// Ctrl-C and Ctrl-Z reach the app.
    Take,
    /// Leave the foreground group as it is: drainit runs in the background.
    Leave,
}

/// Starts `command` (program and arguments) as a child in a new session (so
/// a new process group) of its own, as dumb-init does, with the signal mask
/// and ignored signals drainit inherited. With a terminal to take, in a
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
    if how.terminal.is_some() {
        command.process_group(0);
    }
    let prepare = move || {
        match how.terminal {
            Some(Terminal::Take) => take_terminal(),
            Some(Terminal::Leave) => {}
            // SAFETY: setsid takes no argument. It cannot fail: a forked
            // child is not a process group leader.
            None => check(unsafe { libc::setsid() })?,
        }
        if let Some(signal) = how.parent_death_signal {
            set_parent_death_signal(signal, parent)?;
        }
        restore_inherited(&how.inherited)
    };
    // SAFETY: the closure runs in the forked child before exec and calls only
    // setsid, tcsetpgrp, prctl, getppid, kill, rt_sigaction and sigprocmask,
    // which are async-signal-safe; it allocates nothing.
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

/// Whether drainit's process group is the foreground group of the terminal
/// on stdin: only then may the app take the terminal. (SIGTTOU is blocked,
/// so a drainit started in the background with `&` would otherwise take the
/// terminal from the interactive shell.)
pub fn in_terminal_foreground() -> bool {
    // SAFETY: tcgetpgrp and getpgrp only take integers.
    unsafe { libc::tcgetpgrp(libc::STDIN_FILENO) == libc::getpgrp() }
}

/// Asks for `signal` when drainit's parent dies (tini's `-p`), and sends it
/// to drainit at once if the parent already died: drainit then handles it as
/// if the parent had sent it. The kernel drops this request when drainit
/// itself is a setuid program.
pub fn signal_me_when_my_parent_dies(signal: Signal) -> io::Result<()> {
    // SAFETY: getppid takes nothing.
    let parent = unsafe { libc::getppid() };
    set_parent_death_signal(signal, parent)
}

/// Leaves drainit's working directory for `/`, so that PID 1 never holds a
/// mount busy (dumb-init does the same). Call it after the app has started
/// in the caller's directory.
pub fn leave_working_directory() -> io::Result<()> {
    // SAFETY: the path is a valid C string.
    check(unsafe { libc::chdir(c"/".as_ptr()) })
}

/// Whether drainit can list its own children (`/proc/thread-self/children`):
/// not PID 1, that is how it finds what the app left outside its group.
pub fn can_list_children() -> io::Result<()> {
    std::fs::read_to_string("/proc/thread-self/children").map(|_| ())
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

/// In the child before exec: the ignored signals and the mask drainit
/// inherited, given back (see [`Inherited`]); every other disposition is
/// already as inherited, since drainit installs no handler. Async-signal-safe.
fn restore_inherited(inherited: &Inherited) -> io::Result<()> {
    if inherited.chld_ignored {
        set_action(libc::SIGCHLD, Some(libc::SIG_IGN))?;
    }
    let pipe = if inherited.pipe_ignored {
        libc::SIG_IGN
    } else {
        libc::SIG_DFL
    };
    set_action(libc::SIGPIPE, Some(pipe))?;
    // SAFETY: sigprocmask reads a valid sigset and is async-signal-safe.
    check(unsafe { libc::sigprocmask(libc::SIG_SETMASK, &inherited.mask, ptr::null_mut()) })
}

/// Sets signal `number`'s action to `handler` (SIG_DFL or SIG_IGN; `None`
/// only reads it) and returns the previous one. Through the raw system call:
/// glibc's sigaction refuses its reserved signals. Async-signal-safe.
fn set_action(
    number: libc::c_int,
    handler: Option<libc::sighandler_t>,
) -> io::Result<libc::sighandler_t> {
    // A kernel sigaction: the handler first, then flags, (restorer,) mask;
    // zero flags and an empty mask.
    let new = [handler.unwrap_or(0) as u64, 0, 0, 0];
    let mut old = [0u64; 4];
    let new_ptr = if handler.is_some() {
        new.as_ptr()
    } else {
        ptr::null()
    };
    // SAFETY: rt_sigaction reads a kernel sigaction from `new` (or nothing)
    // and writes the old one to `old`, both live and large enough; a raw
    // system call is async-signal-safe.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            number,
            new_ptr,
            old.as_mut_ptr(),
            std::mem::size_of::<u64>(),
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(old[0] as libc::sighandler_t)
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
    gone_is_fine(raw::kill(pid, signal.as_raw()))
}

/// Sends `signal` to every process of group `pgid`. A group that is already
/// gone (ESRCH) is not an error.
pub fn signal_group(pgid: i32, signal: Signal) -> io::Result<()> {
    gone_is_fine(raw::kill(-pgid, signal.as_raw()))
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

/// What drainit's stderr is, which says how to write to it without blocking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrKind {
    /// A pipe or FIFO (docker's and containerd's log drivers): it blocks once full.
    Pipe,
    /// A terminal (`docker run -t`): it blocks while output is stopped (Ctrl-S).
    Terminal,
    /// A socket (systemd's journal).
    Socket,
    /// A file, /dev/null: writes do not wait for a reader.
    Other,
}

/// What stderr is.
pub fn stderr_kind() -> StderrKind {
    let mut stat = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a stat to a live buffer of the right type.
    if unsafe { libc::fstat(libc::STDERR_FILENO, stat.as_mut_ptr()) } != 0 {
        return StderrKind::Other;
    }
    // SAFETY: fstat succeeded, so it filled the buffer.
    let mode = unsafe { stat.assume_init() }.st_mode & libc::S_IFMT;
    // SAFETY: isatty only takes a file descriptor number.
    let terminal = unsafe { libc::isatty(libc::STDERR_FILENO) } == 1;
    match mode {
        libc::S_IFIFO => StderrKind::Pipe,
        libc::S_IFSOCK => StderrKind::Socket,
        _ if terminal => StderrKind::Terminal,
        _ => StderrKind::Other,
    }
}

/// Opens stderr's pipe or terminal again, as a new open file description of
/// drainit's own, non-blocking and close-on-exec. Setting O_NONBLOCK on
/// descriptor 2 itself would reach the app, which shares that description.
/// Needs /proc (`/proc/self/fd/2`).
pub fn reopen_stderr_nonblocking() -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: the path is a valid C string; O_NOCTTY keeps a terminal from
    // becoming drainit's controlling terminal.
    let fd = unsafe {
        libc::open(
            c"/proc/self/fd/2".as_ptr(),
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor owned by nobody else.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// write(2) of `bytes` to `fd`, once: EAGAIN when a non-blocking descriptor is full.
pub fn write_once(fd: libc::c_int, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: bytes is live for its whole length.
    let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    usize::try_from(written).map_err(|_| io::Error::last_os_error())
}

/// send(2) of `bytes` to socket `fd` without waiting (MSG_DONTWAIT) and
/// without SIGPIPE (MSG_NOSIGNAL), whatever the socket's own flags.
pub fn send_now(fd: libc::c_int, bytes: &[u8]) -> io::Result<usize> {
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    // SAFETY: bytes is live for its whole length.
    let sent = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), flags) };
    usize::try_from(sent).map_err(|_| io::Error::last_os_error())
}

/// Whether `fd` can take a write now (poll(2) for POLLOUT, no wait).
pub fn writable_now(fd: libc::c_int) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: poll reads and writes one live pollfd.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready == 1 && poll.revents & libc::POLLOUT != 0
}

/// The CPU time the calling thread has used, user and kernel: what a
/// traffic sample costs, the kernel's sock_diag work included.
pub fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to; this clock always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
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
