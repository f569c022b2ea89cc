//! The shutdown timeline: every decision drainit makes, as a pure state machine.
//!
//! The runtime feeds it [`Event`]s with the instant they were seen and carries
//! out the [`Action`]s it returns; between events it sleeps until
//! [`Timeline::next_deadline`]. Nothing here makes a system call or reads a
//! clock, so tests drive it on virtual time (the same split as quinn-proto and
//! quinn).
//!
//! ```text
//! t0: first SIGTERM ── drain ──▶ stop signal to the group ──▶ SIGKILL at t0 + grace − margin
//!                      (app keeps serving)                     (if anything is still alive)
//! ```

use std::time::{Duration, Instant};

use log::Level;

use crate::duration::Human;
use crate::signal::Signal;

/// The shutdown the user configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// How long the app keeps serving after SIGTERM.
    pub drain: Duration,
    /// The time the platform allows from SIGTERM to its own SIGKILL.
    pub grace: Duration,
    /// How long before the platform's SIGKILL drainit sends its own.
    pub kill_margin: Duration,
    /// What the app's group gets when the drain ends.
    pub stop_signal: Signal,
    /// drainit is PID 1, so its SIGKILL also reaches processes that left the group.
    pub kill_everyone: bool,
}

impl Plan {
    /// When, after the first SIGTERM, drainit sends SIGKILL. Config ensures
    /// `drain < kill_after`.
    pub fn kill_after(&self) -> Duration {
        self.grace.saturating_sub(self.kill_margin)
    }
}

/// How the main child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStatus {
    Exited(i32),
    Killed(Signal),
}

impl ChildStatus {
    /// drainit's exit code: the child's own, or 128 + N for death by signal N, as a shell reports it.
    pub fn exit_code(self) -> i32 {
        match self {
            ChildStatus::Exited(code) => code,
            ChildStatus::Killed(signal) => 128 + signal.as_raw(),
        }
    }
}

impl std::fmt::Display for ChildStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildStatus::Exited(code) => write!(f, "app exited {code}"),
            ChildStatus::Killed(signal) => write!(f, "app killed by {signal}"),
        }
    }
}

/// Something the runtime saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// drainit received a signal (never SIGCHLD: the runtime turns that into reaping).
    Signal(Signal),
    /// The main child is gone.
    ChildExited(ChildStatus),
    /// The wait ended without a signal: a deadline may have come.
    Timeout,
}

/// Something the runtime must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this signal to the app (its process group).
    Forward(Signal),
    /// SIGKILL the app's group and, if the plan says so, every other process.
    KillAll,
    /// Log a line for the user.
    Log(Level, String),
    /// Exit drainit with this code. Always the last action.
    Exit(i32),
}

/// Where the shutdown is. `t0` is the instant of the first SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// No SIGTERM yet.
    Running,
    /// SIGTERM seen; the app keeps serving until `t0 + drain`.
    Draining { t0: Instant },
    /// The app was told to stop; SIGKILL at `t0 + kill_after` if it lingers.
    Stopped { t0: Instant },
    /// SIGKILL sent; waiting for the child to be reaped.
    Killed { t0: Instant },
    /// drainit has decided to exit; nothing more happens.
    Exited,
}

/// The state machine. See the module documentation.
#[derive(Debug)]
pub struct Timeline {
    plan: Plan,
    started: Instant,
    stage: Stage,
    /// What happened since t0, for the summary line at exit.
    milestones: Vec<String>,
}

impl Timeline {
    /// A timeline for an app started at `started`.
    pub fn new(plan: Plan, started: Instant) -> Timeline {
        Timeline {
            plan,
            started,
            stage: Stage::Running,
            milestones: Vec::new(),
        }
    }

    /// The next instant at which something is due, if any: the runtime must
    /// call [`Timeline::handle`] no later than that.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.stage {
            Stage::Draining { t0 } => Some(t0 + self.plan.drain),
            Stage::Stopped { t0 } => Some(t0 + self.plan.kill_after()),
            Stage::Running | Stage::Killed { .. } | Stage::Exited => None,
        }
    }

    /// Handles an event seen at `now`, after firing every deadline that has
    /// passed (so a storm of signals cannot push a deadline back).
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        self.fire_deadlines(now, &mut actions);
        match event {
            Event::Signal(signal) => self.on_signal(signal, now, &mut actions),
            Event::ChildExited(status) => self.on_exit(status, now, &mut actions),
            Event::Timeout => {}
        }
        actions
    }

    fn fire_deadlines(&mut self, now: Instant, actions: &mut Vec<Action>) {
        if let Stage::Draining { t0 } = self.stage {
            if now >= t0 + self.plan.drain {
                self.stop(t0, now, "drain over", actions);
            }
        }
        if let Stage::Stopped { t0 } = self.stage {
            if now >= t0 + self.plan.kill_after() {
                self.kill(t0, now, actions);
            }
        }
    }

    fn on_signal(&mut self, signal: Signal, now: Instant, actions: &mut Vec<Action>) {
        match (self.stage, signal) {
            (Stage::Exited, _) | (_, Signal::CHLD) => {}
            (Stage::Running, Signal::TERM) => self.start_drain(now, actions),
            (Stage::Draining { t0 }, Signal::TERM) => {
                self.milestones
                    .push(format!("second SIGTERM at {}", since(t0, now)));
                self.stop(t0, now, "second SIGTERM: drain cut short", actions);
            }
            (Stage::Draining { t0 }, Signal::INT) => {
                self.milestones.push(format!(
                    "SIGINT to group at {}, ending the drain",
                    since(t0, now)
                ));
                log(
                    actions,
                    Level::Info,
                    format!(
                        "SIGINT at {}: forwarding it to the app now, drain cut short",
                        since(t0, now)
                    ),
                );
                actions.push(Action::Forward(Signal::INT));
                self.stage = Stage::Stopped { t0 };
            }
            (Stage::Stopped { t0 }, Signal::TERM) => {
                let stop = self.plan.stop_signal;
                self.milestones
                    .push(format!("{stop} again at {}", since(t0, now)));
                log(
                    actions,
                    Level::Info,
                    format!("SIGTERM again: sending {stop} to the app again"),
                );
                actions.push(Action::Forward(stop));
            }
            (Stage::Killed { .. }, _) => log(
                actions,
                Level::Debug,
                format!("{signal} not forwarded: the app is being killed"),
            ),
            (_, signal) => {
                log(actions, Level::Debug, format!("forwarding {signal}"));
                actions.push(Action::Forward(signal));
            }
        }
    }

    fn start_drain(&mut self, t0: Instant, actions: &mut Vec<Action>) {
        self.milestones.push("SIGTERM at +0s".to_string());
        let plan = &self.plan;
        let kill = format!(
            "SIGKILL at +{} (grace {} − margin {}) if it is still running",
            Human(plan.kill_after()),
            Human(plan.grace),
            Human(plan.kill_margin)
        );
        if plan.drain.is_zero() {
            log(actions, Level::Info, format!("SIGTERM: no drain; {kill}"));
            self.stop(t0, t0, "stopping", actions);
        } else {
            let message = format!(
                "SIGTERM: draining for {}, the app keeps serving; {} to its group at +{}, {kill}",
                Human(plan.drain),
                plan.stop_signal,
                Human(plan.drain),
            );
            log(actions, Level::Info, message);
            self.stage = Stage::Draining { t0 };
        }
    }

    /// Sends the stop signal: the drain is over.
    fn stop(&mut self, t0: Instant, now: Instant, why: &str, actions: &mut Vec<Action>) {
        let stop = self.plan.stop_signal;
        let at = since(t0, now);
        self.milestones.push(format!("{stop} to group at {at}"));
        log(
            actions,
            Level::Info,
            format!("{why}: sending {stop} to the app's group at {at}"),
        );
        actions.push(Action::Forward(stop));
        self.stage = Stage::Stopped { t0 };
    }

    fn kill(&mut self, t0: Instant, now: Instant, actions: &mut Vec<Action>) {
        let at = since(t0, now);
        let whom = if self.plan.kill_everyone {
            "its group and every other process"
        } else {
            "its group"
        };
        self.milestones.push(format!("SIGKILL to {whom} at {at}"));
        log(
            actions,
            Level::Warn,
            format!(
                "app still running at {at}, {} before the platform's deadline: sending SIGKILL to {whom}",
                Human(self.plan.kill_margin)
            ),
        );
        actions.push(Action::KillAll);
        self.stage = Stage::Killed { t0 };
    }

    fn on_exit(&mut self, status: ChildStatus, now: Instant, actions: &mut Vec<Action>) {
        let summary = match self.stage {
            Stage::Exited => return,
            Stage::Running => format!(
                "{status} after {:.2}s; no SIGTERM received",
                (now - self.started).as_secs_f64()
            ),
            Stage::Draining { t0 } | Stage::Stopped { t0 } | Stage::Killed { t0 } => {
                self.milestones
                    .push(format!("{status} at {}", since(t0, now)));
                let deadline = t0 + self.plan.grace;
                let margin = match deadline.checked_duration_since(now) {
                    Some(left) => format!("{:.2}s before the deadline", left.as_secs_f64()),
                    None => format!("{:.2}s after the deadline", (now - deadline).as_secs_f64()),
                };
                self.milestones.push(margin);
                self.milestones.join(", ")
            }
        };
        let code = status.exit_code();
        log(actions, Level::Info, format!("exit {code}: {summary}"));
        actions.push(Action::Exit(code));
        self.stage = Stage::Exited;
    }
}

fn log(actions: &mut Vec<Action>, level: Level, message: String) {
    actions.push(Action::Log(level, message));
}

/// `+5.00s`: the time since t0, as shown in logs.
fn since(t0: Instant, now: Instant) -> String {
    format!("+{:.2}s", now.saturating_duration_since(t0).as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn plan() -> Plan {
        Plan {
            drain: secs(5.0),
            grace: secs(30.0),
            kill_margin: secs(2.0),
            stop_signal: Signal::TERM,
            kill_everyone: true,
        }
    }

    /// A timeline on virtual time: `at(s)` is `s` seconds after the start.
    struct Clock {
        start: Instant,
        timeline: Timeline,
    }

    impl Clock {
        fn new(plan: Plan) -> Clock {
            let start = Instant::now();
            Clock {
                start,
                timeline: Timeline::new(plan, start),
            }
        }

        fn at(&self, s: f64) -> Instant {
            self.start + secs(s)
        }

        /// The actions of `event` at `s`, without log lines.
        fn handle(&mut self, event: Event, s: f64) -> Vec<Action> {
            let now = self.at(s);
            self.timeline
                .handle(event, now)
                .into_iter()
                .filter(|a| !matches!(a, Action::Log(..)))
                .collect()
        }

        /// The log lines of `event` at `s`.
        fn logs(&mut self, event: Event, s: f64) -> Vec<String> {
            let now = self.at(s);
            self.timeline
                .handle(event, now)
                .into_iter()
                .filter_map(|a| match a {
                    Action::Log(_, line) => Some(line),
                    _ => None,
                })
                .collect()
        }

        fn deadline(&self) -> Option<Instant> {
            self.timeline.next_deadline()
        }
    }

    use Action::{Exit, Forward, KillAll};
    use Event::{ChildExited, Timeout};

    fn signal(s: Signal) -> Event {
        Event::Signal(s)
    }

    #[test]
    fn idle_app_has_no_deadline() {
        let clock = Clock::new(plan());
        assert_eq!(clock.deadline(), None);
    }

    #[test]
    fn sigterm_starts_a_drain_without_signalling_the_app() {
        let mut clock = Clock::new(plan());
        assert_eq!(clock.handle(signal(Signal::TERM), 10.0), vec![]);
        assert_eq!(clock.deadline(), Some(clock.at(15.0)));
        // An early wake-up changes nothing.
        assert_eq!(clock.handle(Timeout, 14.999), vec![]);
        assert_eq!(clock.deadline(), Some(clock.at(15.0)));
    }

    #[test]
    fn drain_end_sends_the_stop_signal_then_sigkill_at_grace_minus_margin() {
        let mut clock = Clock::new(Plan {
            stop_signal: Signal::QUIT,
            ..plan()
        });
        clock.handle(signal(Signal::TERM), 10.0);
        assert_eq!(clock.handle(Timeout, 15.0), vec![Forward(Signal::QUIT)]);
        assert_eq!(clock.deadline(), Some(clock.at(38.0)));
        assert_eq!(clock.handle(Timeout, 37.9), vec![]);
        assert_eq!(clock.handle(Timeout, 38.0), vec![KillAll]);
        assert_eq!(clock.deadline(), None);
        assert_eq!(
            clock.handle(ChildExited(ChildStatus::Killed(Signal::KILL)), 38.01),
            vec![Exit(137)]
        );
    }

    #[test]
    fn zero_drain_forwards_at_once() {
        let mut clock = Clock::new(Plan {
            drain: Duration::ZERO,
            ..plan()
        });
        assert_eq!(
            clock.handle(signal(Signal::TERM), 1.0),
            vec![Forward(Signal::TERM)]
        );
        assert_eq!(clock.deadline(), Some(clock.at(29.0)));
    }

    #[test]
    fn late_wakeup_fires_both_deadlines_in_order() {
        let mut clock = Clock::new(plan());
        clock.handle(signal(Signal::TERM), 0.0);
        assert_eq!(
            clock.handle(Timeout, 40.0),
            vec![Forward(Signal::TERM), KillAll]
        );
    }

    #[test]
    fn a_signal_storm_cannot_delay_the_deadlines() {
        let mut clock = Clock::new(plan());
        clock.handle(signal(Signal::TERM), 0.0);
        assert_eq!(
            clock.handle(signal(Signal::HUP), 5.0),
            vec![Forward(Signal::TERM), Forward(Signal::HUP)]
        );
        assert_eq!(clock.handle(signal(Signal::USR1), 28.0), vec![KillAll]);
    }

    #[test]
    fn second_sigterm_ends_the_drain_at_once() {
        let mut clock = Clock::new(plan());
        clock.handle(signal(Signal::TERM), 0.0);
        assert_eq!(
            clock.handle(signal(Signal::TERM), 1.0),
            vec![Forward(Signal::TERM)]
        );
        // The kill deadline still counts from the first SIGTERM.
        assert_eq!(clock.deadline(), Some(clock.at(28.0)));
        // The stop signal is not sent again when the drain would have ended.
        assert_eq!(clock.handle(Timeout, 5.0), vec![]);
    }

    #[test]
    fn sigterm_after_the_stop_repeats_the_stop_signal() {
        let mut clock = Clock::new(Plan {
            stop_signal: Signal::QUIT,
            ..plan()
        });
        clock.handle(signal(Signal::TERM), 0.0);
        clock.handle(Timeout, 5.0);
        assert_eq!(
            clock.handle(signal(Signal::TERM), 6.0),
            vec![Forward(Signal::QUIT)]
        );
        assert_eq!(clock.deadline(), Some(clock.at(28.0)));
    }

    #[test]
    fn sigint_is_forwarded_at_once_without_starting_a_timeline() {
        let mut clock = Clock::new(plan());
        assert_eq!(
            clock.handle(signal(Signal::INT), 1.0),
            vec![Forward(Signal::INT)]
        );
        assert_eq!(clock.deadline(), None);
    }

    #[test]
    fn sigint_during_the_drain_is_forwarded_and_ends_it() {
        let mut clock = Clock::new(plan());
        clock.handle(signal(Signal::TERM), 0.0);
        assert_eq!(
            clock.handle(signal(Signal::INT), 1.0),
            vec![Forward(Signal::INT)]
        );
        assert_eq!(clock.deadline(), Some(clock.at(28.0)));
        assert_eq!(clock.handle(Timeout, 5.0), vec![]);
        assert_eq!(clock.handle(Timeout, 28.0), vec![KillAll]);
    }

    #[test]
    fn other_signals_are_forwarded_at_once_in_every_stage_but_killed() {
        let mut clock = Clock::new(plan());
        for sig in [
            Signal::HUP,
            Signal::USR1,
            Signal::USR2,
            Signal::WINCH,
            Signal::QUIT,
        ] {
            assert_eq!(clock.handle(signal(sig), 0.5), vec![Forward(sig)]);
        }
        clock.handle(signal(Signal::TERM), 1.0);
        assert_eq!(
            clock.handle(signal(Signal::HUP), 2.0),
            vec![Forward(Signal::HUP)]
        );
        clock.handle(Timeout, 6.0);
        assert_eq!(
            clock.handle(signal(Signal::USR2), 7.0),
            vec![Forward(Signal::USR2)]
        );
        clock.handle(Timeout, 29.0);
        assert_eq!(clock.handle(signal(Signal::USR2), 29.5), vec![]);
        assert_eq!(clock.handle(signal(Signal::TERM), 29.5), vec![]);
    }

    #[test]
    fn sigchld_is_never_forwarded() {
        let mut clock = Clock::new(plan());
        assert_eq!(clock.handle(signal(Signal::CHLD), 1.0), vec![]);
    }

    #[test]
    fn child_exit_ends_everything_with_its_status() {
        for (status, code) in [
            (ChildStatus::Exited(0), 0),
            (ChildStatus::Exited(3), 3),
            (ChildStatus::Killed(Signal::TERM), 143),
        ] {
            let mut clock = Clock::new(plan());
            assert_eq!(clock.handle(ChildExited(status), 1.0), vec![Exit(code)]);
            assert_eq!(clock.deadline(), None);
            assert_eq!(clock.handle(signal(Signal::TERM), 2.0), vec![]);
            assert_eq!(clock.handle(ChildExited(status), 2.0), vec![]);
        }
    }

    #[test]
    fn child_exit_mid_drain_exits_at_once() {
        let mut clock = Clock::new(plan());
        clock.handle(signal(Signal::TERM), 0.0);
        assert_eq!(
            clock.handle(ChildExited(ChildStatus::Exited(0)), 2.0),
            vec![Exit(0)]
        );
        assert_eq!(clock.deadline(), None);
        assert_eq!(clock.handle(Timeout, 100.0), vec![]);
    }

    #[test]
    fn the_drain_start_says_what_will_happen_and_when() {
        let mut clock = Clock::new(plan());
        let lines = clock.logs(signal(Signal::TERM), 0.0);
        assert_eq!(
            lines,
            vec![
                "SIGTERM: draining for 5s, the app keeps serving; SIGTERM to its group at +5s, \
                 SIGKILL at +28s (grace 30s − margin 2s) if it is still running"
            ]
        );
    }

    #[test]
    fn the_exit_summary_tells_the_whole_timeline() {
        let mut clock = Clock::new(plan());
        clock.handle(signal(Signal::TERM), 10.0);
        clock.handle(Timeout, 15.0);
        let lines = clock.logs(ChildExited(ChildStatus::Exited(0)), 15.31);
        assert_eq!(
            lines,
            vec![
                "exit 0: SIGTERM at +0s, SIGTERM to group at +5.00s, app exited 0 at +5.31s, \
                 24.69s before the deadline"
            ]
        );
    }

    #[test]
    fn the_exit_summary_without_sigterm() {
        let mut clock = Clock::new(plan());
        let lines = clock.logs(ChildExited(ChildStatus::Killed(Signal::USR1)), 1.5);
        assert_eq!(
            lines,
            vec!["exit 138: app killed by SIGUSR1 after 1.50s; no SIGTERM received"]
        );
    }

    #[test]
    fn the_exit_summary_after_a_kill() {
        let mut clock = Clock::new(Plan {
            kill_everyone: false,
            ..plan()
        });
        clock.handle(signal(Signal::TERM), 0.0);
        clock.handle(Timeout, 5.0);
        clock.handle(Timeout, 28.0);
        let lines = clock.logs(ChildExited(ChildStatus::Killed(Signal::KILL)), 28.01);
        assert_eq!(
            lines,
            vec![
                "exit 137: SIGTERM at +0s, SIGTERM to group at +5.00s, SIGKILL to its group at \
                 +28.00s, app killed by SIGKILL at +28.01s, 1.99s before the deadline"
            ]
        );
    }
}
