//! From flags and `DRAINIT_*` environment variables to one checked [`Config`].
//!
//! Two steps, as in ripgrep: clap reads raw strings (each flag also reads its
//! environment variable), then this module parses and checks them, knowing
//! where each value came from so that an error names exactly what the user
//! wrote, and nothing starts on bad input.

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, Parser};
use log::LevelFilter;

use crate::duration::{self, Human};
use crate::signal::Signal;
use crate::timeline::Plan;

/// Kubernetes' default terminationGracePeriodSeconds.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
const DEFAULT_KILL_MARGIN: Duration = Duration::from_secs(2);
/// The drain under Kubernetes: endpoint removal usually reaches kube-proxy,
/// ingress controllers and load balancers within a few seconds.
const KUBERNETES_DRAIN: Duration = Duration::from_secs(5);
/// Set in every Kubernetes container.
const KUBERNETES_ENV: &str = "KUBERNETES_SERVICE_HOST";

/// The command line. Values stay strings here; [`Config::parse`] checks them.
#[derive(Parser, Debug)]
#[command(
    name = "drainit",
    override_usage = "drainit [OPTIONS] [--] COMMAND [ARGS]...",
    version,
    about = "A container init that drains before it stops the app.",
    long_about = "A container init (PID 1) that runs COMMAND in its own process group, reaps \
                  zombies and forwards signals. On SIGTERM it lets the app keep serving for the \
                  drain, then sends the stop signal to the whole group, and SIGKILLs what is left \
                  before the platform's deadline (grace − kill margin).",
    after_help = "Durations: 15 (seconds), 15s, 500ms, 1m30s, 0. Signals: TERM, SIGTERM, sigterm, 15.\n\
                  Exit codes: the app's; 128+N if it died of signal N; 2 bad usage or configuration; \
                  126 COMMAND not executable; 127 COMMAND not found; 1 other failure of drainit."
)]
struct Cli {
    /// How long the app keeps serving after SIGTERM before it gets the stop signal
    /// [default: 5s when KUBERNETES_SERVICE_HOST is set, else 0]
    #[arg(long, env = "DRAINIT_DRAIN", value_name = "DUR")]
    drain: Option<String>,

    /// Time the platform allows from SIGTERM to its own SIGKILL
    /// (terminationGracePeriodSeconds) [default: 30s]
    #[arg(long, env = "DRAINIT_GRACE", value_name = "DUR")]
    grace: Option<String>,

    /// drainit sends SIGKILL at grace − margin, before the platform does [default: 2s]
    #[arg(long, env = "DRAINIT_KILL_MARGIN", value_name = "DUR")]
    kill_margin: Option<String>,

    /// Signal the app's group gets when the drain ends (QUIT for nginx, INT for postgres)
    /// [default: TERM]
    #[arg(long, env = "DRAINIT_STOP_SIGNAL", value_name = "SIG")]
    stop_signal: Option<String>,

    /// Log level: off, error, warn, info, debug, trace [default: info]
    #[arg(long, env = "DRAINIT_LOG", value_name = "LEVEL")]
    log: Option<String>,

    /// The app to run, with its arguments
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// Where a setting's value came from: shown by error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    /// The default that applies because `KUBERNETES_SERVICE_HOST` is set.
    Kubernetes,
    /// A `DRAINIT_*` environment variable.
    Env(String),
    /// A command-line flag such as `--drain`.
    Flag(String),
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
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

/// Everything drainit needs to run, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub drain: Setting<Duration>,
    pub grace: Setting<Duration>,
    pub kill_margin: Setting<Duration>,
    pub stop_signal: Setting<Signal>,
    pub log_level: LevelFilter,
    /// The program and its arguments, byte for byte as given.
    pub command: Vec<OsString>,
}

/// Why the configuration was refused.
#[derive(Debug)]
pub enum ConfigError {
    /// A usage error, `--help` or `--version`: clap prints it and picks the exit code.
    Usage(clap::Error),
    /// A value that does not parse or a combination that cannot work.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Usage(error) => write!(f, "{error}"),
            ConfigError::Invalid(message) => write!(f, "{message}"),
        }
    }
}

impl Config {
    /// Reads the process's own arguments and environment.
    pub fn from_process() -> Result<Config, ConfigError> {
        let vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        Config::parse(std::env::args_os(), &vars)
    }

    /// Parses `args` (with the program name first). clap reads the
    /// `DRAINIT_*` variables of the process itself; `vars` serves what clap
    /// does not do: Kubernetes detection and refusing unknown `DRAINIT_*` names.
    pub fn parse(
        args: impl IntoIterator<Item = OsString>,
        vars: &[(OsString, OsString)],
    ) -> Result<Config, ConfigError> {
        let command = Cli::command();
        let matches = command
            .clone()
            .try_get_matches_from(args)
            .map_err(ConfigError::Usage)?;
        refuse_unknown_variables(&command, vars)?;
        let kubernetes = vars
            .iter()
            .any(|(name, value)| name == KUBERNETES_ENV && !value.is_empty());
        let drain = if kubernetes {
            (KUBERNETES_DRAIN, Source::Kubernetes)
        } else {
            (Duration::ZERO, Source::Default)
        };
        let config = Config {
            drain: setting(&matches, "drain", drain, &DURATION)?,
            grace: setting(
                &matches,
                "grace",
                (DEFAULT_GRACE, Source::Default),
                &DURATION,
            )?,
            kill_margin: setting(
                &matches,
                "kill_margin",
                (DEFAULT_KILL_MARGIN, Source::Default),
                &DURATION,
            )?,
            stop_signal: setting(
                &matches,
                "stop_signal",
                (Signal::TERM, Source::Default),
                &SIGNAL,
            )?,
            log_level: setting(
                &matches,
                "log",
                (LevelFilter::Info, Source::Default),
                &LEVEL,
            )?
            .value,
            command: matches
                .get_many::<OsString>("command")
                .map(|values| values.cloned().collect())
                .unwrap_or_default(),
        };
        config.check()?;
        Ok(config)
    }

    /// Refuses a timeline that cannot work: the SIGKILL must come after the drain.
    fn check(&self) -> Result<(), ConfigError> {
        let (drain, grace, margin) = (&self.drain, &self.grace, &self.kill_margin);
        if margin.value >= grace.value {
            return Err(ConfigError::Invalid(format!(
                "the kill margin ({}) must be shorter than the grace period ({}): \
                 drainit sends SIGKILL at grace − margin",
                margin.describe(),
                grace.describe()
            )));
        }
        let kill_after = grace.value - margin.value;
        if drain.value >= kill_after {
            return Err(ConfigError::Invalid(format!(
                "the drain ({}) leaves no time before the SIGKILL at +{} (grace {} − kill margin {}); \
                 expected a drain shorter than {}, or a longer grace",
                drain.describe(),
                Human(kill_after),
                grace.describe(),
                margin.describe(),
                Human(kill_after)
            )));
        }
        Ok(())
    }

    /// The shutdown timeline this configuration asks for.
    pub fn plan(&self, kill_everyone: bool) -> Plan {
        Plan {
            drain: self.drain.value,
            grace: self.grace.value,
            kill_margin: self.kill_margin.value,
            stop_signal: self.stop_signal.value,
            kill_everyone,
        }
    }
}

/// How to read one kind of value, and how to say what a good one looks like.
struct Kind<T> {
    parse: fn(&str) -> Option<T>,
    /// `a duration`: what the value is not, when it does not parse.
    noun: &'static str,
    expected: &'static str,
}

const DURATION: Kind<Duration> = Kind {
    parse: duration::parse,
    noun: "a duration",
    expected: duration::EXPECTED,
};

const SIGNAL: Kind<Signal> = Kind {
    parse: Signal::parse,
    noun: "a signal",
    expected: "expected a signal name or number such as TERM, SIGQUIT, INT or 15",
};

const LEVEL: Kind<LevelFilter> = Kind {
    parse: |text| text.parse().ok(),
    noun: "a log level",
    expected: "expected off, error, warn, info, debug or trace",
};

/// The value of argument `id`: parsed from the flag or its environment
/// variable, or `default`. A value that does not parse is refused with a
/// message naming the flag or variable, the value, and what was expected.
fn setting<T>(
    matches: &ArgMatches,
    id: &str,
    default: (T, Source),
    kind: &Kind<T>,
) -> Result<Setting<T>, ConfigError> {
    let Some(text) = matches.get_one::<String>(id) else {
        let (value, source) = default;
        return Ok(Setting { value, source });
    };
    let source = source_of(matches, id);
    let name = match &source {
        Source::Env(name) | Source::Flag(name) => name.clone(),
        Source::Default | Source::Kubernetes => id.to_string(),
    };
    match (kind.parse)(text) {
        Some(value) => Ok(Setting { value, source }),
        None => Err(ConfigError::Invalid(format!(
            "{name}={text:?} is not {} ({})",
            kind.noun, kind.expected
        ))),
    }
}

/// A `DRAINIT_*` variable drainit does not know is most likely a typo
/// (`DRAINIT_DRIAN`) that would silently leave a default in place: refuse it.
fn refuse_unknown_variables(
    command: &clap::Command,
    vars: &[(OsString, OsString)],
) -> Result<(), ConfigError> {
    let known: Vec<&std::ffi::OsStr> = command
        .get_arguments()
        .filter_map(|a| a.get_env())
        .collect();
    let unknown = vars.iter().map(|(name, _)| name).find(|name| {
        name.to_string_lossy().starts_with("DRAINIT_") && !known.contains(&name.as_os_str())
    });
    match unknown {
        None => Ok(()),
        Some(name) => Err(ConfigError::Invalid(format!(
            "{} is not a drainit variable (expected one of {})",
            name.to_string_lossy(),
            known
                .iter()
                .map(|k| k.to_string_lossy())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The flag (`--drain`) or variable (`DRAINIT_DRAIN`) that gave argument `id`.
fn source_of(matches: &ArgMatches, id: &str) -> Source {
    let command = Cli::command();
    let arg = command.get_arguments().find(|a| a.get_id() == id);
    match (matches.value_source(id), arg) {
        (Some(ValueSource::EnvVariable), Some(arg)) => Source::Env(
            arg.get_env()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        (Some(ValueSource::CommandLine), Some(arg)) => {
            Source::Flag(format!("--{}", arg.get_long().unwrap_or(id)))
        }
        _ => Source::Default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(args: &[&str], vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        // clap reads DRAINIT_* from the real environment, so tests pass
        // values as flags or use the env of a child process (integration tests).
        let args = std::iter::once("drainit")
            .chain(args.iter().copied())
            .map(OsString::from);
        let vars: Vec<(OsString, OsString)> = vars
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect();
        Config::parse(args, &vars)
    }

    fn error(args: &[&str]) -> String {
        match parse_with(args, &[]) {
            Err(ConfigError::Invalid(message)) => message,
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
        assert_eq!(config.log_level, LevelFilter::Info);
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
        assert_eq!(config.log_level, LevelFilter::Debug);
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
            Err(ConfigError::Invalid(message)) => assert!(
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
    fn unknown_drainit_variables_are_refused() {
        match parse_with(&["app"], &[("DRAINIT_DRIAN", "10s")]) {
            Err(ConfigError::Invalid(message)) => assert!(
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
    fn usage_errors_are_clap_errors() {
        for args in [&["--bogus", "app"][..], &[][..], &["--drain", "1s"][..]] {
            match parse_with(args, &[]) {
                Err(ConfigError::Usage(e)) => assert_eq!(e.exit_code(), 2, "{args:?}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }
}
