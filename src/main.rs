//! `drainit [OPTIONS] [--] COMMAND [ARGS]...`: see the README.

use std::process::exit;

use drainit::config::{Config, ConfigError};
use drainit::{exit_code, logger, runtime, sys};

fn main() {
    // First of all: a SIGTERM that came before this would be lost or fatal.
    let signals = match sys::block_signals() {
        Ok(signals) => signals,
        Err(error) => {
            logger::say(format_args!("cannot block signals: {error}"));
            exit(exit_code::FAILURE);
        }
    };
    let config = match Config::from_process() {
        Ok(config) => config,
        Err(ConfigError::Usage(error)) => error.exit(),
        Err(ConfigError::Invalid(message)) => {
            logger::say(format_args!("{message}"));
            exit(exit_code::USAGE);
        }
    };
    if config.check {
        // Best effort: a closed stdout is no reason to fail a build step.
        let _ = std::io::Write::write_all(&mut std::io::stdout(), config.describe().as_bytes());
        exit(0);
    }
    logger::init(config.log_level.value);
    exit(runtime::run(&config, &signals));
}
