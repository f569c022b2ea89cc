//! `drainit [OPTIONS] [--] COMMAND [ARGS]...`: see the README.
#![no_main]

use std::ffi::{c_char, c_int};
use std::io::Write;
use std::process::exit;

use drainit::config::{Config, Request};
use drainit::{cli, exit_code, logger, runtime, sys};

/// The C entry point rather than Rust's `fn main`: std's start-up would read
/// /proc/self/maps to find the main thread's stack guard and map an alternate
/// signal stack, a third of drainit's start-up work, for a program that never
/// recurses. What else std's start-up does, drainit does itself: open
/// /dev/null on a closed stdin, stdout or stderr, and ignore SIGPIPE.
#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // First of all: a SIGTERM that came before this would be lost or fatal.
    let signals = match sys::block_signals() {
        Ok(signals) => signals,
        Err(error) => {
            logger::say(format_args!("cannot block signals: {error}"));
            exit(exit_code::FAILURE);
        }
    };
    if let Err(error) = sys::standard_start() {
        logger::say(format_args!("cannot set up stdio and SIGPIPE: {error}"));
        exit(exit_code::FAILURE);
    }
    // SAFETY: the C runtime passes main `argc` valid C strings in `argv`.
    let args = unsafe { sys::args(argc, argv) };
    let config = match Config::from_process(args) {
        Ok(Request::Run(config)) => config,
        Ok(Request::Help) => print_and_exit(&cli::help()),
        Ok(Request::Version) => print_and_exit(&format!("drainit {}\n", env!("CARGO_PKG_VERSION"))),
        Err(error) => {
            logger::say(format_args!("{error}"));
            exit(exit_code::USAGE);
        }
    };
    if config.check {
        print_and_exit(&config.describe());
    }
    logger::init(config.log_level.value);
    exit(runtime::run(&config, &signals));
}

/// For `--help`, `--version` and `--check`. A closed stdout is no reason to
/// fail (a build step that runs `--check` only needs the exit code).
fn print_and_exit(text: &str) -> ! {
    let _ = std::io::stdout().write_all(text.as_bytes());
    exit(0)
}
