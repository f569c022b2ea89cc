//! drainit's log lines on stderr, `drainit: ` first, one write per line,
//! never waiting for the reader.
//!
//! A few lines instead of env_logger: drainit logs a handful of lines per
//! shutdown and needs neither filters by module nor timestamps (the container
//! runtime adds those), and every kilobyte counts in a binary copied into
//! every image.
//!
//! stderr may be a full pipe that nobody reads (Docker's blocking log mode, a
//! stuck log driver, Ctrl-S on `docker run -t`): a write that waits there
//! would hold the event loop and move every deadline. So a line that does
//! not fit now is dropped and counted, and the next line that fits says how
//! many were dropped.

use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::sys::{self, StderrKind};

struct Stderr;

static LOGGER: Stderr = Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            let prefix = match record.level() {
                Level::Error => "error: ",
                Level::Warn => "warning: ",
                _ => "",
            };
            say(format_args!("{prefix}{}", record.args()));
        }
    }

    fn flush(&self) {}
}

/// Routes the `log` macros to stderr at `level`.
pub fn init(level: LevelFilter) {
    // Fails only if a logger is already set, which changes nothing here.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// The longest line written: a pipe takes a write of up to PIPE_BUF bytes
/// whole or not at all, so lines from drainit and the app never interleave.
const LONGEST_LINE: usize = 4096;

/// Lines dropped since the last one written.
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// Writes `drainit: <message>` to stderr whatever the log level, without
/// waiting: for the one line that explains drainit's own non-zero exit too.
/// Never panics, even with stderr closed (unlike `eprintln!`).
pub fn say(message: std::fmt::Arguments) {
    let dropped = DROPPED.load(Ordering::Relaxed);
    let mut line = String::with_capacity(128);
    if dropped > 0 {
        let _ = writeln!(
            line,
            "drainit: {dropped} log line{} dropped: stderr was full",
            if dropped == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(line, "drainit: {message}");
    if line.len() > LONGEST_LINE {
        let mut end = LONGEST_LINE - 4;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push_str("...\n");
    }
    match sink().write(line.as_bytes()) {
        Ok(_) => DROPPED.store(0, Ordering::Relaxed),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        // A closed stderr: nobody to tell.
        Err(_) => {}
    }
}

/// How lines reach stderr without waiting, chosen at the first line.
enum Sink {
    /// A pipe or terminal opened again as a non-blocking description of drainit's own.
    Own(OwnedFd),
    /// A socket: each send says not to wait.
    Socket,
    /// A pipe or terminal that cannot be opened again (no /proc): written only
    /// when poll says it has room. The app may fill it in between, so a write
    /// can still wait there, rarely.
    Polled,
    /// A file or /dev/null: writes never wait for a reader.
    Direct,
}

fn sink() -> &'static Sink {
    static SINK: OnceLock<Sink> = OnceLock::new();
    SINK.get_or_init(|| match sys::stderr_kind() {
        StderrKind::Pipe | StderrKind::Terminal => match sys::reopen_stderr_nonblocking() {
            Ok(fd) => Sink::Own(fd),
            Err(_) => Sink::Polled,
        },
        StderrKind::Socket => Sink::Socket,
        StderrKind::Other => Sink::Direct,
    })
}

impl Sink {
    fn write(&self, line: &[u8]) -> io::Result<usize> {
        const STDERR: i32 = 2;
        match self {
            Sink::Own(fd) => sys::write_once(fd.as_raw_fd(), line),
            Sink::Socket => sys::send_now(STDERR, line),
            Sink::Polled if !sys::writable_now(STDERR) => Err(io::ErrorKind::WouldBlock.into()),
            Sink::Polled | Sink::Direct => sys::write_once(STDERR, line),
        }
    }
}
