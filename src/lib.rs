#![warn(missing_docs)]
//! drainit: a container init (PID 1) that drains before it stops the app.
//!
//! How the pieces fit, from the outside in:
//!
//! - [`cli`] reads the command line and the `DRAINIT_*` variables into raw
//!   strings, from one table of options; [`config`] turns them into a checked
//!   [`config::Config`], refusing bad input before anything starts. It uses
//!   [`duration`] and [`signal`] to parse values.
//! - [`runtime`] is the loop: it starts the app, waits for a signal or the next
//!   deadline, reaps children, and carries out what the timeline decides.
//! - [`timeline`] is the pure state machine that makes every decision (when to
//!   forward, stop, kill, exit and what to tell the user), tested on virtual
//!   time; [`render`] alone words what it reports.
//! - [`observed`] is the vocabulary of what the runtime sees (how a child
//!   ended), shared by `sys` and `timeline` so that neither imports the other.
//! - [`sys`] holds every system call and all the `unsafe` code, and decides
//!   nothing.
//! - [`activity`] measures the app's TCP traffic from the kernel, for the
//!   adaptive drain (`--drain-quiet`).
//! - [`logger`] writes `drainit: ` lines to stderr.

pub mod activity;
pub mod cli;
pub mod config;
pub mod duration;
pub mod logger;
pub mod observed;
pub mod render;
pub mod runtime;
pub mod signal;
pub mod sys;
pub mod timeline;

/// drainit's own exit codes; otherwise it exits with the app's status.
pub mod exit_code {
    /// drainit itself failed (a system call it cannot do without).
    pub const FAILURE: i32 = 1;
    /// Bad usage or configuration, refused before the app started.
    pub const USAGE: i32 = 2;
    /// COMMAND exists but cannot be executed.
    pub const NOT_EXECUTABLE: i32 = 126;
    /// COMMAND was not found.
    pub const NOT_FOUND: i32 = 127;
}
