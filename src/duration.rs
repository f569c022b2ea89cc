//! Durations as people write them in Dockerfiles and manifests: `15`, `15s`,
//! `500ms`, `1m30s`, `1.5s`, `2h`, `0`.

use std::fmt;
use std::time::Duration;

/// What a duration looks like, for error messages.
pub const EXPECTED: &str = "expected e.g. 5s, 500ms, 1m30s";

/// Why a text is not a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// It does not have a duration's shape.
    NotADuration,
    /// It has the shape, but the number is too large for any duration.
    TooLong,
}

/// The units, longest first, as they must come; `ms` is matched before `m`.
const UNITS: &[(&str, u128)] = &[
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
];

/// Parses a duration. A bare number is seconds; otherwise one or more
/// `<number><unit>` parts with units `h`, `m`, `s`, `ms`, added up, each
/// unit at most once and in that order: `1m30m` is more likely a typo than
/// 31 minutes.
pub fn parse(text: &str) -> Result<Duration, Refused> {
    if text.is_empty() {
        return Err(Refused::NotADuration);
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return to_duration(number_times(text, 1_000_000_000)?);
    }
    let mut rest = text;
    let mut total: u128 = 0;
    // Units still allowed: those after the last one seen.
    let mut units = UNITS;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let unit_len = if after.starts_with("ms") { 2 } else { 1 };
        let unit = after.get(..unit_len).ok_or(Refused::NotADuration)?;
        let at = units
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or(Refused::NotADuration)?;
        let nanos = number_times(number, units[at].1)?;
        total = total.checked_add(nanos).ok_or(Refused::TooLong)?;
        units = &units[at + 1..];
        rest = &after[unit_len..];
    }
    to_duration(total)
}

/// `number × nanos` for a decimal `number` such as `2` or `1.25`; fractions
/// below a nanosecond are refused.
fn number_times(number: &str, nanos: u128) -> Result<u128, Refused> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !digits_only(whole)
        || !digits_only(fraction)
        || fraction.len() > 9
    {
        return Err(Refused::NotADuration);
    }
    // Digits only, so a failed parse is an overflow.
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| Refused::TooLong)?
    };
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| Refused::NotADuration)?
    };
    whole
        .checked_mul(nanos)
        .and_then(|n| n.checked_add(fraction * nanos / scale))
        .ok_or(Refused::TooLong)
}

fn to_duration(nanos: u128) -> Result<Duration, Refused> {
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| Refused::TooLong)?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Shows a duration the way it is written, exactly: `1m30s`, `5s`, `500ms`,
/// `1.25s`. What it shows parses back to the same duration.
pub struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            let (h, m, s) = (d.as_secs() / 3600, d.as_secs() / 60 % 60, d.as_secs() % 60);
            let mut wrote = false;
            for (value, unit) in [(h, "h"), (m, "m"), (s, "s")] {
                if value > 0 {
                    write!(f, "{value}{unit}")?;
                    wrote = true;
                }
            }
            if !wrote {
                write!(f, "0s")?;
            }
            Ok(())
        } else if d < Duration::from_secs(1) && d.subsec_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}ms", d.subsec_millis())
        } else {
            let fraction = format!("{:09}", d.subsec_nanos());
            write!(f, "{}.{}s", d.as_secs(), fraction.trim_end_matches('0'))
        }
    }
}

/// A duration in seconds with two decimals, rounded: `5.31`, as the timeline
/// logs show instants. Integer arithmetic: no float formatting in the binary.
pub struct Seconds(pub Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let centis = (self.0.as_nanos() + 5_000_000) / 10_000_000;
        write!(f, "{}.{:02}", centis / 100, centis % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Result<Duration, Refused> {
        Ok(Duration::from_millis(n))
    }

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse("15"), ms(15_000));
        assert_eq!(parse("15s"), ms(15_000));
        assert_eq!(parse("500ms"), ms(500));
        assert_eq!(parse("1m30s"), ms(90_000));
        assert_eq!(parse("0"), ms(0));
        assert_eq!(parse("0s"), ms(0));
        assert_eq!(parse("2h"), ms(7_200_000));
        assert_eq!(parse("1.5s"), ms(1_500));
        assert_eq!(parse("2.5"), ms(2_500));
        assert_eq!(parse(".5s"), ms(500));
        assert_eq!(parse("1h1m1s1ms"), ms(3_661_001));
        assert_eq!(parse("0.000000001s"), Ok(Duration::from_nanos(1)));
        assert_eq!(parse("1m30s500ms"), ms(90_500));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for text in [
            "",
            "5 seconds",
            "s",
            "5x",
            "-5s",
            "+5s",
            " 5s",
            "5s ",
            "1.2.3s",
            ".",
            ".s",
            "5S",
            "1e3",
            "5sec",
            "1m30",
            "0.0000000001s",
            "5s5s5s",
            "1m30m",
            "30s1m",
            "500mss",
            "1ms1s",
        ] {
            assert_eq!(parse(text), Err(Refused::NotADuration), "{text:?}");
        }
    }

    #[test]
    fn a_number_too_large_for_a_duration_is_too_long() {
        for text in [
            "99999999999999999999999999999999999999999h",
            "18446744073709551616",
            "18446744073709551616s",
            "340282366920938463463374607431768211456ms",
            "5124095576030432h",
        ] {
            assert_eq!(parse(text), Err(Refused::TooLong), "{text:?}");
        }
    }

    #[test]
    fn shows_seconds_with_two_decimals() {
        let show = |nanos: u64| Seconds(Duration::from_nanos(nanos)).to_string();
        assert_eq!(show(0), "0.00");
        assert_eq!(show(5_309_999_999), "5.31");
        assert_eq!(show(5_304_999_999), "5.30");
        assert_eq!(show(28_000_000_000), "28.00");
        assert_eq!(show(999_999_999), "1.00");
    }

    #[test]
    fn shows_durations_as_written() {
        let show = |text| Human(parse(text).unwrap()).to_string();
        assert_eq!(show("0"), "0s");
        assert_eq!(show("90"), "1m30s");
        assert_eq!(show("2h"), "2h");
        assert_eq!(show("500ms"), "500ms");
        assert_eq!(show("1.25s"), "1.25s");
        assert_eq!(show("61.5s"), "61.5s");
        assert_eq!(show("1.000000001s"), "1.000000001s");
        assert_eq!(show("0.0000015s"), "0.0000015s");
        let huge = Duration::new(u64::MAX, 500_000_000);
        assert_eq!(parse(&Human(huge).to_string()), Ok(huge));
    }
}
