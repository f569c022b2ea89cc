//! The shutdown timeline: every decision drainit makes, as a pure state machine.
//!
//! The runtime feeds it [`Event`]s with the instant they were seen and carries
//! out the [`Action`]s it returns; between events it sleeps until
//! [`Timeline::next_deadline`]. Nothing here makes a system call or reads a
//! clock, so tests drive it on virtual time (the same split as quinn-proto and
//! quinn).
//!
//! ```text
//! t0: first SIGTERM ── drain ──▶ stop signal to the app ──▶ SIGKILL at t0 + grace − margin
//!                      (app keeps serving)                   (if anything is still alive)
//! app exits, others left ──▶ stop signal to them ── cleanup ──▶ SIGKILL ──▶ reaped: exit
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use log::Level;

use crate::activity::{Seen, Tally};
use crate::duration::{Human, Seconds};
use crate::signal::{Rewrite, Signal};

/// How long drainit waits, after its last SIGKILL, to reap what it killed.
/// SIGKILL is not refused, so this only bounds the wait for a process stuck
/// in the kernel or one drainit cannot see exit (not its child).
pub const REAP_AFTER_KILL: Duration = Duration::from_secs(1);

/// How often the adaptive drain looks at the traffic.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// A sample that took longer than 2 ms (thousands of connections, each
/// costing the kernel 1 to 2 µs) spaces the next one out, so that sampling
/// takes at most 1/50 of drainit's time: 2% of a core. The sample at the end
/// of the quiet time still comes on time.
pub const SAMPLE_TIME_SHARE: u32 = 50;

/// The adaptive drain: end it once the traffic has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adaptive {
    /// Never end the drain before this.
    pub min: Duration,
    /// End it once no traffic was seen for this long.
    pub quiet: Duration,
}

/// The shutdown the user configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// How long the app keeps serving after SIGTERM (the longest, with `adaptive`).
    pub drain: Duration,
    /// End the drain early once the traffic stops, if set.
    pub adaptive: Option<Adaptive>,
    /// The time the platform allows from SIGTERM to its own SIGKILL.
    pub grace: Duration,
    /// How long before the platform's SIGKILL drainit sends its own.
    pub kill_margin: Duration,
    /// What the app gets when the drain ends.
    pub stop_signal: Signal,
    /// How long processes left behind by the app get between the stop signal and SIGKILL.
    pub cleanup: Duration,
    /// Signals forwarded as another (or not at all); the last rewrite of a signal wins.
    pub rewrites: Vec<Rewrite>,
    /// The app's exit codes that drainit reports as 0.
    pub success_exits: Vec<i32>,
    /// drainit is PID 1, so its last signals also reach processes outside the app's group.
    pub kill_everyone: bool,
}

impl Plan {
    /// When, after the first SIGTERM, drainit sends SIGKILL. Config ensures
    /// `drain < kill_after`.
    pub fn kill_after(&self) -> Duration {
        self.grace.saturating_sub(self.kill_margin)
    }

    /// What to forward when `signal` arrives: `None` if rewritten to nothing.
    fn rewrite(&self, signal: Signal) -> Option<Signal> {
        match self.rewrites.iter().rev().find(|r| r.from == signal) {
            Some(rewrite) => rewrite.to,
            None => Some(signal),
        }
    }

    fn everyone(&self) -> &'static str {
        if self.kill_everyone {
            "the app's group and every other process"
        } else {
            "the app's group"
        }
    }
}

/// How the main child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStatus {
    /// It exited with this code.
    Exited(i32),
    /// This signal killed it.
    Killed(Signal),
}

impl ChildStatus {
    /// The code a shell would report: the child's own, or 128 + N for death by signal N.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// drainit received a signal (never SIGCHLD: the runtime turns that into reaping).
    Signal(Signal),
    /// drainit reaped its exited children: `app` is the main child's status if
    /// it was among them; `children_left` says whether drainit still has any.
    Reaped {
        /// The main child's status, if it was reaped.
        app: Option<ChildStatus>,
        /// Whether drainit still has children after reaping.
        children_left: bool,
    },
    /// The traffic sample asked for by [`Action::Sample`]: whether anything
    /// came in since the previous one, or why traffic cannot be measured.
    Activity(Result<Seen, String>),
    /// The wait ended without a signal: a deadline may have come.
    Timeout,
}

/// Something the runtime must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this signal to the app: its process group (or its main process with `--no-group`).
    Forward(Signal),
    /// Send this signal to the app's group and, when drainit is PID 1, to every other process.
    SignalAll(Signal),
    /// Look at the app's traffic and report with [`Event::Activity`], at once.
    Sample,
    /// Log a line for the user.
    Log(Level, String),
    /// Exit drainit with this code. Always the last action.
    Exit(i32),
}

/// Where the shutdown is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// No SIGTERM yet.
    Running,
    /// SIGTERM seen; the app keeps serving until `t0 + drain`, or until the
    /// traffic stops if the drain is adaptive and traffic can be measured.
    Draining(Option<Sampling>),
    /// The app was told to stop; SIGKILL at `t0 + kill_after` if it lingers.
    Stopped,
    /// SIGKILL sent; waiting for the app to be reaped.
    Killed,
    /// The app exited and left processes behind; they got the stop signal
    /// and get SIGKILL at `kill_at`.
    CleaningUp { app: ChildStatus, kill_at: Instant },
    /// Everything got SIGKILL; reaping it until `give_up_at` at most.
    Reaping {
        app: ChildStatus,
        give_up_at: Instant,
    },
    /// drainit has decided to exit; nothing more happens.
    Exited,
}

/// What the adaptive drain has seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sampling {
    /// When traffic was last seen (t0 at first).
    last_active: Instant,
    /// When to sample next.
    next: Instant,
    samples: u32,
    active: u32,
}

/// The state machine. See the module documentation.
#[derive(Debug)]
pub struct Timeline {
    plan: Plan,
    started: Instant,
    /// The first SIGTERM, if any: every instant of the shutdown counts from it.
    t0: Option<Instant>,
    stage: Stage,
    /// What happened since t0, for the summary line at exit.
    milestones: Vec<String>,
    /// The adaptive drain's samples with traffic, port by port.
    tally: Tally,
}

impl Timeline {
    /// A timeline for an app started at `started`.
    pub fn new(plan: Plan, started: Instant) -> Timeline {
        Timeline {
            plan,
            started,
            t0: None,
            stage: Stage::Running,
            milestones: Vec::new(),
            tally: Tally::default(),
        }
    }

    /// The next instant at which something is due, if any: the runtime must
    /// call [`Timeline::handle`] no later than that.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.stage {
            Stage::Draining(sampling) => {
                let end = self.t0.map(|t0| t0 + self.plan.drain);
                end.map(|end| sampling.map_or(end, |s| s.next.min(end)))
            }
            Stage::Stopped => self.kill_at(),
            Stage::CleaningUp { kill_at, .. } => Some(kill_at),
            Stage::Reaping { give_up_at, .. } => Some(give_up_at),
            Stage::Running | Stage::Killed | Stage::Exited => None,
        }
    }

    /// Handles an event seen at `now`, after firing every deadline that has
    /// passed (so a storm of signals cannot push a deadline back).
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut actions = VecDeque::new();
        self.handle_into(event, now, &mut actions);
        actions.into()
    }

    /// [`Timeline::handle`], appending to `actions`: the runtime reuses one
    /// queue, so that forwarding a signal allocates nothing.
    pub fn handle_into(&mut self, event: Event, now: Instant, actions: &mut VecDeque<Action>) {
        while self.next_deadline().is_some_and(|deadline| now >= deadline) {
            self.on_deadline(now, actions);
        }
        match event {
            Event::Signal(signal) => self.on_signal(signal, now, actions),
            Event::Reaped { app, children_left } => {
                self.on_reaped(app, children_left, now, actions)
            }
            Event::Activity(sample) => self.on_activity(sample, now, actions),
            Event::Timeout => {}
        }
    }

    /// The SIGKILL deadline of a termination under way.
    fn kill_at(&self) -> Option<Instant> {
        self.t0.map(|t0| t0 + self.plan.kill_after())
    }

    fn on_deadline(&mut self, now: Instant, actions: &mut VecDeque<Action>) {
        match self.stage {
            Stage::Draining(sampling) => {
                let end = self.t0.map_or(now, |t0| t0 + self.plan.drain);
                if now >= end {
                    let why = match sampling {
                        Some(s) => format!(
                            "drain reached its maximum of {}, traffic never stopped \
                             ({} of {} samples saw some; {})",
                            Human(self.plan.drain),
                            s.active,
                            s.samples,
                            self.tally
                        ),
                        None => "drain over".to_string(),
                    };
                    self.stop(&why, now, actions);
                } else if let Some(mut sampling) = sampling {
                    // The next sample is scheduled when the answer to this one comes.
                    sampling.next = end;
                    self.stage = Stage::Draining(Some(sampling));
                    actions.push_back(Action::Sample);
                }
            }
            Stage::Stopped => {
                let at = self.since(now);
                let everyone = self.plan.everyone();
                self.milestones
                    .push(format!("SIGKILL to {everyone} at {at}"));
                let margin = Human(self.plan.kill_margin);
                log(
                    actions,
                    Level::Warn,
                    format!(
                        "app still running at {at}, {margin} before the platform's deadline: \
                         sending SIGKILL to {everyone}"
                    ),
                );
                actions.push_back(Action::SignalAll(Signal::KILL));
                self.stage = Stage::Killed;
            }
            Stage::CleaningUp { app, .. } => {
                let at = self.since(now);
                self.milestones
                    .push(format!("SIGKILL to leftovers at {at}"));
                log(
                    actions,
                    Level::Warn,
                    format!("processes left by the app still running at {at}: sending SIGKILL"),
                );
                actions.push_back(Action::SignalAll(Signal::KILL));
                self.stage = Stage::Reaping {
                    app,
                    give_up_at: now + REAP_AFTER_KILL,
                };
            }
            Stage::Reaping { app, .. } => {
                log(
                    actions,
                    Level::Warn,
                    "some killed processes were not reaped in time; exiting anyway".to_string(),
                );
                self.finish(app, now, actions);
            }
            Stage::Running | Stage::Killed | Stage::Exited => {}
        }
    }

    fn on_signal(&mut self, signal: Signal, now: Instant, actions: &mut VecDeque<Action>) {
        if signal == Signal::CHLD || self.stage == Stage::Exited {
            return;
        }
        if signal == Signal::TERM {
            return self.on_sigterm(now, actions);
        }
        let Some(forward) = self.plan.rewrite(signal) else {
            return log(
                actions,
                Level::Debug,
                format!("{signal} dropped (rewritten to 0)"),
            );
        };
        match self.stage {
            Stage::Killed | Stage::Reaping { .. } => log(
                actions,
                Level::Debug,
                format!("{signal} not forwarded: everything is being killed"),
            ),
            Stage::Draining(_) if signal == Signal::INT => {
                let at = self.since(now);
                self.milestones
                    .push(format!("SIGINT at {at} ended the drain"));
                log(
                    actions,
                    Level::Info,
                    format!("SIGINT at {at}: forwarding {forward} to the app now, drain cut short"),
                );
                actions.push_back(Action::Forward(forward));
                self.stage = Stage::Stopped;
            }
            _ => {
                // Formatted only for a rewrite: this is every signal's path.
                if forward != signal {
                    log(
                        actions,
                        Level::Debug,
                        format!("{signal} rewritten to {forward}"),
                    );
                }
                actions.push_back(Action::Forward(forward));
            }
        }
    }

    fn on_sigterm(&mut self, now: Instant, actions: &mut VecDeque<Action>) {
        match self.stage {
            Stage::Running => self.start_drain(now, actions),
            Stage::Draining(_) => {
                self.milestones
                    .push(format!("second SIGTERM at {}", self.since(now)));
                self.stop("second SIGTERM: drain cut short", now, actions);
            }
            Stage::Stopped => {
                let stop = self.plan.stop_signal;
                self.milestones
                    .push(format!("{stop} again at {}", self.since(now)));
                log(
                    actions,
                    Level::Info,
                    format!("SIGTERM again: sending {stop} to the app again"),
                );
                actions.push_back(Action::Forward(stop));
            }
            Stage::CleaningUp { app, kill_at } if self.t0.is_none() => {
                // The platform's deadline now bounds the cleanup too.
                self.t0 = Some(now);
                self.milestones.push("SIGTERM at +0s".to_string());
                let kill_at = kill_at.min(now + self.plan.kill_after());
                self.stage = Stage::CleaningUp { app, kill_at };
            }
            Stage::CleaningUp { .. } | Stage::Killed | Stage::Reaping { .. } | Stage::Exited => {}
        }
    }

    fn start_drain(&mut self, now: Instant, actions: &mut VecDeque<Action>) {
        self.t0 = Some(now);
        self.milestones.push("SIGTERM at +0s".to_string());
        let plan = &self.plan;
        let kill = format!(
            "SIGKILL at +{} (grace {} − margin {}) if anything is still running",
            Human(plan.kill_after()),
            Human(plan.grace),
            Human(plan.kill_margin)
        );
        if plan.drain.is_zero() {
            log(actions, Level::Info, format!("SIGTERM: no drain; {kill}"));
            self.stop("stopping", now, actions);
        } else if let Some(adaptive) = plan.adaptive {
            let message = format!(
                "SIGTERM: draining while the app keeps serving, until its TCP listeners have had \
                 no traffic for {} (at least {}, at most {}); then {} to the app, {kill}",
                Human(adaptive.quiet),
                Human(adaptive.min),
                Human(plan.drain),
                plan.stop_signal,
            );
            log(actions, Level::Info, message);
            // A first sample now: the baseline the next ones compare with.
            self.stage = Stage::Draining(Some(Sampling {
                last_active: now,
                next: now + plan.drain,
                samples: 0,
                active: 0,
            }));
            actions.push_back(Action::Sample);
        } else {
            let message = format!(
                "SIGTERM: draining for {} while the app keeps serving; {} to the app at +{}, {kill}",
                Human(plan.drain),
                plan.stop_signal,
                Human(plan.drain),
            );
            log(actions, Level::Info, message);
            self.stage = Stage::Draining(None);
        }
    }

    /// A traffic sample came back: end the drain if it has been quiet long
    /// enough, else schedule the next sample.
    fn on_activity(
        &mut self,
        sample: Result<Seen, String>,
        now: Instant,
        actions: &mut VecDeque<Action>,
    ) {
        let (Stage::Draining(Some(mut sampling)), Some(t0), Some(adaptive)) =
            (self.stage, self.t0, self.plan.adaptive)
        else {
            return;
        };
        let seen = match sample {
            Ok(seen) => seen,
            Err(why) => {
                log(
                    actions,
                    Level::Warn,
                    format!(
                        "cannot measure the app's traffic ({why}): keeping the fixed drain of {}",
                        Human(self.plan.drain)
                    ),
                );
                self.stage = Stage::Draining(None);
                return;
            }
        };
        // The baseline sample at t0 compares with nothing.
        if now > t0 {
            sampling.samples += 1;
            self.tally.add(&seen);
            if seen.any() {
                sampling.active += 1;
                sampling.last_active = now;
            }
        }
        let quiet_end = (t0 + adaptive.min).max(sampling.last_active + adaptive.quiet);
        if now >= quiet_end {
            let why = format!(
                "drain over after {}: no new connection and no byte received for {} \
                 ({} of {} samples saw traffic, the last at {}; {})",
                self.since(now),
                Human(adaptive.quiet),
                sampling.active,
                sampling.samples,
                self.since(sampling.last_active),
                self.tally
            );
            return self.stop(&why, now, actions);
        }
        sampling.next = (now + SAMPLE_INTERVAL.max(seen.cost * SAMPLE_TIME_SHARE))
            .min(quiet_end)
            .min(t0 + self.plan.drain);
        self.stage = Stage::Draining(Some(sampling));
    }

    /// Sends the stop signal: the drain is over.
    fn stop(&mut self, why: &str, now: Instant, actions: &mut VecDeque<Action>) {
        let stop = self.plan.stop_signal;
        let at = self.since(now);
        self.milestones.push(format!("{stop} to app at {at}"));
        log(
            actions,
            Level::Info,
            format!("{why}: sending {stop} to the app at {at}"),
        );
        actions.push_back(Action::Forward(stop));
        self.stage = Stage::Stopped;
    }

    fn on_reaped(
        &mut self,
        app: Option<ChildStatus>,
        children_left: bool,
        now: Instant,
        actions: &mut VecDeque<Action>,
    ) {
        match (self.stage, app) {
            (Stage::Exited, _) => {}
            (Stage::CleaningUp { app, .. } | Stage::Reaping { app, .. }, _) if !children_left => {
                self.milestones
                    .push(format!("leftovers gone at {}", self.since(now)));
                self.finish(app, now, actions)
            }
            // Processes re-parented to drainit after its SIGKILL (their
            // parent just died of it) get one too.
            (Stage::Reaping { .. }, _) => actions.push_back(Action::SignalAll(Signal::KILL)),
            (_, None) => {}
            (_, Some(app)) => {
                self.milestones
                    .push(format!("{app} at {}", self.since(now)));
                if !children_left {
                    self.finish(app, now, actions);
                } else if self.stage == Stage::Killed {
                    self.stage = Stage::Reaping {
                        app,
                        give_up_at: now + REAP_AFTER_KILL,
                    };
                    actions.push_back(Action::SignalAll(Signal::KILL));
                } else {
                    self.clean_up(app, now, actions);
                }
            }
        }
    }

    /// The app exited but left processes: stop signal to them, SIGKILL after
    /// the cleanup time, or at the termination's SIGKILL deadline if sooner.
    fn clean_up(&mut self, app: ChildStatus, now: Instant, actions: &mut VecDeque<Action>) {
        let mut kill_at = now + self.plan.cleanup;
        if let Some(deadline) = self.kill_at() {
            kill_at = kill_at.min(deadline);
        }
        let stop = self.plan.stop_signal;
        let at = self.since(now);
        self.milestones.push(format!("{stop} to leftovers at {at}"));
        log(
            actions,
            Level::Info,
            format!(
                "{app} at {at} but left processes running: sending {stop} to {}, SIGKILL in {} \
                 if they are still running",
                self.plan.everyone(),
                Human(kill_at.saturating_duration_since(now))
            ),
        );
        actions.push_back(Action::SignalAll(stop));
        self.stage = Stage::CleaningUp { app, kill_at };
    }

    /// Exits with the app's status: the summary line, then the exit.
    fn finish(&mut self, app: ChildStatus, now: Instant, actions: &mut VecDeque<Action>) {
        let summary = match self.t0 {
            None if self.milestones.len() <= 1 => format!(
                "{app} after {}s; no SIGTERM received",
                Seconds(now - self.started)
            ),
            None => format!("{}; no SIGTERM received", self.milestones.join(", ")),
            Some(t0) => {
                let deadline = t0 + self.plan.grace;
                let margin = match deadline.checked_duration_since(now) {
                    Some(left) => format!("{}s before the deadline", Seconds(left)),
                    None => format!("{}s after the deadline", Seconds(now - deadline)),
                };
                self.milestones.push(margin);
                self.milestones.join(", ")
            }
        };
        let code = app.exit_code();
        let (code, success) = if code != 0 && self.plan.success_exits.contains(&code) {
            (0, format!(" ({} counts as success)", app.exit_code()))
        } else {
            (code, String::new())
        };
        log(
            actions,
            Level::Info,
            format!("exit {code}{success}: {summary}"),
        );
        actions.push_back(Action::Exit(code));
        self.stage = Stage::Exited;
    }

    /// `+5.00s`: the time since t0 (or since the start, before any SIGTERM).
    fn since(&self, now: Instant) -> String {
        let origin = self.t0.unwrap_or(self.started);
        format!("+{}s", Seconds(now.saturating_duration_since(origin)))
    }
}

fn log(actions: &mut VecDeque<Action>, level: Level, message: String) {
    actions.push_back(Action::Log(level, message));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Rewrite;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn plan() -> Plan {
        Plan {
            drain: secs(5.0),
            adaptive: None,
            grace: secs(30.0),
            kill_margin: secs(2.0),
            stop_signal: Signal::TERM,
            cleanup: secs(2.0),
            rewrites: Vec::new(),
            success_exits: Vec::new(),
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

    use Action::{Exit, Forward, SignalAll};
    use Event::Timeout;

    const KILL_ALL: Action = SignalAll(Signal::KILL);

    /// The app exited and nothing else is left.
    #[allow(non_snake_case)]
    fn ChildExited(status: ChildStatus) -> Event {
        Event::Reaped {
            app: Some(status),
            children_left: false,
        }
    }

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
        assert_eq!(clock.handle(Timeout, 38.0), vec![KILL_ALL]);
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
            vec![Forward(Signal::TERM), KILL_ALL]
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
        assert_eq!(clock.handle(signal(Signal::USR1), 28.0), vec![KILL_ALL]);
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
        assert_eq!(clock.handle(Timeout, 28.0), vec![KILL_ALL]);
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
                "SIGTERM: draining for 5s while the app keeps serving; SIGTERM to the app at +5s, \
                 SIGKILL at +28s (grace 30s − margin 2s) if anything is still running"
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
                "exit 0: SIGTERM at +0s, SIGTERM to app at +5.00s, app exited 0 at +5.31s, \
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
                "exit 137: SIGTERM at +0s, SIGTERM to app at +5.00s, SIGKILL to the app's group \
                 at +28.00s, app killed by SIGKILL at +28.01s, 1.99s before the deadline"
            ]
        );
    }

    /// The app exited and left processes behind.
    fn exited_leaving_others(status: ChildStatus) -> Event {
        Event::Reaped {
            app: Some(status),
            children_left: true,
        }
    }

    const LEFTOVERS_GONE: Event = Event::Reaped {
        app: None,
        children_left: false,
    };

    #[test]
    fn leftovers_get_the_stop_signal_and_drainit_exits_when_they_are_gone() {
        let mut clock = Clock::new(plan());
        assert_eq!(
            clock.handle(exited_leaving_others(ChildStatus::Exited(5)), 1.0),
            vec![SignalAll(Signal::TERM)]
        );
        assert_eq!(clock.deadline(), Some(clock.at(3.0)));
        // An orphan reaped while others remain changes nothing.
        let some_reaped = Event::Reaped {
            app: None,
            children_left: true,
        };
        assert_eq!(clock.handle(some_reaped, 1.5), vec![]);
        assert_eq!(clock.handle(LEFTOVERS_GONE, 1.6), vec![Exit(5)]);
        assert_eq!(clock.deadline(), None);
    }

    #[test]
    fn leftovers_that_linger_get_sigkill_after_the_cleanup_time() {
        let mut clock = Clock::new(plan());
        clock.handle(exited_leaving_others(ChildStatus::Exited(5)), 1.0);
        assert_eq!(clock.handle(Timeout, 2.99), vec![]);
        assert_eq!(clock.handle(Timeout, 3.0), vec![KILL_ALL]);
        assert_eq!(clock.handle(LEFTOVERS_GONE, 3.01), vec![Exit(5)]);
    }

    #[test]
    fn drainit_gives_up_on_leftovers_it_cannot_reap() {
        let mut clock = Clock::new(plan());
        clock.handle(exited_leaving_others(ChildStatus::Exited(5)), 1.0);
        clock.handle(Timeout, 3.0);
        assert_eq!(clock.deadline(), Some(clock.at(3.0) + REAP_AFTER_KILL));
        assert_eq!(clock.handle(Timeout, 4.0), vec![Exit(5)]);
    }

    #[test]
    fn the_cleanup_never_runs_past_the_sigkill_deadline() {
        let mut clock = Clock::new(Plan {
            cleanup: secs(60.0),
            ..plan()
        });
        clock.handle(signal(Signal::TERM), 0.0);
        clock.handle(exited_leaving_others(ChildStatus::Exited(0)), 27.0);
        assert_eq!(clock.deadline(), Some(clock.at(28.0)));
        assert_eq!(clock.handle(Timeout, 28.0), vec![KILL_ALL]);
    }

    #[test]
    fn a_sigterm_during_the_cleanup_brings_the_sigkill_forward_if_sooner() {
        let mut clock = Clock::new(Plan {
            cleanup: secs(60.0),
            ..plan()
        });
        clock.handle(exited_leaving_others(ChildStatus::Exited(0)), 1.0);
        assert_eq!(clock.handle(signal(Signal::TERM), 2.0), vec![]);
        assert_eq!(clock.deadline(), Some(clock.at(30.0)));
    }

    #[test]
    fn with_no_cleanup_time_leftovers_are_killed_at_once() {
        let mut clock = Clock::new(Plan {
            cleanup: Duration::ZERO,
            ..plan()
        });
        clock.handle(exited_leaving_others(ChildStatus::Exited(0)), 1.0);
        assert_eq!(clock.handle(Timeout, 1.0), vec![KILL_ALL]);
    }

    #[test]
    fn after_a_kill_drainit_kills_what_is_re_parented_to_it_and_reaps() {
        let mut clock = Clock::new(plan());
        clock.handle(signal(Signal::TERM), 0.0);
        clock.handle(Timeout, 28.0);
        let killed = ChildStatus::Killed(Signal::KILL);
        // The app's orphans are drainit's children now: they get SIGKILL too.
        assert_eq!(
            clock.handle(exited_leaving_others(killed), 28.01),
            vec![KILL_ALL]
        );
        let some_reaped = Event::Reaped {
            app: None,
            children_left: true,
        };
        assert_eq!(clock.handle(some_reaped, 28.015), vec![KILL_ALL]);
        assert_eq!(clock.handle(LEFTOVERS_GONE, 28.02), vec![Exit(137)]);
    }

    #[test]
    fn rewrites_change_or_drop_forwarded_signals() {
        let mut clock = Clock::new(Plan {
            rewrites: vec![
                Rewrite {
                    from: Signal::USR1,
                    to: Some(Signal::HUP),
                },
                Rewrite {
                    from: Signal::WINCH,
                    to: None,
                },
                Rewrite {
                    from: Signal::INT,
                    to: Some(Signal::QUIT),
                },
            ],
            ..plan()
        });
        assert_eq!(
            clock.handle(signal(Signal::USR1), 1.0),
            vec![Forward(Signal::HUP)]
        );
        assert_eq!(clock.handle(signal(Signal::WINCH), 1.0), vec![]);
        assert_eq!(
            clock.handle(signal(Signal::USR2), 1.0),
            vec![Forward(Signal::USR2)]
        );
        clock.handle(signal(Signal::TERM), 2.0);
        // A rewritten SIGINT still ends the drain.
        assert_eq!(
            clock.handle(signal(Signal::INT), 3.0),
            vec![Forward(Signal::QUIT)]
        );
        assert_eq!(clock.deadline(), Some(clock.at(30.0)));
    }

    #[test]
    fn success_exit_codes_become_zero() {
        for (status, code) in [
            (ChildStatus::Killed(Signal::TERM), 0),
            (ChildStatus::Exited(3), 0),
            (ChildStatus::Exited(4), 4),
        ] {
            let mut clock = Clock::new(Plan {
                success_exits: vec![143, 3],
                ..plan()
            });
            assert_eq!(clock.handle(ChildExited(status), 1.0), vec![Exit(code)]);
        }
        let mut clock = Clock::new(Plan {
            success_exits: vec![143],
            ..plan()
        });
        let lines = clock.logs(ChildExited(ChildStatus::Killed(Signal::TERM)), 1.0);
        assert!(
            lines[0].starts_with("exit 0 (143 counts as success): "),
            "{lines:?}"
        );
    }

    fn adaptive(min: f64, quiet: f64) -> Plan {
        Plan {
            drain: secs(20.0),
            adaptive: Some(Adaptive {
                min: secs(min),
                quiet: secs(quiet),
            }),
            ..plan()
        }
    }

    /// Answers every `Sample` with `active(now)` until `until`, as the runtime
    /// does, and returns the instant the stop signal went out.
    fn sample_until_stopped(
        clock: &mut Clock,
        active: impl Fn(f64) -> Result<Seen, String>,
        until: f64,
    ) -> Option<f64> {
        let mut pending = clock.handle(signal(Signal::TERM), 0.0);
        assert_eq!(pending, vec![Action::Sample]);
        let mut now = 0.0;
        let t = |clock: &Clock, at: Instant| (at - clock.start).as_secs_f64();
        loop {
            for action in std::mem::take(&mut pending) {
                match action {
                    Action::Sample => {
                        let event = Event::Activity(active(now));
                        pending.extend(clock.handle(event, now));
                    }
                    Forward(s) if s == Signal::TERM => return Some(now),
                    _ => {}
                }
            }
            if !pending.is_empty() {
                continue;
            }
            let deadline = clock.deadline()?;
            now = t(clock, deadline);
            if now > until {
                return None;
            }
            pending.extend(clock.handle(Timeout, now));
        }
    }

    #[test]
    fn adaptive_drain_ends_after_min_when_there_is_no_traffic() {
        let mut clock = Clock::new(adaptive(1.0, 0.5));
        let stop = sample_until_stopped(&mut clock, |_| Ok(Seen::on_port(80, false)), 30.0);
        assert_eq!(stop, Some(1.0));
    }

    #[test]
    fn adaptive_drain_ends_a_quiet_time_after_the_traffic_stops() {
        let mut clock = Clock::new(adaptive(1.0, 1.0));
        // Traffic until +3s: the first quiet sample is at +3.1s, the stop 1s
        // after the last active one.
        let stop = sample_until_stopped(&mut clock, |now| Ok(Seen::on_port(80, now <= 3.0)), 30.0)
            .unwrap();
        assert!((4.0..4.11).contains(&stop), "stopped at {stop}");
    }

    #[test]
    fn adaptive_drain_lasts_the_maximum_if_the_traffic_never_stops() {
        let mut clock = Clock::new(adaptive(1.0, 1.0));
        let stop = sample_until_stopped(&mut clock, |_| Ok(Seen::on_port(80, true)), 30.0);
        assert_eq!(stop, Some(20.0));
    }

    #[test]
    fn adaptive_drain_falls_back_to_the_fixed_drain_when_traffic_cannot_be_read() {
        let mut clock = Clock::new(adaptive(1.0, 1.0));
        clock.handle(signal(Signal::TERM), 0.0);
        let lines = clock.logs(Event::Activity(Err("no netlink".into())), 0.0);
        assert!(
            lines[0].contains("cannot measure the app's traffic (no netlink)"),
            "{lines:?}"
        );
        assert_eq!(clock.deadline(), Some(clock.at(20.0)));
        assert_eq!(clock.handle(Timeout, 20.0), vec![Forward(Signal::TERM)]);
    }

    #[test]
    fn expensive_samples_are_spaced_out_but_the_quiet_end_is_kept() {
        let mut clock = Clock::new(adaptive(1.0, 3.0));
        clock.handle(signal(Signal::TERM), 0.0);
        let costly = |active| Seen {
            cost: Duration::from_millis(20),
            ..Seen::on_port(80, active)
        };
        clock.handle(Event::Activity(Ok(costly(false))), 0.0);
        // 20 ms of sampling, then 980 ms without: 2% of the time.
        assert_eq!(clock.deadline(), Some(clock.at(1.0)));
        clock.handle(Timeout, 1.0);
        clock.handle(Event::Activity(Ok(costly(true))), 1.0);
        clock.handle(Timeout, 2.0);
        clock.handle(Event::Activity(Ok(costly(false))), 2.0);
        clock.handle(Timeout, 3.0);
        clock.handle(Event::Activity(Ok(costly(false))), 3.0);
        // Quiet since +1 s: the sample that can end the drain comes at +4 s.
        assert_eq!(clock.deadline(), Some(clock.at(4.0)));
        clock.handle(Timeout, 4.0);
        assert_eq!(
            clock.handle(Event::Activity(Ok(costly(false))), 4.0),
            vec![Forward(Signal::TERM)]
        );
    }

    #[test]
    fn adaptive_drain_samples_only_while_draining() {
        let mut clock = Clock::new(adaptive(1.0, 1.0));
        assert_eq!(clock.deadline(), None);
        clock.handle(signal(Signal::TERM), 0.0);
        assert_eq!(
            clock.handle(Event::Activity(Ok(Seen::on_port(80, false))), 0.0),
            vec![]
        );
        assert_eq!(clock.deadline(), Some(clock.at(0.1)));
        // A second SIGTERM ends it, and sampling with it.
        assert_eq!(
            clock.handle(signal(Signal::TERM), 0.05),
            vec![Forward(Signal::TERM)]
        );
        assert_eq!(clock.deadline(), Some(clock.at(28.0)));
        assert_eq!(
            clock.handle(Event::Activity(Ok(Seen::on_port(80, true))), 0.1),
            vec![]
        );
    }

    #[test]
    fn the_longest_durations_config_allows_stay_representable() {
        let year = secs(365.0 * 24.0 * 3600.0);
        let mut clock = Clock::new(Plan {
            drain: year - secs(2.0),
            grace: year,
            cleanup: year,
            adaptive: Some(Adaptive {
                min: year - secs(2.0),
                quiet: year,
            }),
            ..plan()
        });
        clock.handle(signal(Signal::TERM), 0.0);
        clock.handle(Event::Activity(Ok(Seen::on_port(80, false))), 0.0);
        clock.handle(exited_leaving_others(ChildStatus::Exited(0)), 1.0);
        assert!(clock.deadline().is_some());
    }
}
