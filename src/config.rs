//! From flags and `DRAINIT_*` environment variables to one checked [`Config`].
//!
//! Two steps, as in ripgrep: [`crate::cli`] reads raw strings (each flag also
//! reads its environment variable), then this module parses and checks them,
//! knowing where each value came from, so that an error names exactly what the
//! user wrote and `--check` can say why each value is what it is. Nothing
//! starts on bad input.

use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::time::Duration;

use log::LevelFilter;

use crate::activity::{self, Cidr, Watch};
use crate::cli::{self, Origin, Parsed, Raw};
use crate::duration::{self, Human, Refused};
use crate::render::PlanText;
use crate::signal::{Rewrite, Signal};
use crate::timeline::{Adaptive, Plan};

/// Kubernetes' default terminationGracePeriodSeconds.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
const DEFAULT_KILL_MARGIN: Duration = Duration::from_secs(2);
const DEFAULT_CLEANUP: Duration = Duration::from_secs(2);
/// The drain under Kubernetes: endpoint removal usually reaches kube-proxy,
/// ingress controllers and load balancers within a few seconds.
const KUBERNETES_DRAIN: Duration = Duration::from_secs(5);
/// Set in every Kubernetes container.
const KUBERNETES_ENV: &str = "KUBERNETES_SERVICE_HOST";

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Not given: drainit's default.
    Default,
    /// The default that applies because `KUBERNETES_SERVICE_HOST` is set.
    Kubernetes,
    /// A `DRAINIT_*` environment variable.
    Env(String),
    /// A command-line flag such as `--drain`.
    Flag(String),
}

impl From<&Origin> for Source {
    fn from(origin: &Origin) -> Source {
        match origin {
            Origin::Flag(flag) => Source::Flag(flag.clone()),
            Origin::Env(name) => Source::Env(name.to_string()),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::Kubernetes => write!(f, "default under Kubernetes: {KUBERNETES_ENV} is set"),
            Source::Env(name) => write!(f, "from {name}"),
            Source::Flag(name) => write!(f, "from {name}"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The checked value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl Setting<Duration> {
    /// `DRAINIT_DRAIN=5s`, `--grace=30s`, `default 2s`.
    fn describe(&self) -> String {
        let value = Human(self.value);
        match &self.source {
            Source::Default => format!("default {value}"),
            Source::Kubernetes => format!("default {value} under Kubernetes"),
            Source::Env(name) | Source::Flag(name) => format!("{name}={value}"),
        }
    }
}

impl<T: fmt::Display> Setting<Vec<T>> {
    /// `--drain-ports=8080,8443` if given, None for the default.
    fn given(&self) -> Option<String> {
        let name = match &self.source {
            Source::Env(name) | Source::Flag(name) => name,
            Source::Default | Source::Kubernetes => return None,
        };
        let values: Vec<String> = self.value.iter().map(T::to_string).collect();
        Some(format!("{name}={}", values.join(",")))
    }
}

/// When drainit makes itself a child subreaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subreaper {
    /// When it is not PID 1: the only case where orphans would escape it.
    Auto,
    /// Always (`--subreaper`, `DRAINIT_SUBREAPER=1`).
    Always,
    /// Never (`--no-subreaper`, `DRAINIT_SUBREAPER=0`).
    Never,
}

/// Everything drainit needs to run, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long the app keeps serving after SIGTERM (the longest, with the adaptive drain).
    pub drain: Setting<Duration>,
    /// Adaptive drain: the quiet time that ends it (`--drain-quiet`), if set.
    pub drain_quiet: Setting<Option<Duration>>,
    /// Adaptive drain: its shortest length (`--drain-min`).
    pub drain_min: Setting<Duration>,
    /// Adaptive drain: only traffic to these TCP ports counts (`--drain-ports`); empty: every listener.
    pub drain_ports: Setting<Vec<u16>>,
    /// Adaptive drain: connections from these sources do not count (`--drain-ignore-from`).
    pub drain_ignore_from: Setting<Vec<Cidr>>,
    /// The platform's time from SIGTERM to its SIGKILL.
    pub grace: Setting<Duration>,
    /// drainit's SIGKILL comes this long before the platform's.
    pub kill_margin: Setting<Duration>,
    /// What the app gets when the drain ends.
    pub stop_signal: Setting<Signal>,
    /// The signals that start the shutdown (`--drain-on`).
    pub drain_on: Setting<Vec<Signal>>,
    /// How long processes the app left get between the stop signal and SIGKILL.
    pub cleanup: Setting<Duration>,
    /// Signals forwarded as others (`--rewrite`).
    pub rewrites: Setting<Vec<Rewrite>>,
    /// Forward signals to the main child only (`--no-group`).
    pub no_group: Setting<bool>,
    /// The app's exit codes reported as 0 (`--success-exit`).
    pub success_exits: Setting<Vec<i32>>,
    /// What drainit gets when its parent dies (`--pdeathsig`).
    pub pdeathsig: Setting<Option<Signal>>,
    /// What the app gets if drainit dies (`--app-pdeathsig`).
    pub app_pdeathsig: Setting<Option<Signal>>,
    /// When drainit becomes a child subreaper.
    pub subreaper: Setting<Subreaper>,
    /// The log level, after `-v` and `-q`.
    pub log_level: Setting<LevelFilter>,
    /// Print the configuration and exit (`--check`).
    pub check: bool,
    /// The program and its arguments, byte for byte as given (empty only with `--check`).
    pub command: Vec<OsString>,
}

/// Why the configuration was refused: one line for the user, naming the
/// flag or variable, the value, and what was expected.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Request {
    /// Run the app (or, with `--check`, describe the plan).
    Run(Box<Config>),
    /// `--help`: print the help.
    Help,
    /// `--version`: print the version.
    Version,
}

impl Config {
    /// Reads the arguments (`args`, the program name first) and the process's environment.
    pub fn from_process(args: Vec<OsString>) -> Result<Request, ConfigError> {
        let vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        Config::parse(args.into_iter().skip(1), &vars)
    }

    /// Parses `args` (without the program name) and the variables `vars`.
    pub fn parse(
        args: impl IntoIterator<Item = OsString>,
        vars: &[(OsString, OsString)],
    ) -> Result<Request, ConfigError> {
        let raw = match cli::parse(args, vars).map_err(ConfigError)? {
            Parsed::Run(raw) => raw,
            Parsed::Help => return Ok(Request::Help),
            Parsed::Version => return Ok(Request::Version),
        };
        let kubernetes = vars
            .iter()
            .any(|(name, value)| name == KUBERNETES_ENV && !value.is_empty());
        let default_drain = if kubernetes {
            (KUBERNETES_DRAIN, Source::Kubernetes)
        } else {
            (Duration::ZERO, Source::Default)
        };
        let m = &raw;
        let drain_on = drain_on(m)?;
        let rewrites = list_setting(m, "rewrite", |text| rewrite(text, &drain_on))?;
        let config = Config {
            drain: setting(m, "drain", default_drain, parse_duration)?,
            drain_quiet: setting(m, "drain-quiet", default(None), |t| {
                parse_duration(t).map(Some)
            })?,
            drain_min: setting(m, "drain-min", default(Duration::ZERO), parse_duration)?,
            drain_ports: list_setting(m, "drain-ports", activity::parse_port)?,
            drain_ignore_from: list_setting(m, "drain-ignore-from", Cidr::parse)?,
            grace: setting(m, "grace", default(DEFAULT_GRACE), parse_duration)?,
            kill_margin: setting(
                m,
                "kill-margin",
                default(DEFAULT_KILL_MARGIN),
                parse_duration,
            )?,
            stop_signal: setting(m, "stop-signal", default(Signal::TERM), parse_stop_signal)?,
            drain_on,
            cleanup: setting(m, "cleanup", default(DEFAULT_CLEANUP), parse_duration)?,
            rewrites,
            no_group: setting(m, "no-group", default(false), parse_bool)?,
            success_exits: list_setting(m, "success-exit", parse_exit_code)?,
            pdeathsig: setting(m, "pdeathsig", default(None), |t| {
                parse_stop_signal(t).map(Some)
            })?,
            app_pdeathsig: setting(m, "app-pdeathsig", default(None), |t| {
                parse_signal(t).map(Some)
            })?,
            subreaper: subreaper(m)?,
            log_level: log_level(m)?,
            check: m.get("check").is_some(),
            command: raw.command.clone(),
        };
        if config.command.is_empty() && !config.check {
            return Err(ConfigError(
                "no COMMAND given (usage: drainit [OPTIONS] [--] COMMAND [ARGS]...)".to_string(),
            ));
        }
        config.check()?;
        Ok(Request::Run(Box::new(config)))
    }

    /// Refuses a timeline that cannot work: the SIGKILL must come after the drain.
    fn check(&self) -> Result<(), ConfigError> {
        let (drain, grace, margin) = (&self.drain, &self.grace, &self.kill_margin);
        if margin.value >= grace.value {
            return Err(ConfigError(format!(
                "the kill margin ({}) must be shorter than the grace period ({}): \
                 drainit sends SIGKILL at grace − margin",
                margin.describe(),
                grace.describe()
            )));
        }
        let kill_after = self.plan(true).kill_after();
        if drain.value >= kill_after {
            return Err(ConfigError(format!(
                "the drain ({}) leaves no time before the SIGKILL at +{} (grace {} − kill margin {}); \
                 expected a drain shorter than {}, or a longer grace",
                drain.describe(),
                Human(kill_after),
                grace.describe(),
                margin.describe(),
                Human(kill_after)
            )));
        }
        self.check_adaptive()
    }

    /// The adaptive drain needs a maximum, a quiet time, and a minimum within the maximum.
    fn check_adaptive(&self) -> Result<(), ConfigError> {
        let (drain, min) = (&self.drain, &self.drain_min);
        let Some(quiet) = self.drain_quiet.value else {
            let given = [
                (min.source != Source::Default).then(|| min.describe()),
                self.drain_ports.given(),
                self.drain_ignore_from.given(),
            ];
            if let Some(setting) = given.into_iter().flatten().next() {
                return Err(ConfigError(format!(
                    "{setting} only applies to the adaptive drain: set --drain-quiet / \
                     DRAINIT_DRAIN_QUIET too"
                )));
            }
            return Ok(());
        };
        let quiet = Setting {
            value: quiet,
            source: self.drain_quiet.source.clone(),
        };
        if quiet.value.is_zero() {
            return Err(ConfigError(format!(
                "the quiet time ({}) must be longer than 0: it is how long no traffic must be seen",
                quiet.describe()
            )));
        }
        if drain.value.is_zero() {
            return Err(ConfigError(format!(
                "the adaptive drain ({}) needs a maximum: set --drain / DRAINIT_DRAIN (it is {})",
                quiet.describe(),
                drain.describe()
            )));
        }
        if min.value > drain.value {
            return Err(ConfigError(format!(
                "the shortest drain ({}) is longer than the longest ({})",
                min.describe(),
                drain.describe()
            )));
        }
        if quiet.value >= drain.value {
            return Err(ConfigError(format!(
                "the quiet time ({}) must be shorter than the drain ({}): no quiet time that \
                 long can end the drain before its maximum",
                quiet.describe(),
                drain.describe()
            )));
        }
        Ok(())
    }

    /// What the adaptive drain watches.
    pub fn watch(&self) -> Watch {
        let mut ports = self.drain_ports.value.clone();
        ports.sort_unstable();
        ports.dedup();
        Watch {
            ports,
            ignore_from: self.drain_ignore_from.value.clone(),
        }
    }

    /// The shutdown timeline this configuration asks for.
    /// `pid1`: drainit is PID 1, where the leftovers of an exited app are
    /// always cleaned up (its exit would kill them anyway).
    pub fn plan(&self, pid1: bool) -> Plan {
        Plan {
            drain: self.drain.value,
            adaptive: self.drain_quiet.value.map(|quiet| Adaptive {
                min: self.drain_min.value,
                quiet,
            }),
            grace: self.grace.value,
            kill_margin: self.kill_margin.value,
            stop_signal: self.stop_signal.value,
            drain_on: self.drain_on.value.clone(),
            cleanup: self.cleanup.value,
            rewrites: self.rewrites.value.clone(),
            success_exits: self.success_exits.value.clone(),
            clean_up_leftovers: pid1 || !self.no_group.value,
        }
    }

    /// `SIGTERM,SIGQUIT`.
    fn drain_on_names(&self) -> String {
        let names: Vec<String> = self.drain_on.value.iter().map(|s| s.to_string()).collect();
        names.join(",")
    }

    /// What `--check` prints: every setting with its origin, then the timeline
    /// in plain words.
    pub fn describe(&self) -> String {
        let mut out = String::from("drainit configuration:\n");
        let mut row = |name: &str, value: String, source: &Source| {
            let _ = writeln!(out, "  {name:<13} {value:<18} ({source})");
        };
        row(
            "drain",
            Human(self.drain.value).to_string(),
            &self.drain.source,
        );
        row(
            "grace",
            Human(self.grace.value).to_string(),
            &self.grace.source,
        );
        row(
            "kill margin",
            Human(self.kill_margin.value).to_string(),
            &self.kill_margin.source,
        );
        row(
            "stop signal",
            self.stop_signal.value.to_string(),
            &self.stop_signal.source,
        );
        let list = |items: Vec<String>| {
            if items.is_empty() {
                "none".to_string()
            } else {
                items.join(",")
            }
        };
        row("drain on", self.drain_on_names(), &self.drain_on.source);
        row(
            "cleanup",
            Human(self.cleanup.value).to_string(),
            &self.cleanup.source,
        );
        row(
            "rewrite",
            list(self.rewrites.value.iter().map(|r| r.to_string()).collect()),
            &self.rewrites.source,
        );
        let target = if self.no_group.value {
            "main process only"
        } else {
            "process group"
        };
        row("forward to", target.to_string(), &self.no_group.source);
        row(
            "success exit",
            list(
                self.success_exits
                    .value
                    .iter()
                    .map(|c| c.to_string())
                    .collect(),
            ),
            &self.success_exits.source,
        );
        let pdeathsig = self
            .pdeathsig
            .value
            .map_or("none".to_string(), |s| s.to_string());
        row("pdeathsig", pdeathsig, &self.pdeathsig.source);
        let app_pdeathsig = self
            .app_pdeathsig
            .value
            .map_or("none".to_string(), |s| s.to_string());
        row("app pdeathsig", app_pdeathsig, &self.app_pdeathsig.source);
        let subreaper = match self.subreaper.value {
            Subreaper::Auto => "when not PID 1",
            Subreaper::Always => "always",
            Subreaper::Never => "never",
        };
        row("subreaper", subreaper.to_string(), &self.subreaper.source);
        row(
            "log",
            self.log_level.value.to_string().to_lowercase(),
            &self.log_level.source,
        );
        let command = if self.command.is_empty() {
            "none given".to_string()
        } else {
            self.command
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(out, "  {:<13} {command}", "command");
        // The plan in the words of the drain's first line, from the one renderer.
        let plan = self.plan(true);
        let _ = writeln!(out, "On {}: {}.", self.drain_on_names(), PlanText(&plan));
        let _ = write!(
            out,
            "When the app exits: processes it left get {}, then SIGKILL after {} at most; \
             drainit exits with the app's status",
            plan.stop_signal,
            Human(plan.cleanup)
        );
        if self.no_group.value {
            let _ = write!(out, " (not PID 1, --no-group leaves them alone)");
        }
        out.push_str(".\n");
        out
    }
}

fn default<T>(value: T) -> (T, Source) {
    (value, Source::Default)
}

/// The value of option `long`: parsed from the flag or its environment
/// variable, or `default`. A value that does not parse is refused with a
/// message naming the flag or variable, the value, and what was wrong.
fn setting<T>(
    raw: &Raw,
    long: &str,
    default: (T, Source),
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Setting<T>, ConfigError> {
    let Some((values, origin)) = raw.get(long) else {
        let (value, source) = default;
        return Ok(Setting { value, source });
    };
    let source = Source::from(origin);
    let text = values.last().map_or("", String::as_str);
    let value = parse(text).map_err(|why| invalid(&source, text, &why))?;
    Ok(Setting { value, source })
}

/// Like [`setting`], for a repeatable flag or a comma-separated variable.
fn list_setting<T>(
    raw: &Raw,
    long: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Setting<Vec<T>>, ConfigError> {
    let Some((values, origin)) = raw.get(long) else {
        return Ok(Setting {
            value: Vec::new(),
            source: Source::Default,
        });
    };
    let source = Source::from(origin);
    let value = values
        .iter()
        .map(|text| parse(text).map_err(|why| invalid(&source, text, &why)))
        .collect::<Result<_, _>>()?;
    Ok(Setting { value, source })
}

/// `DRAINIT_DRAIN="5 seconds" is not a duration (expected e.g. 5s, 500ms, 1m30s)`.
fn invalid(source: &Source, text: &str, why: &str) -> ConfigError {
    let name = match source {
        Source::Env(name) | Source::Flag(name) => name.as_str(),
        Source::Default | Source::Kubernetes => "value",
    };
    ConfigError(format!("{name}={text:?} {why}"))
}

/// The longest duration accepted: far beyond any real grace period, and
/// short enough that every instant of the timeline stays representable.
const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);

fn parse_duration(text: &str) -> Result<Duration, String> {
    let too_long = || format!("is too long (expected at most {})", Human(LONGEST));
    let value = duration::parse(text).map_err(|refused| match refused {
        Refused::NotADuration => format!("is not a duration ({})", duration::EXPECTED),
        Refused::TooLong => too_long(),
    })?;
    if value > LONGEST {
        return Err(too_long());
    }
    Ok(value)
}

fn parse_signal(text: &str) -> Result<Signal, String> {
    Signal::parse(text).ok_or_else(|| {
        "is not a signal (expected a signal name or number such as TERM, SIGQUIT, INT or 15)"
            .to_string()
    })
}

/// `--rewrite FROM:TO`, where FROM may not be a signal that starts the drain.
fn rewrite(text: &str, drain_on: &Setting<Vec<Signal>>) -> Result<Rewrite, String> {
    let rewrite = Rewrite::parse(text)?;
    if !drain_on.value.contains(&rewrite.from) {
        return Ok(rewrite);
    }
    let from = rewrite.from;
    let starts = match &drain_on.source {
        Source::Default | Source::Kubernetes => String::new(),
        source => format!(" ({source})"),
    };
    Err(format!(
        "is refused: {from} starts the drain{starts}; what the app gets when the drain ends is \
         set by --stop-signal / DRAINIT_STOP_SIGNAL"
    ))
}

/// A signal that can stop a process: not SIGSTOP (it pauses it, and the
/// app would never exit) nor SIGCHLD (ignored by default).
fn parse_stop_signal(text: &str) -> Result<Signal, String> {
    let signal = parse_signal(text)?;
    if signal == Signal::STOP || signal == Signal::CHLD || signal == Signal::CONT {
        return Err(format!(
            "is refused: {signal} does not end a process (expected e.g. TERM, QUIT, INT or KILL)"
        ));
    }
    Ok(signal)
}

/// `--drain-on`: the signals that start the shutdown, each one drainit can
/// take (not SIGKILL, SIGSTOP, SIGCHLD or a fault).
fn drain_on(raw: &Raw) -> Result<Setting<Vec<Signal>>, ConfigError> {
    let list = list_setting(raw, "drain-on", |text| {
        let signal = parse_signal(text)?;
        if !signal.is_handled() || signal == Signal::CHLD {
            return Err(format!("is refused: drainit cannot drain on {signal}"));
        }
        Ok(signal)
    })?;
    if list.source == Source::Default {
        return Ok(Setting {
            value: vec![Signal::TERM],
            source: Source::Default,
        });
    }
    Ok(list)
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(
            "is not a yes/no value (expected 1, true, yes, on, or 0, false, no, off)".to_string(),
        ),
    }
}

fn parse_exit_code(text: &str) -> Result<i32, String> {
    text.parse::<u8>()
        .map(i32::from)
        .map_err(|_| "is not an exit code (expected a number from 0 to 255)".to_string())
}

fn parse_level(text: &str) -> Result<LevelFilter, String> {
    text.parse().map_err(|_| {
        "is not a log level (expected off, error, warn, info, debug or trace)".to_string()
    })
}

/// `--no-subreaper` wins, then `--subreaper` / `DRAINIT_SUBREAPER`, else auto.
fn subreaper(raw: &Raw) -> Result<Setting<Subreaper>, ConfigError> {
    if raw.get("no-subreaper").is_some() {
        let source = Source::Flag("--no-subreaper".to_string());
        return Ok(Setting {
            value: Subreaper::Never,
            source,
        });
    }
    let forced = setting(raw, "subreaper", default(None), |t| parse_bool(t).map(Some))?;
    let value = match forced.value {
        None => Subreaper::Auto,
        Some(true) => Subreaper::Always,
        Some(false) => Subreaper::Never,
    };
    Ok(Setting {
        value,
        source: forced.source,
    })
}

/// `--log` / `DRAINIT_LOG`, raised by each `-v` and lowered by each `-q`.
fn log_level(raw: &Raw) -> Result<Setting<LevelFilter>, ConfigError> {
    let base = setting(raw, "log", default(LevelFilter::Info), parse_level)?;
    let (up, down) = (raw.count("verbose"), raw.count("quiet"));
    if up == 0 && down == 0 {
        return Ok(base);
    }
    let levels = LevelFilter::iter().collect::<Vec<_>>();
    let index = levels.iter().position(|&l| l == base.value).unwrap_or(3);
    let shifted = (index + up).saturating_sub(down).min(levels.len() - 1);
    let flag = if up > down { "-v" } else { "-q" };
    Ok(Setting {
        value: levels[shifted],
        source: Source::Flag(format!("{flag} over {}", base.source)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(args: &[&str], vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let args = args.iter().map(OsString::from);
        let vars: Vec<(OsString, OsString)> = vars
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect();
        match Config::parse(args, &vars)? {
            Request::Run(config) => Ok(*config),
            other => panic!("expected a configuration, got {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match parse_with(args, &[]) {
            Err(ConfigError(message)) => message,
            other => panic!("expected an invalid-value error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_outside_kubernetes() {
        let config = parse_with(&["--", "app"], &[]).unwrap();
        assert_eq!(config.drain.value, Duration::ZERO);
        assert_eq!(config.drain.source, Source::Default);
        assert_eq!(config.grace.value, Duration::from_secs(30));
        assert_eq!(config.kill_margin.value, Duration::from_secs(2));
        assert_eq!(config.stop_signal.value, Signal::TERM);
        assert_eq!(config.log_level.value, LevelFilter::Info);
        assert_eq!(config.command, vec![OsString::from("app")]);
    }

    #[test]
    fn drain_defaults_to_5s_under_kubernetes() {
        let config = parse_with(&["app"], &[("KUBERNETES_SERVICE_HOST", "10.0.0.1")]).unwrap();
        assert_eq!(config.drain.value, Duration::from_secs(5));
        assert_eq!(config.drain.source, Source::Kubernetes);
    }

    #[test]
    fn flags_set_values_and_their_source() {
        let config = parse_with(
            &[
                "--drain",
                "1m30s",
                "--grace",
                "2m",
                "--kill-margin",
                "500ms",
                "--stop-signal",
                "sigquit",
                "--log",
                "DEBUG",
                "app",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(config.drain.value, Duration::from_secs(90));
        assert_eq!(config.drain.source, Source::Flag("--drain".into()));
        assert_eq!(config.grace.value, Duration::from_secs(120));
        assert_eq!(config.kill_margin.value, Duration::from_millis(500));
        assert_eq!(config.stop_signal.value, Signal::QUIT);
        assert_eq!(config.log_level.value, LevelFilter::Debug);
    }

    #[test]
    fn the_command_keeps_its_own_flags() {
        let config = parse_with(&["--drain", "1s", "app", "--drain", "-x"], &[]).unwrap();
        assert_eq!(config.command, ["app", "--drain", "-x"].map(OsString::from));
        assert_eq!(config.drain.value, Duration::from_secs(1));
    }

    #[test]
    fn bad_values_name_the_flag_the_value_and_what_was_expected() {
        assert_eq!(
            error(&["--drain", "5 seconds", "app"]),
            "--drain=\"5 seconds\" is not a duration (expected e.g. 5s, 500ms, 1m30s)"
        );
        assert_eq!(
            error(&["--grace", "", "app"]),
            "--grace=\"\" is not a duration (expected e.g. 5s, 500ms, 1m30s)"
        );
        assert_eq!(
            error(&["--stop-signal", "FOO", "app"]),
            "--stop-signal=\"FOO\" is not a signal \
             (expected a signal name or number such as TERM, SIGQUIT, INT or 15)"
        );
        assert_eq!(
            error(&["--log", "loud", "app"]),
            "--log=\"loud\" is not a log level (expected off, error, warn, info, debug or trace)"
        );
    }

    #[test]
    fn a_drain_that_leaves_no_time_before_the_kill_is_refused() {
        assert_eq!(
            error(&["--drain", "28s", "app"]),
            "the drain (--drain=28s) leaves no time before the SIGKILL at +28s \
             (grace default 30s − kill margin default 2s); expected a drain shorter than 28s, \
             or a longer grace"
        );
        assert!(parse_with(&["--drain", "27.9s", "app"], &[]).is_ok());
        assert!(parse_with(&["--grace", "2.5s", "app"], &[]).is_ok());
    }

    #[test]
    fn kubernetes_default_drain_must_fit_a_short_grace() {
        let result = parse_with(
            &["--grace", "6s", "app"],
            &[("KUBERNETES_SERVICE_HOST", "x")],
        );
        match result {
            Err(ConfigError(message)) => assert!(
                message.starts_with("the drain (default 5s under Kubernetes) leaves no time"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_margin_as_long_as_the_grace_is_refused() {
        assert_eq!(
            error(&["--grace", "2s", "app"]),
            "the kill margin (default 2s) must be shorter than the grace period (--grace=2s): \
             drainit sends SIGKILL at grace − margin"
        );
    }

    #[test]
    fn kubernetes_service_links_are_not_typos() {
        // What the kubelet sets for Services named `drainit` and `drainit-demo`.
        let links = [
            ("DRAINIT_SERVICE_HOST", "10.96.0.12"),
            ("DRAINIT_SERVICE_PORT", "80"),
            ("DRAINIT_SERVICE_PORT_HTTP", "80"),
            ("DRAINIT_SERVICE_PORT_HTTP_METRICS", "9090"),
            ("DRAINIT_PORT", "tcp://10.96.0.12:80"),
            ("DRAINIT_PORT_80_TCP", "tcp://10.96.0.12:80"),
            ("DRAINIT_PORT_80_TCP_PROTO", "tcp"),
            ("DRAINIT_PORT_80_TCP_PORT", "80"),
            ("DRAINIT_PORT_80_TCP_ADDR", "10.96.0.12"),
            ("DRAINIT_DEMO_SERVICE_HOST", "fd00::12"),
            ("DRAINIT_DEMO_PORT", "udp://[fd00::12]:53"),
            ("DRAINIT_DEMO_PORT_53_UDP_ADDR", "fd00::12"),
        ];
        let config = parse_with(&["app"], &links).unwrap();
        assert_eq!(config.drain.value, Duration::ZERO);
        // Typos of drainit's own variables, even with a link's name or value.
        for (name, value) in [
            ("DRAINIT_DRIAN", "10s"),
            ("DRAINIT_DRAIN_PORT", "8080"),
            ("DRAINIT_SERVICE_HOST", "drainit.default.svc"),
            ("DRAINIT_PORT_80_TCP", "10.96.0.12:80"),
            ("DRAINIT_PORT_http_TCP", "tcp://10.96.0.12:80"),
            ("DRAINIT_SERVICE_PORT", "0"),
        ] {
            let refused = parse_with(&["app"], &[(name, value)]).unwrap_err().0;
            assert!(
                refused.starts_with(&format!("{name} is not a drainit variable")),
                "{name}={value}: {refused}"
            );
        }
    }

    #[test]
    fn drain_on_lists_the_signals_that_start_the_drain() {
        let config = parse_with(&["app"], &[]).unwrap();
        assert_eq!(config.drain_on.value, vec![Signal::TERM]);
        let config = parse_with(&["app"], &[("DRAINIT_DRAIN_ON", "TERM,SIGQUIT")]).unwrap();
        assert_eq!(config.drain_on.value, vec![Signal::TERM, Signal::QUIT]);
        assert!(config.plan(true).drains_on(Signal::QUIT));
        assert!(config
            .describe()
            .contains("drain on      SIGTERM,SIGQUIT    (from DRAINIT_DRAIN_ON)"));
        assert!(config.describe().contains("On SIGTERM,SIGQUIT: "));
        for (value, why) in [
            ("KILL", "is refused: drainit cannot drain on SIGKILL"),
            ("CHLD", "is refused: drainit cannot drain on SIGCHLD"),
            ("NOPE", "is not a signal"),
        ] {
            assert!(
                error(&["--drain-on", value, "app"])
                    .starts_with(&format!("--drain-on={value:?} {why}")),
                "{value}"
            );
        }
        // A signal that drains cannot be rewritten; one that does not, can.
        assert_eq!(
            error(&["--drain-on", "QUIT", "--rewrite", "QUIT:TERM", "app"]),
            "--rewrite=\"QUIT:TERM\" is refused: SIGQUIT starts the drain (from --drain-on); \
             what the app gets when the drain ends is set by --stop-signal / DRAINIT_STOP_SIGNAL"
        );
        assert!(parse_with(&["--drain-on", "QUIT", "--rewrite", "TERM:INT", "app"], &[]).is_ok());
    }

    #[test]
    fn signals_that_cannot_stop_the_app_are_refused_as_the_stop_signal() {
        for value in ["STOP", "CHLD", "CONT"] {
            let message = error(&["--stop-signal", value, "app"]);
            assert!(
                message.starts_with(&format!("--stop-signal={value:?} is refused: SIG")),
                "{message}"
            );
            assert!(message.contains("does not end a process"), "{message}");
        }
        assert!(parse_with(&["--stop-signal", "KILL", "app"], &[]).is_ok());
    }

    #[test]
    fn odd_durations_are_refused_with_what_was_wrong() {
        assert_eq!(
            error(&["--drain", "5s5s5s", "app"]),
            "--drain=\"5s5s5s\" is not a duration (expected e.g. 5s, 500ms, 1m30s)"
        );
        assert_eq!(
            error(&["--grace", "99999999999999999999999h", "app"]),
            "--grace=\"99999999999999999999999h\" is too long (expected at most 8760h)"
        );
        assert_eq!(
            error(&["--drain", "10s", "--drain-quiet", "10s", "app"]),
            "the quiet time (--drain-quiet=10s) must be shorter than the drain (--drain=10s): \
             no quiet time that long can end the drain before its maximum"
        );
    }

    #[test]
    fn unknown_drainit_variables_are_refused() {
        match parse_with(&["app"], &[("DRAINIT_DRIAN", "10s")]) {
            Err(ConfigError(message)) => assert!(
                message.starts_with(
                    "DRAINIT_DRIAN is not a drainit variable (expected one of DRAINIT_DRAIN, "
                ),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(parse_with(&["app"], &[("OTHER_DRAIN", "x")]).is_ok());
    }

    #[test]
    fn usage_errors_are_refused() {
        assert!(error(&["--bogus", "app"]).starts_with("unknown option --bogus"));
        assert!(error(&[]).starts_with("no COMMAND given"));
        assert_eq!(error(&["--drain"]), "--drain needs a value (DUR)");
        assert!(error(&["--drain", "1s"]).starts_with("no COMMAND given"));
        assert!(parse_with(&["--check"], &[]).is_ok());
    }

    #[test]
    fn values_from_variables_name_the_variable() {
        let config = parse_with(
            &["app"],
            &[("DRAINIT_DRAIN", "3s"), ("DRAINIT_NO_GROUP", "yes")],
        )
        .unwrap();
        assert_eq!(config.drain.source, Source::Env("DRAINIT_DRAIN".into()));
        assert!(config.no_group.value);
        match parse_with(&["app"], &[("DRAINIT_DRAIN", "5 seconds")]) {
            Err(ConfigError(message)) => assert_eq!(
                message,
                "DRAINIT_DRAIN=\"5 seconds\" is not a duration (expected e.g. 5s, 500ms, 1m30s)"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn durations_beyond_a_year_are_refused() {
        assert_eq!(
            error(&["--grace", "8761h", "app"]),
            "--grace=\"8761h\" is too long (expected at most 8760h)"
        );
        assert!(parse_with(&["--grace", "8760h", "--drain", "8000h", "app"], &[]).is_ok());
    }

    #[test]
    fn the_adaptive_drain_is_checked() {
        let config = parse_with(&["--drain", "20s", "--drain-quiet", "1s", "app"], &[]).unwrap();
        let plan = config.plan(true);
        assert_eq!(
            plan.adaptive,
            Some(Adaptive {
                min: Duration::ZERO,
                quiet: Duration::from_secs(1)
            })
        );
        assert_eq!(
            error(&["--drain-min", "1s", "app"]),
            "--drain-min=1s only applies to the adaptive drain: set --drain-quiet / \
             DRAINIT_DRAIN_QUIET too"
        );
        assert_eq!(
            error(&["--drain-quiet", "1s", "app"]),
            "the adaptive drain (--drain-quiet=1s) needs a maximum: set --drain / DRAINIT_DRAIN \
             (it is default 0s)"
        );
        assert_eq!(
            error(&["--drain", "5s", "--drain-quiet", "0", "app"]),
            "the quiet time (--drain-quiet=0s) must be longer than 0: it is how long no traffic \
             must be seen"
        );
        assert_eq!(
            error(&[
                "--drain",
                "5s",
                "--drain-quiet",
                "1s",
                "--drain-min",
                "6s",
                "app"
            ]),
            "the shortest drain (--drain-min=6s) is longer than the longest (--drain=5s)"
        );
    }

    #[test]
    fn the_adaptive_drain_watches_the_ports_and_sources_given() {
        let config = parse_with(
            &[
                "--drain",
                "20s",
                "--drain-quiet",
                "1s",
                "--drain-ports",
                "8443,8080",
                "--drain-ports",
                "8080",
                "app",
            ],
            &[("DRAINIT_DRAIN_IGNORE_FROM", "10.0.3.7/32,fd00::/8")],
        )
        .unwrap();
        let watch = config.watch();
        assert_eq!(watch.ports, vec![8080, 8443]);
        assert_eq!(
            watch.ignore_from,
            vec![
                Cidr::parse("10.0.3.7/32").unwrap(),
                Cidr::parse("fd00::/8").unwrap()
            ]
        );
        assert_eq!(
            error(&[
                "--drain",
                "2s",
                "--drain-quiet",
                "1s",
                "--drain-ports",
                "80,http",
                "app"
            ]),
            "--drain-ports=\"http\" is not a TCP port (expected a number from 1 to 65535)"
        );
        match parse_with(
            &["--drain", "2s", "--drain-quiet", "1s", "app"],
            &[("DRAINIT_DRAIN_IGNORE_FROM", "node")],
        ) {
            Err(ConfigError(message)) => assert!(
                message.starts_with("DRAINIT_DRAIN_IGNORE_FROM=\"node\" is not an IP address"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            error(&["--drain", "2s", "--drain-ports", "8080", "app"]),
            "--drain-ports=8080 only applies to the adaptive drain: set --drain-quiet / \
             DRAINIT_DRAIN_QUIET too"
        );
    }
}
