//! Processes as the host's /proc shows them: what the tests check of
//! drainit and its apps from outside (parents, states, signal sets,
//! descriptors, namespaces).

use std::fs;
use std::path::{Path, PathBuf};

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

/// Children of `parent`.
pub fn children(parent: i32) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|p| p.ppid == parent)
        .map(|p| p.pid)
        .collect()
}

/// Zombies whose parent is `parent`.
pub fn zombies_of(parent: i32) -> usize {
    processes()
        .iter()
        .filter(|p| p.ppid == parent && p.state == 'Z')
        .count()
}

/// The file /proc/PID/exe points to.
pub fn exe(pid: i32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// A line of /proc/PID/status, e.g. `status_field(pid, "SigIgn")`, without the name.
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// Voluntary plus involuntary context switches of `pid`.
pub fn context_switches(pid: i32) -> u64 {
    ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"]
        .iter()
        .map(|field| {
            status_field(pid, field)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {field} for pid {pid}"))
        })
        .sum()
}

/// A signal set of /proc/PID/status (`SigIgn`, `SigBlk`, `SigCgt`, ...) as a mask.
pub fn sigset(pid: i32, field: &str) -> u64 {
    let hex = status_field(pid, field).unwrap_or_else(|| panic!("no {field} for pid {pid}"));
    u64::from_str_radix(&hex, 16).unwrap()
}

/// Signal `signal`'s bit in a /proc signal set.
pub fn bit(signal: i32) -> u64 {
    1 << (signal - 1)
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

/// kill(2): `signal` to `pid` (a process; never a group, never -1).
pub fn kill(pid: i32, signal: i32) -> std::io::Result<()> {
    assert!(pid > 1, "refusing to signal pid {pid}");
    // SAFETY: kill has no memory-safety preconditions.
    match unsafe { libc::kill(pid, signal) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// A pipe: (read end, write end), both close-on-exec.
pub fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into a live array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors are fresh and owned by nobody else.
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

/// How many bytes the pipe of `fd` holds when full.
pub fn pipe_capacity(fd: &std::os::fd::OwnedFd) -> usize {
    use std::os::fd::AsRawFd;
    // SAFETY: F_GETPIPE_SZ only reads the pipe's capacity.
    let capacity = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) };
    usize::try_from(capacity).expect("not a pipe")
}

/// Everything the pipe's read end `read` holds now, without waiting.
pub fn read_available(read: &std::os::fd::OwnedFd) -> String {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    // SAFETY: F_SETFL on a descriptor the test owns; only the test reads this end.
    unsafe { libc::fcntl(read.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut file = fs::File::from(read.try_clone().unwrap());
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}
