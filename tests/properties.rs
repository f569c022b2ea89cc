//! Properties of the timeline over random event sequences at random times,
//! and of the parsers over random input, checked with proptest.
//!
//! The timeline is driven as the runtime drives it: every deadline it asks
//! for is honoured exactly (a `Timeout` at `next_deadline()`), and events come
//! at random instants in between.

use std::time::{Duration, Instant};

use drainit::observed::ChildStatus;
use drainit::signal::{Rewrite, Signal};
use drainit::timeline::{Action, Event, Plan, Timeline};
use proptest::prelude::*;

/// What happens to drainit, `delay_ms` after the previous thing.
#[derive(Debug, Clone)]
enum Step {
    Term,
    Int,
    Other(Signal),
    /// The app exits; `others_left`: it left processes behind.
    AppExits {
        code: i32,
        others_left: bool,
    },
    /// An orphan is reaped; `others_left`: children remain.
    Reaped {
        others_left: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Term),
        1 => Just(Step::Int),
        3 => prop_oneof![Just(Signal::HUP), Just(Signal::USR1), Just(Signal::USR2), Just(Signal::WINCH)]
            .prop_map(Step::Other),
        1 => (0..3i32, any::<bool>()).prop_map(|(code, others_left)| Step::AppExits { code, others_left }),
        2 => any::<bool>().prop_map(|others_left| Step::Reaped { others_left }),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    // drain < grace − margin, as config guarantees.
    (0u64..5_000, 1u64..5_000, 1u64..3_000, 0u64..4_000).prop_map(
        |(drain, room, margin, cleanup)| {
            let ms = Duration::from_millis;
            Plan {
                drain: ms(drain),
                adaptive: None,
                grace: ms(drain + room + margin),
                kill_margin: ms(margin),
                // Never sent as an event, so every QUIT forwarded is the stop signal.
                stop_signal: Signal::QUIT,
                drain_on: vec![Signal::TERM],
                cleanup: ms(cleanup),
                rewrites: Vec::new(),
                success_exits: Vec::new(),
                clean_up_leftovers: true,
            }
        },
    )
}

/// Every action the timeline took, with its instant in ms since the start
/// and how many events had been fed by then.
struct Trace {
    actions: Vec<(u64, usize, Action)>,
    /// Instants of the events fed, with the event.
    events: Vec<(u64, Step)>,
}

fn drive(plan: &Plan, steps: &[(u64, Step)]) -> Trace {
    let start = Instant::now();
    let ms = |at: Instant| (at - start).as_millis() as u64;
    let mut timeline = Timeline::new(plan.clone(), start);
    let mut trace = Trace {
        actions: Vec::new(),
        events: Vec::new(),
    };
    let mut now = start;
    let record = |timeline: &mut Timeline, event: Event, at: Instant, trace: &mut Trace| {
        timeline.handle(event, at);
        while let Some(action) = timeline.poll_action() {
            if !matches!(action, Action::Report(..)) {
                trace.actions.push((ms(at), trace.events.len(), action));
            }
        }
    };
    let mut app_alive = true;
    let feed = |step: &Step, app_alive: &mut bool| -> Option<Event> {
        Some(match *step {
            Step::Term => Event::Signal(Signal::TERM),
            Step::Int => Event::Signal(Signal::INT),
            Step::Other(signal) => Event::Signal(signal),
            Step::AppExits { code, others_left } => {
                if !*app_alive {
                    return None;
                }
                *app_alive = false;
                Event::Reaped {
                    app: Some(ChildStatus::Exited(code)),
                    children_left: others_left,
                }
            }
            Step::Reaped { others_left } => Event::Reaped {
                app: None,
                children_left: others_left || *app_alive,
            },
        })
    };
    for (delay, step) in steps {
        let at = now + Duration::from_millis(*delay);
        while let Some(deadline) = timeline.next_deadline().filter(|&d| d <= at) {
            now = deadline.max(now);
            record(&mut timeline, Event::Timeout, now, &mut trace);
        }
        now = at;
        if let Some(event) = feed(step, &mut app_alive) {
            trace.events.push((ms(now), step.clone()));
            record(&mut timeline, event, now, &mut trace);
        }
    }
    // Let every deadline pass; then the app and everything else go away.
    while let Some(deadline) = timeline.next_deadline() {
        now = deadline.max(now);
        record(&mut timeline, Event::Timeout, now, &mut trace);
    }
    now += Duration::from_millis(1);
    let gone = Event::Reaped {
        app: app_alive.then_some(ChildStatus::Killed(Signal::KILL)),
        children_left: false,
    };
    record(&mut timeline, gone, now, &mut trace);
    trace
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_timeline_keeps_its_promises(
        plan in plan(),
        steps in prop::collection::vec((0u64..3_000, step()), 0..25),
    ) {
        let trace = drive(&plan, &steps);
        let ms = |d: Duration| d.as_millis() as u64;
        let t0 = trace.events.iter().find(|(_, s)| matches!(s, Step::Term)).map(|(at, _)| *at);
        let app_exit = trace.events.iter().find(|(_, s)| matches!(s, Step::AppExits { .. })).map(|(at, _)| *at);

        // Exactly one exit, and nothing after it.
        let exits: Vec<usize> = trace.actions.iter().enumerate()
            .filter(|(_, (_, _, a))| matches!(a, Action::Exit(_))).map(|(i, _)| i).collect();
        prop_assert_eq!(exits.len(), 1, "{:?}", trace.actions);
        prop_assert_eq!(exits[0], trace.actions.len() - 1, "actions after the exit: {:?}", trace.actions);

        let first_term = trace.events.iter().position(|(_, s)| matches!(s, Step::Term));
        let mut killed = false;
        for (at, seen, action) in &trace.actions {
            match action {
                // The stop signal never goes out before t0 + drain unless a
                // SIGINT asked for it: a repeated SIGTERM does not cut the
                // drain short. (Leftovers of an exited app get it through
                // SignalAll, not Forward.)
                Action::Forward(s) if *s == Signal::QUIT => {
                    let (i0, t0) = match first_term {
                        Some(i0) if i0 < *seen => (i0, trace.events[i0].0),
                        _ => return Err(TestCaseError::fail("stop signal before any SIGTERM")),
                    };
                    let asked = trace.events[i0 + 1..*seen]
                        .iter()
                        .any(|(_, s)| matches!(s, Step::Int));
                    prop_assert!(*at >= t0 + ms(plan.drain) || asked,
                        "stop signal at {} before t0 {} + drain {:?}", at, t0, plan.drain);
                }
                // SIGKILL never later than grace − margin after t0. (Once
                // sent, it is sent again to processes re-parented to drainit
                // by the deaths it caused: only the first one has a deadline.)
                Action::SignalAll(s) if *s == Signal::KILL && !killed => {
                    killed = true;
                    if let Some(t0) = t0.filter(|t0| t0 <= at) {
                        prop_assert!(*at <= t0 + ms(plan.kill_after()),
                            "SIGKILL at {} after t0 {} + {:?}", at, t0, plan.kill_after());
                    }
                }
                _ => {}
            }
        }

        // drainit is gone half the margin after its SIGKILL at the latest,
        // before the platform's deadline, even if what it killed never dies.
        if let Some(t0) = t0 {
            let exit_at = trace.actions.last().map_or(0, |(at, _, _)| *at);
            let give_up = plan.kill_after() + plan.kill_margin / 2;
            prop_assert!(exit_at <= t0 + ms(give_up) + 1,
                "exit at {} after t0 {} + {:?}: {:?}", exit_at, t0, give_up, trace.actions);
        }

        // If the app was still running at t0 + grace − margin, SIGKILL went out then, exactly.
        if let Some(t0) = t0 {
            let kill_at = t0 + ms(plan.kill_after());
            if app_exit.is_none_or(|exit| exit > kill_at) {
                let killed = trace.actions.iter().any(|(at, _, a)| *at == kill_at && *a == Action::SignalAll(Signal::KILL));
                prop_assert!(killed, "no SIGKILL at {}: {:?}", kill_at, trace.actions);
            }
            // And if nothing cut the drain short, the stop signal went out at t0 + drain, exactly.
            let stop_at = t0 + ms(plan.drain);
            let i0 = first_term.unwrap_or(0);
            let cut_short = trace.events[i0 + 1..].iter().any(|(at, s)| *at <= stop_at && matches!(s, Step::Int));
            if !cut_short && app_exit.is_none_or(|exit| exit > stop_at) {
                let stopped = trace.actions.iter().any(|(at, _, a)| *at == stop_at && *a == Action::Forward(Signal::QUIT));
                prop_assert!(stopped, "no stop signal at {}: {:?}", stop_at, trace.actions);
            }
        }
    }

    #[test]
    fn parsers_never_panic(text in ".{0,40}") {
        let _ = drainit::duration::parse(&text);
        let _ = Signal::parse(&text);
        let _ = Rewrite::parse(&text);
    }

    #[test]
    fn parsers_never_panic_on_likely_input(text in "[0-9.hmsSIGTERMrtminax+:-]{0,24}") {
        let _ = drainit::duration::parse(&text);
        let _ = Signal::parse(&text);
        let _ = Rewrite::parse(&text);
    }

    #[test]
    fn durations_read_back_what_they_show(secs in any::<u64>(), nanos in 0u32..1_000_000_000) {
        let d = Duration::new(secs, nanos);
        let shown = drainit::duration::Human(d).to_string();
        prop_assert_eq!(drainit::duration::parse(&shown), Ok(d), "{}", shown);
    }
}
