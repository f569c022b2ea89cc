//! The shutdown timeline: every decision drainit makes, as a pure state machine.
//!
//! The runtime feeds it [`Event`]s with the instant they were seen
//! ([`Timeline::handle`]), carries out the [`Action`]s it queues
//! ([`Timeline::poll_action`]), and sleeps until [`Timeline::next_deadline`]:
//! the shape of quinn-proto's `Connection`. Nothing here makes a system call
//! or words a message, and the only clock is the one the runtime passes in
//! ([`Timeline::handle_with`]): what the user is told is a typed [`Report`],
//! which [`crate::render`] puts into words. So tests drive it on virtual time
//! and assert on values.
//!
//! ```text
//! t0: first SIGTERM ── drain ──▶ stop signal to the app ──▶ SIGKILL at t0 + grace − margin
//!                      (app keeps serving)                   (if anything is still alive)
//! app exits, others left ──▶ stop signal to them ── cleanup ──▶ SIGKILL ──▶ reaped: exit
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::activity::{Seen, Tally};
use crate::observed::{ChildStatus, Unmeasurable};
use crate::signal::{Rewrite, Signal};

/// How long drainit waits, after its last SIGKILL, to reap what it killed.
/// SIGKILL is not refused, so this only bounds the wait for a process stuck
/// in the kernel or one drainit cannot see exit (not its child).
pub const REAP_AFTER_KILL: Duration = Duration::from_secs(1);

/// How often the adaptive drain looks at the traffic.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// A sample that took more than 2 ms of CPU (the kernel's walk of its table
/// of connections, then 1 to 2 µs per connection) spaces the next one out, so
/// that sampling takes at most 1/50 of a core. The sample at the end of the
/// quiet time still comes on time.
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
    /// The signals that start the shutdown (`--drain-on`): SIGTERM, or the
    /// image's STOPSIGNAL.
    pub drain_on: Vec<Signal>,
    /// How long processes left behind by the app get between the stop signal and SIGKILL.
    pub cleanup: Duration,
    /// Signals forwarded as another (or not at all); the last rewrite of a signal wins.
    pub rewrites: Vec<Rewrite>,
    /// The app's exit codes that drainit reports as 0.
    pub success_exits: Vec<i32>,
    /// Whether processes the app leaves behind when it exits are stopped and
    /// killed before drainit exits: not with `--no-group` when drainit is not
    /// PID 1 (as PID 1, its exit would kill them anyway).
    pub clean_up_leftovers: bool,
}

impl Plan {
    /// When, after the first SIGTERM, drainit sends SIGKILL: grace − margin.
    /// Config ensures `drain < kill_after`.
    pub fn kill_after(&self) -> Duration {
        self.grace.saturating_sub(self.kill_margin)
    }

    /// When, after the first stop request, drainit gives up waiting for what
    /// it killed: half the kill margin after the SIGKILL, so that drainit is
    /// gone before the platform's deadline even if its SIGKILL could not land.
    pub fn give_up_after(&self) -> Duration {
        self.kill_after() + self.kill_margin / 2
    }

    /// Whether `signal` starts the shutdown.
    pub fn drains_on(&self, signal: Signal) -> bool {
        self.drain_on.contains(&signal)
    }

    /// What to forward when `signal` arrives: `None` if rewritten to nothing.
    fn rewrite(&self, signal: Signal) -> Option<Signal> {
        match self.rewrites.iter().rev().find(|r| r.from == signal) {
            Some(rewrite) => rewrite.to,
            None => Some(signal),
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
    Activity(Result<Seen, Unmeasurable>),
    /// The kernel refused to let drainit send this signal (EPERM): the app
    /// runs as another user.
    NotPermitted(Signal),
    /// The wait ended without a signal: a deadline may have come.
    Timeout,
}

/// Something the runtime must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this signal to the app: its process group (or its main process with `--no-group`).
    Forward(Signal),
    /// Send this signal to everything drainit is responsible for: the app's
    /// group and, as PID 1, every other process (the runtime knows whom).
    SignalAll(Signal),
    /// Look at the app's traffic and report with [`Event::Activity`], at once.
    Sample,
    /// Tell the user.
    Report(Report),
    /// Exit drainit with this code. Always the last action.
    Exit(i32),
}

/// What the user is told, with the facts; [`crate::render`] says how loud and
/// in which words. Instants are offsets from t0 (from the app's start before
/// any stop request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// `signal` started the shutdown: the plan's drain begins (or, with no
    /// drain, the stop signal follows at once).
    DrainStarted {
        /// The stop request (SIGTERM, or a signal of `--drain-on`).
        signal: Signal,
    },
    /// The drain is over: the stop signal goes to the app.
    Stopping {
        /// Why now.
        why: StopReason,
        /// When.
        at: Duration,
    },
    /// A stop request again, during the drain: it goes on.
    RepeatedDuringDrain {
        /// The signal repeated.
        signal: Signal,
        /// When.
        at: Duration,
    },
    /// A stop request again after the stop signal: the stop signal again.
    StoppingAgain {
        /// The signal repeated.
        signal: Signal,
    },
    /// SIGINT during the drain: forwarded now, the drain is over.
    Interrupted {
        /// What SIGINT is forwarded as.
        forward: Signal,
        /// When.
        at: Duration,
    },
    /// The app is still running at the SIGKILL deadline.
    Killing {
        /// When.
        at: Duration,
    },
    /// The app exited and left processes: they get the stop signal.
    LeftoversStopping {
        /// How the app ended.
        app: ChildStatus,
        /// When.
        at: Duration,
        /// When they get SIGKILL, from now, if they are still running.
        kill_in: Duration,
    },
    /// The processes the app left are still running at their SIGKILL time.
    LeftoversKilling {
        /// When.
        at: Duration,
    },
    /// What got SIGKILL was not all reaped in time; drainit exits anyway.
    NotReaped,
    /// The app was not reaped half the kill margin after SIGKILL: drainit gives up.
    GaveUp {
        /// The signal the kernel refused, if that is why.
        not_permitted: Option<Signal>,
    },
    /// The adaptive drain cannot read the traffic: the fixed drain it is.
    TrafficUnmeasurable {
        /// What the system said.
        why: Unmeasurable,
    },
    /// A signal rewritten to nothing was dropped.
    Dropped {
        /// The signal.
        signal: Signal,
    },
    /// A signal was forwarded as another.
    Rewritten {
        /// The signal received.
        from: Signal,
        /// The signal forwarded.
        to: Signal,
    },
    /// A signal arrived while everything is being killed: not forwarded.
    NotForwarded {
        /// The signal.
        signal: Signal,
    },
    /// drainit exits with `code`: the summary of the whole timeline.
    Exit {
        /// drainit's exit code.
        code: i32,
        /// The app's own code, when `--success-exit` turned it into 0.
        counted_as_success: Option<i32>,
        /// What happened.
        summary: Summary,
    },
}

/// Why the drain ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// No drain configured: at once.
    NoDrain,
    /// The fixed drain ran its length.
    DrainOver,
    /// The adaptive drain ran to its maximum: the traffic never stopped.
    TrafficNeverStopped {
        /// Samples that saw traffic.
        active: u32,
        /// Samples taken.
        samples: u32,
        /// Samples that saw traffic, port by port.
        by_port: Tally,
    },
    /// The adaptive drain saw no traffic for its quiet time.
    TrafficStopped {
        /// Samples that saw traffic.
        active: u32,
        /// Samples taken.
        samples: u32,
        /// When traffic was last seen.
        last_active: Duration,
        /// Samples that saw traffic, port by port.
        by_port: Tally,
    },
}

/// The exit line's account of what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Summary {
    /// The app ended by itself, nothing else happened.
    AppEnded {
        /// How.
        app: ChildStatus,
        /// How long after its start.
        after: Duration,
    },
    /// Things happened, but no stop request came.
    Unrequested(Vec<Milestone>),
    /// A stop request came: what happened from t0, and the platform's deadline.
    Requested {
        /// What happened, in order.
        milestones: Vec<Milestone>,
        /// The exit, relative to the platform's deadline at t0 + grace.
        deadline: Deadline,
    },
}

/// Where drainit's exit falls relative to the platform's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// This long before it.
    Before(Duration),
    /// This long after it.
    After(Duration),
}

/// One step of the timeline, for the exit summary. Instants as in [`Report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    /// The stop request that started the shutdown (at +0s).
    StopRequested(Signal),
    /// The stop signal to the app.
    Stopped(Signal, Duration),
    /// The stop signal again, on a repeated request.
    StoppedAgain(Signal, Duration),
    /// SIGINT ended the drain.
    Interrupted(Duration),
    /// SIGKILL to everything drainit is responsible for.
    Killed(Duration),
    /// The app ended.
    AppEnded(ChildStatus, Duration),
    /// The stop signal to the processes the app left.
    LeftoversStopped(Signal, Duration),
    /// SIGKILL to the processes the app left.
    LeftoversKilled(Duration),
    /// The processes the app left are gone.
    LeftoversGone(Duration),
    /// The kernel refused this signal.
    NotPermitted(Signal, Duration),
    /// drainit gave up waiting for what it killed.
    GaveUp(Duration),
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
    /// SIGKILL sent; waiting for the app to be reaped until `give_up_at`.
    Killed { give_up_at: Instant },
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
    /// The first stop request, if any: every instant of the shutdown counts from it.
    t0: Option<Instant>,
    stage: Stage,
    /// What happened, for the summary at exit.
    milestones: Vec<Milestone>,
    /// The adaptive drain's samples with traffic, port by port.
    tally: Tally,
    /// The last signal the kernel did not let drainit send, if any.
    not_permitted: Option<Signal>,
    /// What the runtime must do, in order: [`Timeline::poll_action`].
    actions: VecDeque<Action>,
}

/// The instant of the event being handled, read from the runtime's clock
/// the first time a decision needs it.
struct When<F> {
    clock: F,
    read: Option<Instant>,
}

impl<F: Fn() -> Instant> When<F> {
    fn get(&mut self) -> Instant {
        *self.read.get_or_insert_with(&self.clock)
    }
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
            not_permitted: None,
            // Room for the most one event queues (stop signal, SIGCONT, reports):
            // forwarding a signal allocates nothing.
            actions: VecDeque::with_capacity(8),
        }
    }

    /// The plan it follows.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The next instant at which something is due, if any: the runtime must
    /// call [`Timeline::handle`] (with [`Event::Timeout`]) no later than that.
    #[inline]
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.stage {
            Stage::Draining(sampling) => {
                let end = self.t0.map(|t0| t0 + self.plan.drain);
                end.map(|end| sampling.map_or(end, |s| s.next.min(end)))
            }
            Stage::Stopped => self.kill_at(),
            Stage::CleaningUp { kill_at, .. } => Some(kill_at),
            Stage::Killed { give_up_at } | Stage::Reaping { give_up_at, .. } => Some(give_up_at),
            Stage::Running | Stage::Exited => None,
        }
    }

    /// The next thing to do, in order, until `None`.
    #[inline]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Handles an event seen at `now`, after firing every deadline that has
    /// passed (so a storm of signals cannot push a deadline back). What to do
    /// comes out of [`Timeline::poll_action`].
    pub fn handle(&mut self, event: Event, now: Instant) {
        self.handle_with(event, || now);
    }

    /// [`Timeline::handle`], with the instant read from `clock` only if a
    /// decision needs it: forwarding a signal while nothing is due does not,
    /// and that is every forwarded signal's path, where the clock (std's
    /// `Instant::now`, the C library's wrapper, the vDSO's code and data) would
    /// be three more pages to touch, cold, on the forwarding latency. Read
    /// once at most.
    pub fn handle_with(&mut self, event: Event, clock: impl Fn() -> Instant) {
        let mut now = When { clock, read: None };
        while self
            .next_deadline()
            .is_some_and(|deadline| now.get() >= deadline)
        {
            self.on_deadline(now.get());
        }
        match event {
            Event::Signal(signal) => self.on_signal(signal, &mut now),
            Event::Reaped { app, children_left } => self.on_reaped(app, children_left, now.get()),
            Event::Activity(sample) => self.on_activity(sample, now.get()),
            Event::NotPermitted(signal) => self.on_not_permitted(signal, now.get()),
            Event::Timeout => {}
        }
    }

    // Inline, with the rare handlers out of line (`#[inline(never)]`): the
    // forwarding path, handle_with → on_signal → push, then stays a few
    // contiguous cache lines of the runtime's loop.
    #[inline]
    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    #[inline(never)]
    fn report(&mut self, report: Report) {
        self.actions.push_back(Action::Report(report));
    }

    /// The SIGKILL deadline of a termination under way.
    fn kill_at(&self) -> Option<Instant> {
        self.t0.map(|t0| t0 + self.plan.kill_after())
    }

    #[inline(never)]
    fn on_deadline(&mut self, now: Instant) {
        match self.stage {
            Stage::Draining(sampling) => {
                let end = self.t0.map_or(now, |t0| t0 + self.plan.drain);
                if now >= end {
                    let why = match sampling {
                        Some(s) => StopReason::TrafficNeverStopped {
                            active: s.active,
                            samples: s.samples,
                            by_port: self.tally.clone(),
                        },
                        None => StopReason::DrainOver,
                    };
                    self.stop(why, now);
                } else if let Some(mut sampling) = sampling {
                    // The next sample is scheduled when the answer to this one comes.
                    sampling.next = end;
                    self.stage = Stage::Draining(Some(sampling));
                    self.push(Action::Sample);
                }
            }
            Stage::Stopped => {
                let at = self.since(now);
                self.milestones.push(Milestone::Killed(at));
                self.report(Report::Killing { at });
                self.push(Action::SignalAll(Signal::KILL));
                let t0 = self.t0.unwrap_or(now);
                self.stage = Stage::Killed {
                    give_up_at: (t0 + self.plan.give_up_after()).max(now),
                };
            }
            Stage::CleaningUp { app, .. } => {
                let at = self.since(now);
                self.milestones.push(Milestone::LeftoversKilled(at));
                self.report(Report::LeftoversKilling { at });
                self.push(Action::SignalAll(Signal::KILL));
                self.stage = Stage::Reaping {
                    app,
                    give_up_at: self.reap_until(now),
                };
            }
            Stage::Killed { .. } => {
                self.report(Report::GaveUp {
                    not_permitted: self.not_permitted,
                });
                self.milestones.push(Milestone::GaveUp(self.since(now)));
                self.finish(ChildStatus::Killed(Signal::KILL), now);
            }
            Stage::Reaping { app, .. } => {
                self.report(Report::NotReaped);
                self.finish(app, now);
            }
            Stage::Running | Stage::Exited => {}
        }
    }

    /// Until when to reap what got SIGKILL: [`REAP_AFTER_KILL`], and never
    /// past the give-up time of a termination under way.
    fn reap_until(&self, now: Instant) -> Instant {
        let reap_until = now + REAP_AFTER_KILL;
        match self.t0 {
            Some(t0) => reap_until.min((t0 + self.plan.give_up_after()).max(now)),
            None => reap_until,
        }
    }

    fn on_signal(&mut self, signal: Signal, now: &mut When<impl Fn() -> Instant>) {
        if signal == Signal::CHLD || self.stage == Stage::Exited {
            return;
        }
        if self.plan.drains_on(signal) {
            return self.on_stop_request(signal, now.get());
        }
        let Some(forward) = self.plan.rewrite(signal) else {
            return self.report(Report::Dropped { signal });
        };
        match self.stage {
            Stage::Killed { .. } | Stage::Reaping { .. } => {
                self.report(Report::NotForwarded { signal })
            }
            Stage::Draining(_) if signal == Signal::INT => {
                let at = self.since(now.get());
                self.milestones.push(Milestone::Interrupted(at));
                self.report(Report::Interrupted { forward, at });
                self.push(Action::Forward(forward));
                self.resume_stopped(forward, Action::Forward);
                self.stage = Stage::Stopped;
            }
            _ => {
                if forward != signal {
                    self.report(Report::Rewritten {
                        from: signal,
                        to: forward,
                    });
                }
                self.push(Action::Forward(forward));
            }
        }
    }

    /// A signal of `--drain-on` (SIGTERM by default): the platform asks the app to stop.
    #[inline(never)]
    fn on_stop_request(&mut self, signal: Signal, now: Instant) {
        match self.stage {
            Stage::Running => self.start_drain(signal, now),
            // Kubernetes retries the stop from the start when the kubelet or
            // the runtime restarts mid-termination: a repeat must not cut
            // short the drain it is there for.
            Stage::Draining(_) => self.report(Report::RepeatedDuringDrain {
                signal,
                at: self.since(now),
            }),
            Stage::Stopped => {
                let stop = self.plan.stop_signal;
                self.milestones
                    .push(Milestone::StoppedAgain(stop, self.since(now)));
                self.report(Report::StoppingAgain { signal });
                self.push(Action::Forward(stop));
                self.resume_stopped(stop, Action::Forward);
            }
            // The platform's deadline now bounds the cleanup, or the reaping, too.
            Stage::CleaningUp { app, kill_at } if self.t0.is_none() => {
                self.t0 = Some(now);
                self.milestones.push(Milestone::StopRequested(signal));
                let kill_at = kill_at.min(now + self.plan.kill_after());
                self.stage = Stage::CleaningUp { app, kill_at };
            }
            Stage::Reaping { app, give_up_at } if self.t0.is_none() => {
                self.t0 = Some(now);
                self.milestones.push(Milestone::StopRequested(signal));
                let give_up_at = give_up_at.min(now + self.plan.give_up_after());
                self.stage = Stage::Reaping { app, give_up_at };
            }
            Stage::CleaningUp { .. }
            | Stage::Killed { .. }
            | Stage::Reaping { .. }
            | Stage::Exited => {}
        }
    }

    /// SIGCONT after a signal meant to stop the app, as systemd sends it: a
    /// process stopped by SIGSTOP (a debugger, job control) would otherwise
    /// not handle it until SIGKILL. (SIGKILL itself ends a stopped process.)
    fn resume_stopped(&mut self, sent: Signal, to: fn(Signal) -> Action) {
        if sent != Signal::CONT && sent != Signal::KILL {
            self.push(to(Signal::CONT));
        }
    }

    fn start_drain(&mut self, signal: Signal, now: Instant) {
        self.t0 = Some(now);
        self.milestones.push(Milestone::StopRequested(signal));
        self.report(Report::DrainStarted { signal });
        let plan = &self.plan;
        if plan.drain.is_zero() {
            self.stop(StopReason::NoDrain, now);
        } else if plan.adaptive.is_some() {
            // A first sample now: the baseline the next ones compare with.
            self.stage = Stage::Draining(Some(Sampling {
                last_active: now,
                next: now + plan.drain,
                samples: 0,
                active: 0,
            }));
            self.push(Action::Sample);
        } else {
            self.stage = Stage::Draining(None);
        }
    }

    /// A traffic sample came back: end the drain if it has been quiet long
    /// enough, else schedule the next sample.
    #[inline(never)]
    fn on_activity(&mut self, sample: Result<Seen, Unmeasurable>, now: Instant) {
        let (Stage::Draining(Some(mut sampling)), Some(t0), Some(adaptive)) =
            (self.stage, self.t0, self.plan.adaptive)
        else {
            return;
        };
        let seen = match sample {
            Ok(seen) => seen,
            Err(why) => {
                self.report(Report::TrafficUnmeasurable { why });
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
            let why = StopReason::TrafficStopped {
                active: sampling.active,
                samples: sampling.samples,
                last_active: self.since(sampling.last_active),
                by_port: self.tally.clone(),
            };
            return self.stop(why, now);
        }
        sampling.next = (now + SAMPLE_INTERVAL.max(seen.cost * SAMPLE_TIME_SHARE))
            .min(quiet_end)
            .min(t0 + self.plan.drain);
        self.stage = Stage::Draining(Some(sampling));
    }

    #[inline(never)]
    fn on_not_permitted(&mut self, signal: Signal, now: Instant) {
        if self.not_permitted != Some(signal) {
            self.milestones
                .push(Milestone::NotPermitted(signal, self.since(now)));
        }
        self.not_permitted = Some(signal);
    }

    /// Sends the stop signal: the drain is over.
    fn stop(&mut self, why: StopReason, now: Instant) {
        let stop = self.plan.stop_signal;
        let at = self.since(now);
        self.milestones.push(Milestone::Stopped(stop, at));
        self.report(Report::Stopping { why, at });
        self.push(Action::Forward(stop));
        self.resume_stopped(stop, Action::Forward);
        self.stage = Stage::Stopped;
    }

    #[inline(never)]
    fn on_reaped(&mut self, app: Option<ChildStatus>, children_left: bool, now: Instant) {
        match (self.stage, app) {
            (Stage::Exited, _) => {}
            (Stage::CleaningUp { app, .. } | Stage::Reaping { app, .. }, _) if !children_left => {
                self.milestones
                    .push(Milestone::LeftoversGone(self.since(now)));
                self.finish(app, now)
            }
            // Processes re-parented to drainit after its SIGKILL (their
            // parent just died of it) get one too.
            (Stage::Reaping { .. }, _) => self.push(Action::SignalAll(Signal::KILL)),
            (_, None) => {}
            (_, Some(app)) => {
                self.milestones
                    .push(Milestone::AppEnded(app, self.since(now)));
                if !children_left || !self.plan.clean_up_leftovers {
                    self.finish(app, now);
                } else if matches!(self.stage, Stage::Killed { .. }) {
                    self.stage = Stage::Reaping {
                        app,
                        give_up_at: self.reap_until(now),
                    };
                    self.push(Action::SignalAll(Signal::KILL));
                } else {
                    self.clean_up(app, now);
                }
            }
        }
    }

    /// The app exited but left processes: stop signal to them, SIGKILL after
    /// the cleanup time, or at the termination's SIGKILL deadline if sooner.
    fn clean_up(&mut self, app: ChildStatus, now: Instant) {
        let mut kill_at = now + self.plan.cleanup;
        if let Some(deadline) = self.kill_at() {
            kill_at = kill_at.min(deadline);
        }
        let stop = self.plan.stop_signal;
        let at = self.since(now);
        self.milestones.push(Milestone::LeftoversStopped(stop, at));
        self.report(Report::LeftoversStopping {
            app,
            at,
            kill_in: kill_at.saturating_duration_since(now),
        });
        self.push(Action::SignalAll(stop));
        self.resume_stopped(stop, Action::SignalAll);
        self.stage = Stage::CleaningUp { app, kill_at };
    }

    /// Exits with the app's status: the summary, then the exit.
    fn finish(&mut self, app: ChildStatus, now: Instant) {
        let milestones = std::mem::take(&mut self.milestones);
        let summary = match self.t0 {
            None if matches!(milestones.as_slice(), [] | [Milestone::AppEnded(..)]) => {
                Summary::AppEnded {
                    app,
                    after: now.saturating_duration_since(self.started),
                }
            }
            None => Summary::Unrequested(milestones),
            Some(t0) => {
                let platform_kill = t0 + self.plan.grace;
                let deadline = match platform_kill.checked_duration_since(now) {
                    Some(left) => Deadline::Before(left),
                    None => Deadline::After(now - platform_kill),
                };
                Summary::Requested {
                    milestones,
                    deadline,
                }
            }
        };
        let own = app.exit_code();
        let counted_as_success =
            (own != 0 && self.plan.success_exits.contains(&own)).then_some(own);
        let code = if counted_as_success.is_some() { 0 } else { own };
        self.report(Report::Exit {
            code,
            counted_as_success,
            summary,
        });
        self.push(Action::Exit(code));
        self.stage = Stage::Exited;
    }

    /// The time since t0 (or since the start, before any stop request).
    fn since(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.t0.unwrap_or(self.started))
    }
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
            drain_on: vec![Signal::TERM],
            cleanup: secs(2.0),
            rewrites: Vec::new(),
            success_exits: Vec::new(),
            clean_up_leftovers: true,
        }
    }

    /// A timeline on virtual time: `at(s)` is `s` seconds after the start.
    struct Clock {
        start: Instant,
        timeline: Timeline,
        /// Whom the last signals reach, for the words of the reports.
        reach: crate::render::Reach,
    }

    impl Clock {
        fn new(plan: Plan) -> Clock {
            let start = Instant::now();
            Clock {
                start,
                timeline: Timeline::new(plan, start),
                reach: crate::render::Reach::Everyone,
            }
        }

        fn at(&self, s: f64) -> Instant {
            self.start + secs(s)
        }

        /// Every action of `event` at `s`, reports included.
        fn all(&mut self, event: Event, s: f64) -> Vec<Action> {
            self.timeline.handle(event, self.at(s));
            std::iter::from_fn(|| self.timeline.poll_action()).collect()
        }

        /// The actions of `event` at `s`, without reports.
        fn handle(&mut self, event: Event, s: f64) -> Vec<Action> {
            let all = self.all(event, s);
            all.into_iter()
                .filter(|a| !matches!(a, Action::Report(..)))
                .collect()
        }

        /// The reports of `event` at `s`.
        fn reports(&mut self, event: Event, s: f64) -> Vec<Report> {
            let all = self.all(event, s);
            all.into_iter()
                .filter_map(|a| match a {
                    Action::Report(report) => Some(report),
                    _ => None,
                })
                .collect()
        }

        /// The reports of `event` at `s`, in the words of the log (as PID 1).
        fn logs(&mut self, event: Event, s: f64) -> Vec<String> {
            let reports = self.reports(event, s);
            let context = crate::render::Context {
                plan: self.timeline.plan(),
                reach: self.reach,
            };
            reports
                .iter()
                .map(|report| crate::render::render(report, context))
                .collect()
        }

        fn deadline(&self) -> Option<Instant> {
            self.timeline.next_deadline()
        }
    }

    use Action::{Exit, Forward, SignalAll};
    use Event::Timeout;

    const KILL_ALL: Action = SignalAll(Signal::KILL);
    const CONT: Action = Forward(Signal::CONT);

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
        // SIGCONT after it, so that a stopped app gets to handle it.
        assert_eq!(
            clock.handle(Timeout, 15.0),
            vec![Forward(Signal::QUIT), CONT]
        );
        assert_eq!(clock.deadline(), Some(clock.at(38.0)));
        assert_eq!(clock.handle(Timeout, 37.9), vec![]);
        assert_eq!(clock.handle(Timeout, 38.0), vec![KILL_ALL]);
        // Half the margin to reap it, so that drainit is gone before the platform's deadline.
        assert_eq!(clock.deadline(), Some(clock.at(39.0)));
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
            vec![Forward(Signal::TERM), CONT]
        );
        assert_eq!(clock.deadline(), Some(clock.at(29.0)));
    }

    #[test]
    fn late_wakeup_fires_both_deadlines_in_order() {
        let mut clock = Clock::new(plan());
        clock.handle(signal(Signal::TERM), 0.0);
        assert_eq!(
            clock.handle(Timeout, 28.5),
            vec![Forward(Signal::TERM), CONT, KILL_ALL]
        );
    }

    #[test]
    fn a_signal_storm_cannot_delay_the_deadlines() {
        let mut clock = Clock::new(plan());
        clock.handle(signal(Signal::TERM), 0.0);
        assert_eq!(
            clock.handle(signal(Signal::HUP), 5.0),
            vec![Forward(Signal::TERM), CONT, Forward(Signal::HUP)]
        );
        assert_eq!(clock.handle(signal(Signal::USR1), 28.0), vec![KILL_ALL]);
    }

    #[test]
    fn a_repeated_sigterm_does_not_cut_the_drain_short() {
        let mut clock = Clock::new(plan());
        clock.handle(signal(Signal::TERM), 0.0);
        // Kubernetes retries the stop when the kubelet restarts mid-termination.
        assert_eq!(clock.handle(signal(Signal::TERM), 1.0), vec![]);
        assert_eq!(clock.deadline(), Some(clock.at(5.0)));
        assert_eq!(
            clock.handle(Timeout, 5.0),
            vec![Forward(Signal::TERM), CONT]
        );
        // The kill deadline still counts from the first SIGTERM.
        assert_eq!(clock.deadline(), Some(clock.at(28.0)));
    }

    #[test]
    fn every_drain_on_signal_starts_the_drain_and_others_are_forwarded() {
        let mut clock = Clock::new(Plan {
            drain_on: vec![Signal::TERM, Signal::QUIT],
            stop_signal: Signal::QUIT,
            ..plan()
        });
        assert_eq!(clock.handle(signal(Signal::QUIT), 1.0), vec![]);
        assert_eq!(clock.deadline(), Some(clock.at(6.0)));
        assert_eq!(clock.handle(signal(Signal::TERM), 2.0), vec![]);
        assert_eq!(
            clock.handle(Timeout, 6.0),
            vec![Forward(Signal::QUIT), CONT]
        );
        // Without TERM in the list, TERM is forwarded like any other signal.
        let mut clock = Clock::new(Plan {
            drain_on: vec![Signal::QUIT],
            ..plan()
        });
        assert_eq!(
            clock.handle(signal(Signal::TERM), 1.0),
            vec![Forward(Signal::TERM)]
        );
        assert_eq!(clock.deadline(), None);
    }

    #[test]
    fn the_drain_start_names_the_signal_that_started_it() {
        let mut clock = Clock::new(Plan {
            drain_on: vec![Signal::QUIT],
            ..plan()
        });
        let lines = clock.logs(signal(Signal::QUIT), 0.0);
        assert!(
            lines[0].starts_with("SIGQUIT: draining for 5s"),
            "{lines:?}"
        );
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
            vec![Forward(Signal::QUIT), CONT]
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
            vec![Forward(Signal::INT), CONT]
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
        let mut clock = Clock::new(plan());
        // Not PID 1: the runtime's last signals reach the group and drainit's children.
        clock.reach = crate::render::Reach::GroupAndChildren;
        clock.handle(signal(Signal::TERM), 0.0);
        clock.handle(Timeout, 5.0);
        clock.handle(Timeout, 28.0);
        let lines = clock.logs(ChildExited(ChildStatus::Killed(Signal::KILL)), 28.01);
        assert_eq!(
            lines,
            vec![
                "exit 137: SIGTERM at +0s, SIGTERM to app at +5.00s, SIGKILL to the app's group \
                 and drainit's children at +28.00s, app killed by SIGKILL at +28.01s, 1.99s \
                 before the deadline"
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
            vec![SignalAll(Signal::TERM), SignalAll(Signal::CONT)]
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
            vec![Forward(Signal::QUIT), CONT]
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
        active: impl Fn(f64) -> Result<bool, String>,
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
                        let seen = active(now).map(|active| Seen::on_port(80, active));
                        let event = Event::Activity(seen.map_err(Unmeasurable));
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
        let stop = sample_until_stopped(&mut clock, |_| Ok(false), 30.0);
        assert_eq!(stop, Some(1.0));
    }

    #[test]
    fn adaptive_drain_ends_a_quiet_time_after_the_traffic_stops() {
        let mut clock = Clock::new(adaptive(1.0, 1.0));
        // Traffic until +3s: the first quiet sample is at +3.1s, the stop 1s
        // after the last active one.
        let stop = sample_until_stopped(&mut clock, |now| Ok(now <= 3.0), 30.0).unwrap();
        assert!((4.0..4.11).contains(&stop), "stopped at {stop}");
    }

    #[test]
    fn adaptive_drain_lasts_the_maximum_if_the_traffic_never_stops() {
        let mut clock = Clock::new(adaptive(1.0, 1.0));
        let stop = sample_until_stopped(&mut clock, |_| Ok(true), 30.0);
        assert_eq!(stop, Some(20.0));
    }

    #[test]
    fn adaptive_drain_falls_back_to_the_fixed_drain_when_traffic_cannot_be_read() {
        let mut clock = Clock::new(adaptive(1.0, 1.0));
        clock.handle(signal(Signal::TERM), 0.0);
        let unmeasurable = Unmeasurable("no netlink".into());
        let lines = clock.logs(Event::Activity(Err(unmeasurable)), 0.0);
        assert!(
            lines[0].contains("cannot measure the app's traffic (no netlink)"),
            "{lines:?}"
        );
        assert_eq!(clock.deadline(), Some(clock.at(20.0)));
        assert_eq!(
            clock.handle(Timeout, 20.0),
            vec![Forward(Signal::TERM), CONT]
        );
    }

    #[test]
    fn expensive_samples_are_spaced_out_but_the_quiet_end_is_kept() {
        let mut clock = Clock::new(adaptive(1.0, 3.0));
        clock.handle(signal(Signal::TERM), 0.0);
        let costly = |active| {
            Event::Activity(Ok(Seen {
                cost: Duration::from_millis(20),
                ..Seen::on_port(80, active)
            }))
        };
        clock.handle(costly(false), 0.0);
        // 20 ms of sampling, then 980 ms without: 2% of the time.
        assert_eq!(clock.deadline(), Some(clock.at(1.0)));
        for (at, active) in [(1.0, true), (2.0, false), (3.0, false)] {
            clock.handle(Timeout, at);
            clock.handle(costly(active), at);
        }
        // Quiet since +1 s: the sample that can end the drain comes at +4 s.
        assert_eq!(clock.deadline(), Some(clock.at(4.0)));
        clock.handle(Timeout, 4.0);
        let lines = clock.logs(costly(false), 4.0);
        assert!(
            lines[0].starts_with(
                "drain over after +4.00s: no new connection and no byte received for 3s \
                 (1 of 4 samples saw traffic, the last at +1.00s; port 80 in 1): sending SIGTERM"
            ),
            "{lines:?}"
        );
    }

    #[test]
    fn the_decision_line_counts_samples_port_by_port() {
        let seen = |ports: Vec<(u16, bool)>, unplaced| {
            Event::Activity(Ok(Seen {
                ports,
                unplaced,
                cost: Duration::ZERO,
            }))
        };
        let mut clock = Clock::new(adaptive(0.0, 1.0));
        clock.handle(signal(Signal::TERM), 0.0);
        clock.handle(seen(vec![], 0), 0.0);
        clock.handle(Timeout, 0.1);
        clock.handle(seen(vec![(8080, true), (9090, false)], 0), 0.1);
        clock.handle(Timeout, 0.2);
        clock.handle(seen(vec![(8080, false), (9090, false)], 3), 0.2);
        clock.handle(Timeout, 1.2);
        let lines = clock.logs(seen(vec![(8080, false), (9090, false)], 0), 1.2);
        assert!(
            lines[0].contains(
                "(2 of 3 samples saw traffic, the last at +0.20s; port 8080 in 1, port 9090 in 0, \
                 connections too brief to tell their port in 1)"
            ),
            "{lines:?}"
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
        // A SIGINT ends it, and sampling with it.
        assert_eq!(
            clock.handle(signal(Signal::INT), 0.05),
            vec![Forward(Signal::INT), CONT]
        );
        assert_eq!(clock.deadline(), Some(clock.at(28.0)));
        assert_eq!(
            clock.handle(Event::Activity(Ok(Seen::on_port(80, true))), 0.1),
            vec![]
        );
    }

    #[test]
    fn a_sigkill_that_cannot_land_gives_up_at_half_the_margin() {
        let mut clock = Clock::new(plan());
        clock.handle(signal(Signal::TERM), 0.0);
        clock.handle(Timeout, 5.0);
        assert_eq!(clock.handle(Timeout, 28.0), vec![KILL_ALL]);
        assert_eq!(
            clock.handle(Event::NotPermitted(Signal::KILL), 28.0),
            vec![]
        );
        assert_eq!(clock.deadline(), Some(clock.at(29.0)));
        assert_eq!(clock.handle(Timeout, 28.99), vec![]);
        let lines = clock.logs(Timeout, 29.0);
        assert!(
            lines[0].contains("not reaped 1s after SIGKILL (SIGKILL was not permitted)"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("exit 137: ")
                && lines[1].contains("SIGKILL not permitted at +28.00s"),
            "{lines:?}"
        );
        assert!(lines[1].ends_with("1.00s before the deadline"), "{lines:?}");
        assert_eq!(clock.deadline(), None);
    }

    #[test]
    fn reaping_after_the_kill_never_runs_past_half_the_margin() {
        let mut clock = Clock::new(plan());
        clock.handle(signal(Signal::TERM), 0.0);
        clock.handle(Timeout, 5.0);
        clock.handle(Timeout, 28.0);
        assert_eq!(
            clock.handle(
                exited_leaving_others(ChildStatus::Killed(Signal::KILL)),
                28.5
            ),
            vec![KILL_ALL]
        );
        assert_eq!(clock.deadline(), Some(clock.at(29.0)));
        assert_eq!(clock.handle(Timeout, 29.0), vec![Exit(137)]);
    }

    #[test]
    fn without_cleanup_of_leftovers_the_app_exit_ends_drainit_at_once() {
        let mut clock = Clock::new(Plan {
            clean_up_leftovers: false,
            ..plan()
        });
        assert_eq!(
            clock.handle(exited_leaving_others(ChildStatus::Exited(4)), 1.0),
            vec![Exit(4)]
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
