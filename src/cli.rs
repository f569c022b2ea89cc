//! The command line and the `DRAINIT_*` variables, read into raw strings.
//!
//! One table, [`OPTIONS`], says every option: its flag, its variable, what it
//! takes and its help line; parsing, `--help` and the check for misspelt
//! variables all read it. Values stay strings here, each with the flag or
//! variable it came from; `config` parses and checks them. (A hand-written
//! parser rather than clap: drainit has a dozen options and runs at the start
//! of every container. With clap, its start took 1.12 M instructions, against
//! 0.15 M for the whole of tini, and clap was 197 KB of the static binary.)

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;

/// What an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// A value, named so in the help (`DUR`, `SIG`).
    Value(&'static str),
    /// Nothing: present or not. Its variable, if any, holds a yes/no value.
    Flag,
}

/// One option of the command line.
#[derive(Debug)]
pub struct Opt {
    /// `drain` for `--drain`.
    pub long: &'static str,
    /// `v` for `-v`, if the option has a short form.
    pub short: Option<char>,
    /// The environment variable that sets it when the flag is absent.
    pub env: Option<&'static str>,
    /// A value, or nothing.
    pub takes: Takes,
    /// Repeatable, values accumulate; in the variable, a comma-separated list.
    pub list: bool,
    /// Its line in `--help`.
    pub help: &'static str,
}

const fn value(
    long: &'static str,
    env: &'static str,
    name: &'static str,
    help: &'static str,
) -> Opt {
    Opt {
        long,
        short: None,
        env: Some(env),
        takes: Takes::Value(name),
        list: false,
        help,
    }
}

const fn list(
    long: &'static str,
    env: &'static str,
    name: &'static str,
    help: &'static str,
) -> Opt {
    Opt {
        list: true,
        ..value(long, env, name, help)
    }
}

const fn flag(
    long: &'static str,
    short: Option<char>,
    env: Option<&'static str>,
    help: &'static str,
) -> Opt {
    Opt {
        long,
        short,
        env,
        takes: Takes::Flag,
        list: false,
        help,
    }
}

/// Every option, in the order `--help` shows them.
pub const OPTIONS: &[Opt] = &[
    value(
        "drain",
        "DRAINIT_DRAIN",
        "DUR",
        "How long the app keeps serving after SIGTERM before it gets the stop signal \
         [default: 5s when KUBERNETES_SERVICE_HOST is set, else 0]",
    ),
    value(
        "drain-quiet",
        "DRAINIT_DRAIN_QUIET",
        "DUR",
        "Adaptive drain: end it once the app's listening TCP sockets have had no new connection \
         and no byte for this long (--drain stays the maximum)",
    ),
    value(
        "drain-min",
        "DRAINIT_DRAIN_MIN",
        "DUR",
        "Adaptive drain: never end it before this [default: 0]",
    ),
    list(
        "drain-ports",
        "DRAINIT_DRAIN_PORTS",
        "PORT",
        "Adaptive drain: only traffic to this listening TCP port counts (probes and metrics on \
         other ports do not hold the drain open); repeatable, or a comma list \
         [default: every listening port]",
    ),
    list(
        "drain-ignore-from",
        "DRAINIT_DRAIN_IGNORE_FROM",
        "CIDR",
        "Adaptive drain: connections from this address or block (e.g. the node's, where the \
         kubelet's probes come from: $(HOST_IP)/32) do not count; repeatable, or a comma list",
    ),
    value(
        "grace",
        "DRAINIT_GRACE",
        "DUR",
        "Time the platform allows from SIGTERM to its own SIGKILL \
         (terminationGracePeriodSeconds) [default: 30s]",
    ),
    value(
        "kill-margin",
        "DRAINIT_KILL_MARGIN",
        "DUR",
        "drainit sends SIGKILL at grace − margin, before the platform does [default: 2s]",
    ),
    value(
        "stop-signal",
        "DRAINIT_STOP_SIGNAL",
        "SIG",
        "Signal the app gets when the drain ends (QUIT for nginx, INT for postgres) \
         [default: TERM]",
    ),
    list(
        "drain-on",
        "DRAINIT_DRAIN_ON",
        "SIGS",
        "Signals that start the drain as SIGTERM does (the image's STOPSIGNAL: TERM,QUIT for \
         nginx); a comma list that replaces the default [default: TERM]",
    ),
    value(
        "cleanup",
        "DRAINIT_CLEANUP",
        "DUR",
        "After the app exits, how long the processes it left get before SIGKILL \
         [default: 2s, never past the SIGKILL deadline]",
    ),
    list(
        "rewrite",
        "DRAINIT_REWRITE",
        "FROM:TO",
        "Forward signal FROM as TO (TO 0: drop FROM); repeatable, or a comma list",
    ),
    flag(
        "no-group",
        None,
        Some("DRAINIT_NO_GROUP"),
        "Forward signals to the app's main process only, not its process group",
    ),
    list(
        "success-exit",
        "DRAINIT_SUCCESS_EXIT",
        "CODE",
        "An exit code of the app that counts as success: drainit exits 0 (e.g. 143); \
         repeatable, or a comma list",
    ),
    value(
        "pdeathsig",
        "DRAINIT_PDEATHSIG",
        "SIG",
        "Signal drainit gets when its parent dies, handled as if sent (tini's -p; TERM drains)",
    ),
    value(
        "app-pdeathsig",
        "DRAINIT_APP_PDEATHSIG",
        "SIG",
        "Signal the app gets if drainit itself dies (useful when drainit is not PID 1)",
    ),
    flag(
        "subreaper",
        None,
        Some("DRAINIT_SUBREAPER"),
        "Become a child subreaper even as PID 1 [default: only when not PID 1]",
    ),
    flag(
        "no-subreaper",
        None,
        None,
        "Never become a child subreaper (as DRAINIT_SUBREAPER=0)",
    ),
    value(
        "log",
        "DRAINIT_LOG",
        "LEVEL",
        "Log level: off, error, warn, info, debug, trace [default: info]",
    ),
    flag(
        "verbose",
        Some('v'),
        None,
        "More log lines: -v debug, -vv trace",
    ),
    flag(
        "quiet",
        Some('q'),
        None,
        "Fewer log lines: -q warnings and errors, -qq errors only",
    ),
    flag(
        "check",
        None,
        None,
        "Print the configuration and the planned timeline, and exit without running anything",
    ),
    flag("help", Some('h'), None, "Print this help"),
    flag("version", Some('V'), None, "Print the version"),
];

/// Where a raw value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A flag: `--drain`, `-v`.
    Flag(String),
    /// A variable: `DRAINIT_DRAIN`.
    Env(&'static str),
}

/// What the command line and the environment said, unchecked.
#[derive(Debug, Default)]
pub struct Raw {
    /// The options given, each with its values (one per use of the flag, or
    /// the items of the variable's list) and where they came from.
    given: Vec<(&'static str, Vec<String>, Origin)>,
    /// The app and its arguments, byte for byte.
    pub command: Vec<OsString>,
}

impl Raw {
    /// The values of option `long` and their origin, if it was given.
    pub fn get(&self, long: &str) -> Option<(&[String], &Origin)> {
        debug_assert!(find(|o| o.long == long).is_some(), "no option --{long}");
        self.given
            .iter()
            .find(|(name, _, _)| *name == long)
            .map(|(_, values, origin)| (values.as_slice(), origin))
    }

    /// How many times flag `long` was given on the command line (`-vv`: 2).
    pub fn count(&self, long: &str) -> usize {
        self.get(long).map_or(0, |(values, _)| values.len())
    }
}

/// What to do, once the command line is read.
#[derive(Debug)]
pub enum Parsed {
    /// Run (or `--check`) with these raw values.
    Run(Raw),
    /// `-h`, `--help`.
    Help,
    /// `-V`, `--version`.
    Version,
}

/// Reads `args` (without the program name) and the `DRAINIT_*` variables of
/// `vars`. A flag wins over its variable. Errors are one line for the user.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    vars: &[(OsString, OsString)],
) -> Result<Parsed, String> {
    let mut raw = Raw::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            // Not UTF-8: an option drainit cannot know, or the command (a
            // program name may be any bytes).
            if arg.as_encoded_bytes().starts_with(b"-") {
                return Err(format!(
                    "option {arg:?} is not valid UTF-8 (see drainit --help; the app's own \
                     options go after its name or after --)"
                ));
            }
            raw.command.push(arg);
            break;
        };
        if text == "--" {
            break;
        }
        if let Some(long) = text.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (long, None),
            };
            let opt = find(|o| o.long == name).ok_or_else(|| unknown(&format!("--{name}")))?;
            let value = match (opt.takes, inline) {
                (Takes::Flag, None) => "true".to_string(),
                (Takes::Flag, Some(_)) => return Err(format!("--{name} takes no value")),
                (Takes::Value(_), Some(value)) => value,
                (Takes::Value(what), None) => match args.next() {
                    Some(value) => utf8(value, &format!("--{name}"))?,
                    None => return Err(format!("--{name} needs a value ({what})")),
                },
            };
            // A list takes a comma list on the command line too (`--drain-on TERM,QUIT`).
            let values: Vec<String> = if opt.list {
                value.split(',').map(str::to_string).collect()
            } else {
                vec![value]
            };
            for value in values {
                raw.add(opt, value, Origin::Flag(format!("--{name}")));
            }
        } else if text.len() > 1 && text.starts_with('-') && !text.starts_with("--") {
            for short in text[1..].chars() {
                let opt = find(|o| o.short == Some(short))
                    .ok_or_else(|| unknown(&format!("-{short}")))?;
                raw.add(opt, "true".to_string(), Origin::Flag(format!("-{short}")));
            }
        } else {
            raw.command.push(arg);
            break;
        }
    }
    raw.command.extend(args);
    if raw.get("help").is_some() {
        return Ok(Parsed::Help);
    }
    if raw.get("version").is_some() {
        return Ok(Parsed::Version);
    }
    read_variables(&mut raw, vars)?;
    Ok(Parsed::Run(raw))
}

impl Raw {
    fn add(&mut self, opt: &'static Opt, value: String, origin: Origin) {
        match self.given.iter_mut().find(|(name, _, _)| *name == opt.long) {
            // Counted flags and lists accumulate; a value given twice: the last wins.
            Some((_, values, _)) if opt.list || opt.takes == Takes::Flag => values.push(value),
            Some(entry) => *entry = (opt.long, vec![value], origin),
            None => self.given.push((opt.long, vec![value], origin)),
        }
    }
}

/// Fills in, from `vars`, the options the command line did not give, and
/// refuses an unknown `DRAINIT_*` name: most likely a typo (`DRAINIT_DRIAN`)
/// that would silently leave a default in place.
fn read_variables(raw: &mut Raw, vars: &[(OsString, OsString)]) -> Result<(), String> {
    for (name, value) in vars {
        if !name.as_encoded_bytes().starts_with(b"DRAINIT_") {
            continue;
        }
        let Some(name) = name.to_str() else {
            return Err(format!(
                "the variable {name:?} is not valid UTF-8, and starts with DRAINIT_ as drainit's own do"
            ));
        };
        let Some(opt) = find(|o| o.env == Some(name)) else {
            if is_service_link(name, value) {
                continue;
            }
            let known: Vec<&str> = OPTIONS.iter().filter_map(|o| o.env).collect();
            return Err(format!(
                "{name} is not a drainit variable (expected one of {})",
                known.join(", ")
            ));
        };
        if raw.get(opt.long).is_some() {
            continue;
        }
        let value = utf8(value.clone(), name)?;
        let values = if opt.list {
            value.split(',').map(str::to_string).collect()
        } else {
            vec![value]
        };
        let env = opt.env.unwrap_or_default();
        raw.given.push((opt.long, values, Origin::Env(env)));
    }
    Ok(())
}

/// Whether `name=value` is one of the variables the kubelet sets for a
/// Service named `drainit` or `drainit-*` (enableServiceLinks is on by
/// default): `DRAINIT_SERVICE_HOST=10.0.0.1`, `DRAINIT_SERVICE_PORT=80`,
/// `DRAINIT_SERVICE_PORT_HTTP=80`, `DRAINIT_PORT=tcp://10.0.0.1:80`,
/// `DRAINIT_PORT_80_TCP=tcp://10.0.0.1:80` and its `_PROTO`, `_PORT` and
/// `_ADDR`. Refusing them would crash every drainit pod of the namespace; the
/// value must have the link's shape too, so that a typo of drainit's own
/// variables (`DRAINIT_DRAIN_PORT=80`) is still refused.
fn is_service_link(name: &str, value: &OsStr) -> bool {
    let Some(value) = value.to_str() else {
        return false;
    };
    let is_port = |v: &str| v.parse::<u16>().is_ok_and(|p| p > 0);
    let is_ip = |v: &str| v.parse::<std::net::IpAddr>().is_ok();
    let is_proto = |v: &str| matches!(v, "TCP" | "UDP" | "SCTP");
    let is_url = |v: &str| {
        let Some((proto, address)) = v.split_once("://") else {
            return false;
        };
        address
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.port() > 0)
            && is_proto(&proto.to_ascii_uppercase())
    };
    let words: Vec<&str> = name.split('_').collect();
    // The Service's name, upper-cased with `-` as `_`, comes first: `DRAINIT`
    // and maybe more words; then the link's own words.
    (2..=words.len()).any(|start| match &words[start - 1..] {
        ["SERVICE", "HOST"] => is_ip(value),
        ["SERVICE", "PORT"] => is_port(value),
        ["SERVICE", "PORT", port_name @ ..] if !port_name.is_empty() => is_port(value),
        ["PORT"] => is_url(value),
        ["PORT", number, proto] => is_port(number) && is_proto(proto) && is_url(value),
        ["PORT", number, proto, "PROTO"] => {
            is_port(number) && is_proto(proto) && value.eq_ignore_ascii_case(proto)
        }
        ["PORT", number, proto, "PORT"] => is_port(number) && is_proto(proto) && is_port(value),
        ["PORT", number, proto, "ADDR"] => is_port(number) && is_proto(proto) && is_ip(value),
        _ => false,
    })
}

fn find(matches: impl Fn(&Opt) -> bool) -> Option<&'static Opt> {
    OPTIONS.iter().find(|o| matches(o))
}

fn unknown(flag: &str) -> String {
    format!("unknown option {flag} (see drainit --help; the app's own options go after its name or after --)")
}

fn utf8(value: OsString, name: &str) -> Result<String, String> {
    value
        .into_string()
        .map_err(|bytes| format!("{name}={:?} is not valid UTF-8", OsStr::new(&bytes)))
}

/// The text of `--help`, from [`OPTIONS`].
pub fn help() -> String {
    let mut out = format!(
        "drainit {}: a container init that drains before it stops the app.\n\n\
         Usage: drainit [OPTIONS] [--] COMMAND [ARGS]...\n       \
         drainit --check [OPTIONS] [--] [COMMAND [ARGS]...]\n\n\
         Runs COMMAND in its own process group, reaps zombies and forwards signals. On SIGTERM\n\
         it lets the app keep serving for the drain, then sends the stop signal to the whole\n\
         group, and SIGKILLs what is left before the platform's deadline (grace − kill margin).\n\n\
         Options (a flag wins over its [env: ...] variable):\n",
        env!("CARGO_PKG_VERSION")
    );
    for opt in OPTIONS {
        let short = opt.short.map_or("    ".to_string(), |s| format!("-{s}, "));
        let value = match opt.takes {
            Takes::Value(name) => format!(" {name}"),
            Takes::Flag => String::new(),
        };
        let _ = writeln!(out, "  {short}--{}{value}", opt.long);
        let _ = write!(out, "        {}", opt.help);
        match opt.env {
            Some(env) => {
                let _ = writeln!(out, " [env: {env}]");
            }
            None => out.push('\n'),
        }
    }
    out.push_str(
        "\nDurations: 15 (seconds), 15s, 500ms, 1m30s, 0. Signals: TERM, SIGTERM, sigterm, 15.\n\
         Exit codes: the app's; 128+N if it died of signal N; 2 bad usage or configuration;\n\
         126 COMMAND not executable; 127 COMMAND not found; 1 other failure of drainit.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str], vars: &[(&str, &str)]) -> Result<Raw, String> {
        let vars: Vec<(OsString, OsString)> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        match parse(args.iter().map(OsString::from), &vars)? {
            Parsed::Run(raw) => Ok(raw),
            other => Err(format!("{other:?}")),
        }
    }

    fn values<'a>(raw: &'a Raw, long: &str) -> Option<(Vec<&'a str>, Origin)> {
        raw.get(long)
            .map(|(values, origin)| (values.iter().map(String::as_str).collect(), origin.clone()))
    }

    #[test]
    fn reads_flags_values_and_the_command() {
        let raw = parse_args(
            &[
                "--drain",
                "5s",
                "--grace=30s",
                "-vv",
                "--no-group",
                "app",
                "--drain",
                "x",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            values(&raw, "drain"),
            Some((vec!["5s"], Origin::Flag("--drain".into())))
        );
        assert_eq!(
            values(&raw, "grace"),
            Some((vec!["30s"], Origin::Flag("--grace".into())))
        );
        assert_eq!(raw.count("verbose"), 2);
        assert!(raw.get("no-group").is_some());
        assert_eq!(raw.command, ["app", "--drain", "x"].map(OsString::from));
    }

    #[test]
    fn after_a_double_dash_everything_is_the_command() {
        let raw = parse_args(&["--", "--drain", "-v"], &[]).unwrap();
        assert_eq!(raw.command, ["--drain", "-v"].map(OsString::from));
        assert!(raw.get("drain").is_none());
    }

    #[test]
    fn a_flag_wins_over_its_variable_and_lists_split_on_commas() {
        let vars = [
            ("DRAINIT_DRAIN", "9s"),
            ("DRAINIT_REWRITE", "USR1:HUP,WINCH:0"),
        ];
        let raw = parse_args(&["--drain", "1s", "app"], &vars).unwrap();
        assert_eq!(
            values(&raw, "drain"),
            Some((vec!["1s"], Origin::Flag("--drain".into())))
        );
        assert_eq!(
            values(&raw, "rewrite"),
            Some((vec!["USR1:HUP", "WINCH:0"], Origin::Env("DRAINIT_REWRITE")))
        );
        let raw = parse_args(&["--rewrite", "A:B", "--rewrite=C:D", "app"], &vars).unwrap();
        assert_eq!(values(&raw, "rewrite").unwrap().0, vec!["A:B", "C:D"]);
    }

    #[test]
    fn a_value_given_twice_keeps_the_last() {
        let raw = parse_args(&["--drain", "1s", "--drain", "2s", "app"], &[]).unwrap();
        assert_eq!(values(&raw, "drain").unwrap().0, vec!["2s"]);
    }

    #[test]
    fn refuses_unknown_or_malformed_options() {
        let error = |args: &[&str]| parse_args(args, &[]).unwrap_err();
        assert!(error(&["--bogus", "app"]).starts_with("unknown option --bogus"));
        assert!(error(&["-x", "app"]).starts_with("unknown option -x"));
        assert_eq!(error(&["--drain"]), "--drain needs a value (DUR)");
        assert_eq!(error(&["--check=yes"]), "--check takes no value");
        assert!(parse_args(&["app"], &[("DRAINIT_DRIAN", "1s")])
            .unwrap_err()
            .starts_with(
                "DRAINIT_DRIAN is not a drainit variable (expected one of DRAINIT_DRAIN, "
            ));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused_as_options_and_kept_in_the_command() {
        use std::os::unix::ffi::OsStringExt;
        let bytes = |b: &[u8]| OsString::from_vec(b.to_vec());
        let error = parse([bytes(b"--dra\xffin"), bytes(b"app")], &[]).unwrap_err();
        assert!(
            error.starts_with("option \"--dra\\xFFin\" is not valid UTF-8"),
            "{error}"
        );
        match parse([bytes(b"/bin/\xff"), bytes(b"-\xff")], &[]) {
            Ok(Parsed::Run(raw)) => {
                assert_eq!(raw.command, [bytes(b"/bin/\xff"), bytes(b"-\xff")])
            }
            other => panic!("{other:?}"),
        }
        let vars = [(bytes(b"DRAINIT_DR\xffAIN"), bytes(b"5s"))];
        let error = parse([bytes(b"app")], &vars).unwrap_err();
        assert!(
            error.contains("is not valid UTF-8, and starts with DRAINIT_"),
            "{error}"
        );
        // Other variables may hold any bytes.
        let vars = [(bytes(b"APP_\xff"), bytes(b"\xff"))];
        assert!(parse([bytes(b"app")], &vars).is_ok());
    }

    #[test]
    fn help_and_version_win() {
        let vars = [(OsString::from("DRAINIT_DRIAN"), OsString::from("x"))];
        for args in [["--help"], ["-h"]] {
            assert!(matches!(
                parse(args.map(OsString::from), &vars),
                Ok(Parsed::Help)
            ));
        }
        assert!(matches!(
            parse(["-V"].map(OsString::from), &vars),
            Ok(Parsed::Version)
        ));
    }

    #[test]
    fn help_shows_every_option_and_variable() {
        let text = help();
        for opt in OPTIONS {
            assert!(text.contains(&format!("--{}", opt.long)), "{}", opt.long);
            if let Some(env) = opt.env {
                assert!(text.contains(env), "{env}");
            }
        }
    }
}
