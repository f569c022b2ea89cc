//! Signal numbers, their names, and the parser for `--stop-signal`.
//!
//! A plain number rather than `nix`'s enum, because drainit forwards real-time
//! signals too (SIGRTMIN+n), which no enum covers.

use std::fmt;

/// A signal number, 1 to SIGRTMAX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

/// Standard signal names without the `SIG` prefix, first name wins for display.
const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The signals drainit's code names.
#[allow(missing_docs)]
impl Signal {
    pub const HUP: Signal = Signal(libc::SIGHUP);
    pub const INT: Signal = Signal(libc::SIGINT);
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    pub const CONT: Signal = Signal(libc::SIGCONT);
    pub const WINCH: Signal = Signal(libc::SIGWINCH);

    /// Signals that report a fault of the process itself. drainit leaves them
    /// at their default action, as tini does: blocking them would hide a crash.
    pub const FAULTS: [Signal; 7] = [
        Signal(libc::SIGSEGV),
        Signal(libc::SIGBUS),
        Signal(libc::SIGFPE),
        Signal(libc::SIGILL),
        Signal(libc::SIGABRT),
        Signal(libc::SIGTRAP),
        Signal(libc::SIGSYS),
    ];

    /// Whether drainit blocks this signal and takes it with sigtimedwait:
    /// every signal but SIGKILL and SIGSTOP (which cannot be caught), the
    /// faults (a crash must stay a crash) and the C library's reserved
    /// signals below SIGRTMIN (32 and 33 for glibc's thread cancellation and
    /// setxid; 32 to 34 for musl). SIGPIPE is handled too: forwarded when
    /// another process sent it, dropped when drainit's own write raised it.
    pub fn is_handled(self) -> bool {
        let libc_reserved = (32..libc::SIGRTMIN()).contains(&self.0);
        !(self == Signal::KILL
            || self == Signal::STOP
            || libc_reserved
            || Signal::FAULTS.contains(&self))
    }

    /// The signal with this number, if the kernel has one.
    pub fn from_raw(number: i32) -> Option<Signal> {
        (1..=max()).contains(&number).then_some(Signal(number))
    }

    /// The signal's number, for system calls.
    pub fn as_raw(self) -> i32 {
        self.0
    }

    /// Every signal number the kernel knows, 1 to SIGRTMAX.
    pub fn all() -> impl Iterator<Item = Signal> {
        (1..=max()).map(Signal)
    }

    /// Parses `TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN+2` or `SIGRTMAX-1`.
    pub fn parse(text: &str) -> Option<Signal> {
        if let Ok(number) = text.parse::<i32>() {
            return Signal::from_raw(number);
        }
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some(&(_, number)) = NAMES.iter().find(|(n, _)| *n == name) {
            return Some(Signal(number));
        }
        parse_realtime(name)
    }
}

/// SIGRTMAX: the highest signal number (64 on Linux).
fn max() -> i32 {
    libc::SIGRTMAX()
}

/// `RTMIN`, `RTMIN+n`, `RTMAX`, `RTMAX-n`, within SIGRTMIN..=SIGRTMAX.
fn parse_realtime(name: &str) -> Option<Signal> {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let number = if let Some(rest) = name.strip_prefix("RTMIN") {
        min.checked_add(offset(rest, '+')?)?
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        max.checked_sub(offset(rest, '-')?)?
    } else {
        return None;
    };
    (min..=max).contains(&number).then_some(Signal(number))
}

/// The `n` of `+n` (or `-n`); an empty suffix is 0.
fn offset(suffix: &str, sign: char) -> Option<i32> {
    if suffix.is_empty() {
        return Some(0);
    }
    let digits = suffix.strip_prefix(sign)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `--rewrite FROM:TO`: forward TO when FROM arrives; TO `0` drops FROM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// The signal drainit receives.
    pub from: Signal,
    /// `None`: FROM is not forwarded at all (dumb-init's `-r FROM:0`).
    pub to: Option<Signal>,
}

impl Rewrite {
    /// Parses `USR1:HUP`, `SIGUSR1:SIGHUP`, `10:1` or `WINCH:0`. The error says why not.
    pub fn parse(text: &str) -> Result<Rewrite, String> {
        let expected =
            "is not a rewrite (expected FROM:TO such as USR1:HUP, or FROM:0 to drop FROM)";
        let Some((from, to)) = text.split_once(':') else {
            return Err(expected.to_string());
        };
        let (Some(from), Some(to)) = (
            Signal::parse(from),
            if to == "0" {
                Some(None)
            } else {
                Signal::parse(to).map(Some)
            },
        ) else {
            return Err(expected.to_string());
        };
        if from == Signal::CHLD || !from.is_handled() {
            return Err(format!("is refused: drainit never forwards {from}"));
        }
        Ok(Rewrite { from, to })
    }
}

impl fmt::Display for Rewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to {
            Some(to) => write!(f, "{}:{}", self.from, to),
            None => write!(f, "{}:0", self.from),
        }
    }
}

impl fmt::Display for Signal {
    /// `SIGTERM`, `SIGRTMIN+3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((name, _)) = NAMES.iter().find(|(_, n)| *n == self.0) {
            return write!(f, "SIG{name}");
        }
        let min = libc::SIGRTMIN();
        match self.0 - min {
            0 => write!(f, "SIGRTMIN"),
            offset if offset > 0 => write!(f, "SIGRTMIN+{offset}"),
            _ => write!(f, "signal {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_prefixes_cases_and_numbers() {
        for text in ["TERM", "SIGTERM", "sigterm", "term", "SigTerm", "15"] {
            assert_eq!(Signal::parse(text), Some(Signal::TERM), "{text}");
        }
        assert_eq!(Signal::parse("QUIT"), Some(Signal::QUIT));
        assert_eq!(Signal::parse("cld"), Some(Signal::CHLD));
        assert_eq!(Signal::parse("64"), Some(Signal(64)));
    }

    #[test]
    fn accepts_realtime_signals() {
        let min = libc::SIGRTMIN();
        let max = libc::SIGRTMAX();
        assert_eq!(Signal::parse("RTMIN"), Some(Signal(min)));
        assert_eq!(Signal::parse("SIGRTMIN+3"), Some(Signal(min + 3)));
        assert_eq!(Signal::parse("rtmax-1"), Some(Signal(max - 1)));
        assert_eq!(Signal::parse("RTMAX"), Some(Signal(max)));
    }

    #[test]
    fn refuses_what_is_not_a_signal() {
        for text in [
            "",
            "0",
            "-15",
            "65",
            "FOO",
            "SIG",
            "SIGTERM ",
            " TERM",
            "TERM15",
            "RTMIN+",
            "RTMIN+x",
            "RTMIN-1",
            "RTMAX+1",
            "RTMIN+99",
            "RTMIN++1",
            "RTMIN+-1",
            "9999999999999",
        ] {
            assert_eq!(Signal::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn rewrites_parse_and_refuse_what_drainit_cannot_forward() {
        let usr1_hup = Rewrite {
            from: Signal::USR1,
            to: Some(Signal::HUP),
        };
        assert_eq!(Rewrite::parse("USR1:HUP"), Ok(usr1_hup));
        assert_eq!(Rewrite::parse("sigusr1:1"), Ok(usr1_hup));
        assert_eq!(
            Rewrite::parse("WINCH:0"),
            Ok(Rewrite {
                from: Signal::WINCH,
                to: None
            })
        );
        // Whether TERM may be rewritten depends on --drain-on: config decides.
        assert!(Rewrite::parse("TERM:QUIT").is_ok());
        assert!(Rewrite::parse("PIPE:HUP").is_ok());
        for text in ["CHLD:HUP", "KILL:HUP", "SEGV:HUP"] {
            assert!(
                Rewrite::parse(text).unwrap_err().contains("never forwards"),
                "{text}"
            );
        }
        for text in [
            "",
            "USR1",
            "USR1:",
            ":HUP",
            "USR1:HUP:INT",
            "FOO:HUP",
            "USR1:00",
        ] {
            assert!(
                Rewrite::parse(text)
                    .unwrap_err()
                    .starts_with("is not a rewrite"),
                "{text}"
            );
        }
    }

    #[test]
    fn handles_every_signal_but_the_uncatchable_and_the_faults() {
        assert!(Signal::TERM.is_handled() && Signal::CHLD.is_handled());
        assert!(Signal::PIPE.is_handled());
        assert!(Signal(libc::SIGTSTP).is_handled() && Signal(libc::SIGRTMIN()).is_handled());
        for s in [
            Signal::KILL,
            Signal::STOP,
            Signal(libc::SIGSEGV),
            Signal(32),
        ] {
            assert!(!s.is_handled(), "{s}");
        }
    }

    #[test]
    fn displays_with_the_sig_prefix() {
        assert_eq!(Signal::TERM.to_string(), "SIGTERM");
        assert_eq!(Signal::CHLD.to_string(), "SIGCHLD");
        let min = libc::SIGRTMIN();
        assert_eq!(Signal(min).to_string(), "SIGRTMIN");
        assert_eq!(Signal(min + 2).to_string(), "SIGRTMIN+2");
    }

    #[test]
    fn every_displayed_name_parses_back() {
        for signal in Signal::all().filter(|s| s.0 < 32 || s.0 >= libc::SIGRTMIN()) {
            assert_eq!(Signal::parse(&signal.to_string()), Some(signal));
        }
    }
}
