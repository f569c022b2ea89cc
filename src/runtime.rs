//! The loop: start the app, then wait for a signal or the next deadline, turn
//! what happened into [`Event`]s, and carry out the timeline's [`Action`]s.
//! It makes no decision of its own.

use std::io;
use std::time::Instant;

use log::{debug, error, log, warn};

use crate::config::Config;
use crate::exit_code;
use crate::logger;
use crate::signal::Signal;
use crate::sys::{self, SignalSet};
use crate::timeline::{Action, ChildStatus, Event, Timeline};

/// Runs the configured command to its end and returns drainit's exit code.
/// `signals` must already be blocked.
pub fn run(config: &Config, signals: &SignalSet) -> i32 {
    let pid1 = sys::is_pid1();
    if !pid1 {
        if let Err(error) = sys::become_subreaper() {
            warn!("cannot become a child subreaper, orphans will not be reaped: {error}");
        }
    }
    let app = match sys::spawn(&config.command) {
        Ok(pid) => pid,
        Err(error) => return refuse_to_start(&config.command, &error),
    };
    debug!(
        "started {:?} as pid {app}, in its own process group",
        config.command
    );
    let mut timeline = Timeline::new(config.plan(pid1), Instant::now());
    match serve(app, pid1, signals, &mut timeline) {
        Ok(code) => code,
        Err(error) => {
            // drainit cannot go on; it must not leave the app running behind it.
            logger::say(format_args!("{error}; killing the app"));
            let _ = sys::signal_group(app, Signal::KILL);
            if pid1 {
                let _ = sys::kill_every_process();
            }
            exit_code::FAILURE
        }
    }
}

/// The event loop, until the timeline says to exit.
fn serve(app: i32, pid1: bool, signals: &SignalSet, timeline: &mut Timeline) -> io::Result<i32> {
    loop {
        let timeout = timeline
            .next_deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        let event = match sys::wait_for_signal(signals, timeout)
            .map_err(|e| context(e, "waiting for signals"))?
        {
            Some(Signal::CHLD) => match reap(app)? {
                Some(status) => Event::ChildExited(status),
                None => Event::Timeout,
            },
            Some(signal) => Event::Signal(signal),
            None => Event::Timeout,
        };
        for action in timeline.handle(event, Instant::now()) {
            match action {
                Action::Forward(signal) => {
                    if let Err(e) = sys::signal_group(app, signal) {
                        error!("cannot send {signal} to the app's group {app}: {e}");
                    }
                }
                Action::KillAll => {
                    if let Err(e) = sys::signal_group(app, Signal::KILL) {
                        error!("cannot send SIGKILL to the app's group {app}: {e}");
                    }
                    if pid1 {
                        if let Err(e) = sys::kill_every_process() {
                            error!("cannot send SIGKILL to every process: {e}");
                        }
                    }
                }
                Action::Log(level, message) => log!(level, "{message}"),
                Action::Exit(code) => return Ok(code),
            }
        }
    }
}

/// Reaps every child that has exited (SIGCHLDs coalesce, so one may stand
/// for many) and returns the main child's status if it was among them.
fn reap(app: i32) -> io::Result<Option<ChildStatus>> {
    let mut app_status = None;
    while let Some((pid, status)) = sys::reap_one().map_err(|e| context(e, "reaping children"))? {
        if pid == app {
            app_status = Some(status);
        } else {
            debug!("reaped pid {pid}: {status:?}");
        }
    }
    Ok(app_status)
}

/// The exit code and message when the command cannot be started.
fn refuse_to_start(command: &[std::ffi::OsString], error: &io::Error) -> i32 {
    let program = command
        .first()
        .map(|p| p.to_string_lossy())
        .unwrap_or_default();
    logger::say(format_args!("cannot run {program:?}: {error}"));
    match error.raw_os_error() {
        Some(libc::ENOENT) => exit_code::NOT_FOUND,
        Some(libc::EACCES) | Some(libc::ENOEXEC) | Some(libc::EISDIR) | Some(libc::ENOTDIR) => {
            exit_code::NOT_EXECUTABLE
        }
        _ => exit_code::FAILURE,
    }
}

fn context(error: io::Error, doing: &str) -> io::Error {
    io::Error::new(error.kind(), format!("failed {doing}: {error}"))
}
