//! What the runtime observes of the world, in the words both [`crate::sys`]
//! and [`crate::timeline`] use: so that neither imports the other.

use std::fmt;

use crate::signal::Signal;

/// How a child ended.
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

impl fmt::Display for ChildStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildStatus::Exited(code) => write!(f, "app exited {code}"),
            ChildStatus::Killed(signal) => write!(f, "app killed by {signal}"),
        }
    }
}

/// Why the app's traffic cannot be measured, as the system said it: carried
/// through the timeline to the log line untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmeasurable(pub String);

impl fmt::Display for Unmeasurable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
