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

impl ChildStatus {
    /// How it ended, without saying whose end it was (`exited 0`, `killed
    /// by SIGKILL`): for the orphans drainit reaps, which are not the app.
    pub fn ending(self) -> impl fmt::Display {
        struct Ending(ChildStatus);
        impl fmt::Display for Ending {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    ChildStatus::Exited(code) => write!(f, "exited {code}"),
                    ChildStatus::Killed(signal) => write!(f, "killed by {signal}"),
                }
            }
        }
        Ending(self)
    }
}

/// `app exited 0`, `app killed by SIGKILL`.
impl fmt::Display for ChildStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "app {}", self.ending())
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
