//! A tiny app for the container tests, built by `tests/containers.rs` with
//! plain `rustc` as a static binary (no crates, no libc crate: the few libc
//! functions it needs are declared below), so that it runs in a rootfs that
//! holds only busybox, drainit and itself.
//!
//! `stamp LOG [--ignore SIG]... [--exit CODE]` appends `<CLOCK_MONOTONIC ns>
//! app <what>` lines to LOG, the format of `tests/common/recorder.py`: `ready
//! pid=P` at start, then the name of every signal it gets. TERM, INT and QUIT
//! end it with exit code CODE (default 0) unless ignored. The container shares
//! the host's monotonic clock (no time namespace), so the test compares these
//! instants with its own.

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_long};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

#[repr(C)]
struct Timespec {
    tv_sec: c_long,
    tv_nsec: c_long,
}

extern "C" {
    fn clock_gettime(clock: c_int, ts: *mut Timespec) -> c_int;
    fn open(path: *const c_char, flags: c_int, mode: c_int) -> c_int;
    fn write(fd: c_int, buf: *const u8, len: usize) -> isize;
    fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
    fn pause() -> c_int;
    fn getpid() -> c_int;
    fn _exit(code: c_int) -> !;
}

const CLOCK_MONOTONIC: c_int = 1;
const O_WRONLY: c_int = 0o1;
const O_CREAT: c_int = 0o100;
const O_APPEND: c_int = 0o2000;

const SIGNALS: [(c_int, &str); 8] = [
    (1, "HUP"),
    (2, "INT"),
    (3, "QUIT"),
    (10, "USR1"),
    (12, "USR2"),
    (15, "TERM"),
    (28, "WINCH"),
    (18, "CONT"),
];

static LOG: AtomicI32 = AtomicI32::new(-1);
static EXIT: AtomicI32 = AtomicI32::new(0);
/// Bit N set: signal N is recorded but does not end the app.
static IGNORE: AtomicU32 = AtomicU32::new(0);

/// Writes one line with no allocation, so that it is safe in a signal handler.
fn record(what: &[u8]) {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) };
    let mut ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    let mut line = [0u8; 128];
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (ns % 10) as u8;
        n += 1;
        ns /= 10;
        if ns == 0 {
            break;
        }
    }
    let mut len = 0;
    for i in (0..n).rev() {
        line[len] = digits[i];
        len += 1;
    }
    for &b in b" app ".iter().chain(what).chain(b"\n") {
        if len < line.len() {
            line[len] = b;
            len += 1;
        }
    }
    // SAFETY: line holds len initialised bytes.
    unsafe { write(LOG.load(Ordering::SeqCst), line.as_ptr(), len) };
}

extern "C" fn on_signal(number: c_int) {
    let name = SIGNALS
        .iter()
        .find(|(n, _)| *n == number)
        .map_or("?", |(_, name)| name);
    record(name.as_bytes());
    if matches!(number, 2 | 3 | 15) && IGNORE.load(Ordering::SeqCst) & (1 << number) == 0 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { _exit(EXIT.load(Ordering::SeqCst)) };
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = CString::new(
        args.next()
            .expect("usage: stamp LOG [--ignore SIG] [--exit CODE]"),
    )
    .unwrap();
    while let Some(arg) = args.next() {
        let value = args.next().expect("option without a value");
        match arg.as_str() {
            "--ignore" => {
                let (number, _) = SIGNALS
                    .iter()
                    .find(|(_, name)| *name == value)
                    .expect("unknown signal");
                IGNORE.fetch_or(1 << number, Ordering::SeqCst);
            }
            "--exit" => EXIT.store(value.parse().expect("bad exit code"), Ordering::SeqCst),
            _ => panic!("unknown option {arg}"),
        }
    }
    // SAFETY: path is a valid C string.
    let fd = unsafe { open(path.as_ptr(), O_WRONLY | O_CREAT | O_APPEND, 0o644) };
    assert!(fd >= 0, "cannot open the log");
    LOG.store(fd, Ordering::SeqCst);
    for (number, _) in SIGNALS {
        // SAFETY: on_signal only does async-signal-safe work.
        unsafe { signal(number, on_signal) };
    }
    // SAFETY: getpid has no preconditions.
    let ready = format!("ready pid={}", unsafe { getpid() });
    record(ready.as_bytes());
    loop {
        // SAFETY: pause has no preconditions.
        unsafe { pause() };
    }
}
