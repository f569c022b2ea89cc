//! `drainit [OPTIONS] [--] COMMAND [ARGS]...`: see the README.
#![no_main]

use std::ffi::OsString;
use std::io::Write;
use std::process::exit;

use drainit::config::{Config, Request};
use drainit::{cli, exit_code, logger, runtime, sys};

// The C `main`, rather than Rust's `fn main`: see `sys::entry_point`.
drainit::entry_point!(start);

/// Everything drainit does, from its arguments (the program name first).
fn start(args: Vec<OsString>) -> ! {
    // First of all: a SIGTERM that came before this would be lost or fatal.
    let (signals, inherited) = match sys::block_signals() {
        Ok(blocked) => blocked,
        Err(error) => {
            logger::say(format_args!("cannot block signals: {error}"));
            exit(exit_code::FAILURE);
        }
    };
    if let Err(error) = sys::standard_start() {
        logger::say(format_args!("cannot set up stdio: {error}"));
        exit(exit_code::FAILURE);
    }
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
    exit(runtime::run(&config, &signals, inherited));
}

/// For `--help`, `--version` and `--check`. A closed stdout is no reason to
/// fail (a build step that runs `--check` only needs the exit code).
fn print_and_exit(text: &str) -> ! {
    let _ = std::io::stdout().write_all(text.as_bytes());
    exit(0)
}
