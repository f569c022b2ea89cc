//! The loop: start the app, then wait for a signal or the next deadline, turn
//! what happened into [`Event`]s, and carry out the timeline's [`Action`]s.
//! It makes no decision about the shutdown; it only knows where signals go.

use std::ffi::OsString;
use std::io;
use std::time::Instant;

use log::{debug, error, log, warn};

use crate::activity::{Sampler, Seen};
use crate::config::{Config, Subreaper};
use crate::exit_code;
use crate::logger;
use crate::observed::{ChildStatus, Unmeasurable};
use crate::render::{self, Line, Reach};
use crate::signal::Signal;
use crate::sys::{self, Inherited, Reaped, Received, SignalSet, Spawn, Terminal};
use crate::timeline::{Action, Event, Timeline};

/// Where signals go: the app's process id (also its process group id), and
/// whether drainit is PID 1.
#[derive(Debug, Clone, Copy)]
struct Targets {
    app: i32,
    /// Forward to the app's main process only (`--no-group`).
    app_only: bool,
    pid1: bool,
}

/// What sending a signal came to: `Err(signal)` if the kernel refused it
/// (EPERM), for the timeline to know.
type Sent = Result<(), Signal>;

impl Targets {
    /// `Action::Forward`: the app's group, or its main process only.
    #[inline]
    fn forward(self, signal: Signal) -> Sent {
        let (result, whom) = if self.app_only {
            (sys::signal_process(self.app, signal), "app")
        } else {
            (sys::signal_group(self.app, signal), "app's group")
        };
        debug!("forwarding {signal} to the {whom} ({})", self.app);
        report(result, signal, format_args!("the {whom} ({})", self.app))
    }

    /// `Action::SignalAll`: the app's group and, as PID 1, every other
    /// process; not PID 1, drainit's own children (what the app left behind,
    /// re-parented to drainit the subreaper, in its group or not). With
    /// `--no-group` and not PID 1, the main process only.
    fn signal_all(self, signal: Signal) -> Sent {
        let reach = self.reach();
        if reach == Reach::App {
            return self.forward(signal);
        }
        let group = sys::signal_group(self.app, signal);
        let group = report(
            group,
            signal,
            format_args!("the app's group ({})", self.app),
        );
        let (everyone, whom) = if reach == Reach::Everyone {
            (sys::signal_every_process(signal), "every process")
        } else {
            (sys::signal_children(signal), "drainit's children")
        };
        group.and(report(everyone, signal, format_args!("{whom}")))
    }

    /// Whom [`Targets::signal_all`] reaches, for the words of the reports.
    fn reach(self) -> Reach {
        match (self.pid1, self.app_only) {
            (true, _) => Reach::Everyone,
            (false, false) => Reach::GroupAndChildren,
            (false, true) => Reach::App,
        }
    }
}

/// Logs a failed send; EPERM becomes `Err(signal)`.
#[inline]
fn report(result: io::Result<()>, signal: Signal, whom: std::fmt::Arguments) -> Sent {
    match result {
        Ok(()) => Ok(()),
        Err(e) => refused(e, signal, whom),
    }
}

/// The failure of [`report`], out of the forwarding path.
#[cold]
fn refused(e: io::Error, signal: Signal, whom: std::fmt::Arguments) -> Sent {
    error!("cannot send {signal} to {whom}: {e}");
    match e.raw_os_error() {
        Some(libc::EPERM) => Err(signal),
        _ => Ok(()),
    }
}

/// Runs the configured command to its end and returns drainit's exit code.
/// `signals` must already be blocked; `inherited` is what the app gets back.
pub fn run(config: &Config, signals: &SignalSet, inherited: Inherited) -> i32 {
    let pid1 = sys::is_pid1();
    let subreaper = match config.subreaper.value {
        Subreaper::Auto => !pid1,
        Subreaper::Always => true,
        Subreaper::Never => false,
    };
    if subreaper {
        if let Err(error) = sys::become_subreaper() {
            warn!("cannot become a child subreaper, orphans will not be reaped: {error}");
        }
    }
    if !pid1 {
        if let Err(error) = sys::can_list_children() {
            warn!(
                "cannot list drainit's children (/proc/thread-self/children: {error}): processes \
                 the app leaves outside its process group will get no signal from drainit"
            );
        }
    }
    if let Some(signal) = config.pdeathsig.value {
        if let Err(error) = sys::signal_me_when_my_parent_dies(signal) {
            warn!("cannot ask for {signal} when drainit's parent dies: {error}");
        }
    }
    let how = Spawn {
        terminal: match (sys::stdin_is_terminal(), sys::in_terminal_foreground()) {
            (false, _) => None,
            (true, true) => Some(Terminal::Take),
            (true, false) => Some(Terminal::Leave),
        },
        parent_death_signal: config.app_pdeathsig.value,
        inherited,
    };
    let app = match sys::spawn(&config.command, how) {
        Ok(pid) => pid,
        Err(error) => return refuse_to_start(&config.command, &error),
    };
    if let Err(error) = sys::leave_working_directory() {
        debug!("cannot change drainit's working directory to /: {error}");
    }
    debug!(
        "started {:?} as pid {app}, in a process group (and, without a terminal, a session) of its own",
        config.command
    );
    let targets = Targets {
        app,
        app_only: config.no_group.value,
        pid1,
    };
    let mut timeline = Timeline::new(config.plan(pid1), Instant::now());
    let sampler = Sampler::new(config.watch());
    match serve(targets, signals, &mut timeline, sampler) {
        Ok(code) => code,
        Err(error) => {
            // drainit cannot go on; it must not leave the app running behind it.
            logger::say(format_args!("{error}; killing the app"));
            let _ = targets.signal_all(Signal::KILL);
            exit_code::FAILURE
        }
    }
}

/// The event loop, until the timeline says to exit.
///
/// A function of its own, with what is rare (reaping, samples, reports) out
/// of line: the path from a signal's arrival to its forwarding then runs
/// through fewer, contiguous cache lines (25 rather than 30, measured with
/// gdb's stepi) instead of hopping through `run`'s 23 KB, and the
/// forwarding latency pays for every cold line and page it touches.
#[inline(never)]
fn serve(
    targets: Targets,
    signals: &SignalSet,
    timeline: &mut Timeline,
    mut sampler: Sampler,
) -> io::Result<i32> {
    loop {
        let timeout = timeline
            .next_deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        let event = match sys::wait_for_signal(signals, timeout)
            .map_err(|e| context(e, "waiting for signals"))?
        {
            Some(Received {
                signal: Signal::CHLD,
                ..
            }) => reap(targets.app)?,
            // The kernel's SIGPIPE for a write of drainit's own: not the app's business.
            Some(Received {
                by_drainit: true, ..
            }) => continue,
            Some(Received { signal, .. }) => Event::Signal(signal),
            None => Event::Timeout,
        };
        timeline.handle_with(event, Instant::now);
        while let Some(action) = timeline.poll_action() {
            let sent = match action {
                Action::Forward(signal) => targets.forward(signal),
                Action::SignalAll(signal) => targets.signal_all(signal),
                Action::Sample => {
                    let sample = sample(&mut sampler).map_err(Unmeasurable);
                    timeline.handle(Event::Activity(sample), Instant::now());
                    Ok(())
                }
                Action::Report(report) => {
                    tell(&report, timeline, targets);
                    Ok(())
                }
                Action::Exit(code) => return Ok(code),
            };
            if let Err(signal) = sent {
                timeline.handle(Event::NotPermitted(signal), Instant::now());
            }
        }
    }
}

/// Logs a report of the timeline's, in words.
#[inline(never)]
fn tell(report: &crate::timeline::Report, timeline: &Timeline, targets: Targets) {
    let context = render::Context {
        plan: timeline.plan(),
        reach: targets.reach(),
    };
    // Formatted only if the level is on.
    log!(render::level(report), "{}", Line { report, context });
}

/// A traffic sample for the timeline, described at debug level.
#[inline(never)]
fn sample(sampler: &mut Sampler) -> Result<Seen, String> {
    let (seen, snapshot) = sampler.sample()?;
    if log::log_enabled!(log::Level::Debug) {
        let active: Vec<String> = seen
            .ports
            .iter()
            .filter(|(_, active)| *active)
            .map(|(port, _)| port.to_string())
            .collect();
        debug!(
            "traffic sample: {} connections to watched ports; traffic on port(s) [{}], {} \
             connection(s) too brief to tell their port",
            snapshot.connections(),
            active.join(","),
            seen.unplaced
        );
    }
    Ok(seen)
}

/// Reaps every child that has exited (SIGCHLDs coalesce, so one may stand
/// for many), noting the main child's status if it was among them.
#[inline(never)]
fn reap(app: i32) -> io::Result<Event> {
    let mut app_status: Option<ChildStatus> = None;
    loop {
        match sys::reap_one().map_err(|e| context(e, "reaping children"))? {
            Reaped::Child(pid, status) if pid == app => app_status = Some(status),
            Reaped::Child(pid, status) => debug!("reaped pid {pid}: {}", status.ending()),
            // Running: children remain, none has exited; None: none remain.
            last => {
                return Ok(Event::Reaped {
                    app: app_status,
                    children_left: last == Reaped::Running,
                })
            }
        }
    }
}

/// The exit code and message when the command cannot be started.
fn refuse_to_start(command: &[OsString], error: &io::Error) -> i32 {
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
