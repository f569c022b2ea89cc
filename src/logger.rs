//! drainit's log lines on stderr, `drainit: ` first, one write per line.
//!
//! A few lines instead of env_logger: drainit logs a handful of lines per
//! shutdown and needs neither filters by module nor timestamps (the container
//! runtime adds those), and every kilobyte counts in a binary copied into
//! every image.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

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

/// Writes `drainit: <message>` to stderr whatever the log level: for the one
/// line that explains drainit's own non-zero exit. Never panics, even with
/// stderr closed (unlike `eprintln!`).
pub fn say(message: std::fmt::Arguments) {
    // One buffer, one write(2): lines from drainit and the app do not interleave mid-line.
    let line = format!("drainit: {message}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}
