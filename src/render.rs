//! The words of every line drainit logs about its timeline, and how loud
//! each one is: the timeline decides that something is reported and with
//! which facts ([`Report`]); this module alone says it. `--check` describes
//! the plan with the same words as the drain's first line.
//!
//! A [`Line`] formats only when it is written, so a report whose level is
//! off costs no formatting.

use std::fmt::{self, Display, Formatter};

use log::Level;

use crate::duration::{Human, Seconds};
use crate::timeline::{Deadline, Milestone, Plan, Report, StopReason, Summary};

/// Whom drainit's last signals ([`crate::timeline::Action::SignalAll`])
/// reach: the runtime knows, and the words must say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// As PID 1: the app's group and every other process of the container.
    Everyone,
    /// Not PID 1: the app's group and drainit's own children (what the app
    /// left behind, re-parented to drainit the subreaper).
    GroupAndChildren,
    /// `--no-group` and not PID 1: the app's main process only.
    App,
}

impl Display for Reach {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reach::Everyone => "the app's group and every other process",
            Reach::GroupAndChildren => "the app's group and drainit's children",
            Reach::App => "the app",
        })
    }
}

/// What the words need besides the report: the plan and whom signals reach.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The plan the timeline follows.
    pub plan: &'a Plan,
    /// Whom the last signals reach.
    pub reach: Reach,
}

/// How loud a report is.
pub fn level(report: &Report) -> Level {
    match report {
        Report::GaveUp { .. } => Level::Error,
        Report::Killing { .. }
        | Report::LeftoversKilling { .. }
        | Report::NotReaped
        | Report::TrafficUnmeasurable { .. } => Level::Warn,
        Report::Dropped { .. } | Report::Rewritten { .. } | Report::NotForwarded { .. } => {
            Level::Debug
        }
        Report::DrainStarted { .. }
        | Report::Stopping { .. }
        | Report::RepeatedDuringDrain { .. }
        | Report::StoppingAgain { .. }
        | Report::Interrupted { .. }
        | Report::LeftoversStopping { .. }
        | Report::Exit { .. } => Level::Info,
    }
}

/// A report in words, formatted when written.
pub struct Line<'a> {
    /// What to say.
    pub report: &'a Report,
    /// With what it needs.
    pub context: Context<'a>,
}

// Words that tests look for, and must be sure were not said: exported, so
// that such a test fails if the wording changes rather than passing silently.

/// The warning that what got SIGKILL was not all reaped.
pub const NOT_REAPED: &str = "some killed processes were not reaped in time; exiting anyway";
/// In the line of a stop request repeated during the drain.
pub const DRAIN_GOES_ON: &str = "the drain goes on (SIGINT stops the app at once)";
/// In the line of an app that exited and left processes running.
pub const LEFT_PROCESSES: &str = "but left processes running";
/// In every line that announces a SIGKILL.
pub const SENDING_SIGKILL: &str = "sending SIGKILL";

/// `+5.00s`: an instant of the timeline.
struct At(std::time::Duration);

impl Display for At {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "+{}s", Seconds(self.0))
    }
}

/// The plan after a stop request, as the drain's first line and `--check` say it:
/// `draining for 5s while the app keeps serving; SIGTERM to the app at +5s,
/// SIGKILL at +28s (grace 30s − margin 2s) if anything is still running`.
pub struct PlanText<'a>(pub &'a Plan);

impl Display for PlanText<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let plan = self.0;
        let (drain, stop) = (Human(plan.drain), plan.stop_signal);
        if plan.drain.is_zero() {
            write!(f, "no drain; ")?;
        } else if let Some(adaptive) = plan.adaptive {
            write!(
                f,
                "draining while the app keeps serving, until its TCP listeners have had no \
                 traffic for {} (at least {}, at most {drain}); then {stop} to the app, ",
                Human(adaptive.quiet),
                Human(adaptive.min),
            )?;
        } else {
            write!(
                f,
                "draining for {drain} while the app keeps serving; {stop} to the app at +{drain}, "
            )?;
        }
        write!(
            f,
            "SIGKILL at +{} (grace {} − margin {}) if anything is still running",
            Human(plan.kill_after()),
            Human(plan.grace),
            Human(plan.kill_margin)
        )
    }
}

impl Display for Line<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Context { plan, reach } = self.context;
        let stop = plan.stop_signal;
        match self.report {
            Report::DrainStarted { signal } => write!(f, "{signal}: {}", PlanText(plan)),
            Report::Stopping { why, at } => {
                match why {
                    StopReason::NoDrain => write!(f, "stopping")?,
                    StopReason::DrainOver => write!(f, "drain over")?,
                    StopReason::TrafficNeverStopped {
                        active,
                        samples,
                        by_port,
                    } => write!(
                        f,
                        "drain reached its maximum of {}, traffic never stopped \
                         ({active} of {samples} samples saw some; {by_port})",
                        Human(plan.drain)
                    )?,
                    StopReason::TrafficStopped {
                        active,
                        samples,
                        last_active,
                        by_port,
                    } => write!(
                        f,
                        "drain over after {}: no new connection and no byte received for {} \
                         ({active} of {samples} samples saw traffic, the last at {}; {by_port})",
                        At(*at),
                        Human(plan.adaptive.map(|a| a.quiet).unwrap_or_default()),
                        At(*last_active)
                    )?,
                }
                write!(f, ": sending {stop} to the app at {}", At(*at))
            }
            Report::RepeatedDuringDrain { signal, at } => {
                write!(f, "{signal} again at {}: {DRAIN_GOES_ON}", At(*at))
            }
            Report::StoppingAgain { signal } => {
                write!(f, "{signal} again: sending {stop} to the app again")
            }
            Report::Interrupted { forward, at } => write!(
                f,
                "SIGINT at {}: forwarding {forward} to the app now, drain cut short",
                At(*at)
            ),
            Report::Killing { at } => write!(
                f,
                "app still running at {}, {} before the platform's deadline: {SENDING_SIGKILL} to \
                 {reach}",
                At(*at),
                Human(plan.kill_margin)
            ),
            Report::LeftoversStopping { app, at, kill_in } => write!(
                f,
                "{app} at {} {LEFT_PROCESSES}: sending {stop} to {reach}, SIGKILL in {} if they \
                 are still running",
                At(*at),
                Human(*kill_in)
            ),
            Report::LeftoversKilling { at } => write!(
                f,
                "processes left by the app still running at {}: {SENDING_SIGKILL}",
                At(*at)
            ),
            Report::NotReaped => f.write_str(NOT_REAPED),
            Report::GaveUp { not_permitted } => {
                write!(
                    f,
                    "the app was not reaped {} after SIGKILL (",
                    Human(plan.kill_margin / 2)
                )?;
                match not_permitted {
                    Some(signal) => write!(f, "{signal} was not permitted")?,
                    None => write!(f, "it may be stuck in the kernel")?,
                }
                write!(f, "); exiting before the platform's deadline")
            }
            Report::TrafficUnmeasurable { why } => write!(
                f,
                "cannot measure the app's traffic ({why}): keeping the fixed drain of {}",
                Human(plan.drain)
            ),
            Report::Dropped { signal } => write!(f, "{signal} dropped (rewritten to 0)"),
            Report::Rewritten { from, to } => write!(f, "{from} rewritten to {to}"),
            Report::NotForwarded { signal } => {
                write!(f, "{signal} not forwarded: everything is being killed")
            }
            Report::Exit {
                code,
                counted_as_success,
                summary,
            } => {
                write!(f, "exit {code}")?;
                if let Some(own) = counted_as_success {
                    write!(f, " ({own} counts as success)")?;
                }
                f.write_str(": ")?;
                self.summary(f, summary)
            }
        }
    }
}

impl Line<'_> {
    fn summary(&self, f: &mut Formatter<'_>, summary: &Summary) -> fmt::Result {
        match summary {
            Summary::AppEnded { app, after } => {
                write!(f, "{app} after {}s; no SIGTERM received", Seconds(*after))
            }
            Summary::Unrequested(milestones) => {
                self.milestones(f, milestones)?;
                f.write_str("; no SIGTERM received")
            }
            Summary::Requested {
                milestones,
                deadline,
            } => {
                self.milestones(f, milestones)?;
                match deadline {
                    Deadline::Before(left) => {
                        write!(f, ", {}s before the deadline", Seconds(*left))
                    }
                    Deadline::After(late) => write!(f, ", {}s after the deadline", Seconds(*late)),
                }
            }
        }
    }

    fn milestones(&self, f: &mut Formatter<'_>, milestones: &[Milestone]) -> fmt::Result {
        for (i, milestone) in milestones.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match *milestone {
                Milestone::StopRequested(signal) => write!(f, "{signal} at +0s")?,
                Milestone::Stopped(signal, at) => write!(f, "{signal} to app at {}", At(at))?,
                Milestone::StoppedAgain(signal, at) => write!(f, "{signal} again at {}", At(at))?,
                Milestone::Interrupted(at) => write!(f, "SIGINT at {} ended the drain", At(at))?,
                Milestone::Killed(at) => {
                    write!(f, "SIGKILL to {} at {}", self.context.reach, At(at))?
                }
                Milestone::AppEnded(app, at) => write!(f, "{app} at {}", At(at))?,
                Milestone::LeftoversStopped(signal, at) => {
                    write!(f, "{signal} to leftovers at {}", At(at))?
                }
                Milestone::LeftoversKilled(at) => write!(f, "SIGKILL to leftovers at {}", At(at))?,
                Milestone::LeftoversGone(at) => write!(f, "leftovers gone at {}", At(at))?,
                Milestone::NotPermitted(signal, at) => {
                    write!(f, "{signal} not permitted at {}", At(at))?
                }
                Milestone::GaveUp(at) => write!(f, "gave up at {}", At(at))?,
            }
        }
        Ok(())
    }
}

/// The whole of a report as the log shows it, for tests: `render(&report, context)`.
pub fn render(report: &Report, context: Context) -> String {
    Line { report, context }.to_string()
}
