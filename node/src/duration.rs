//! Go-style durations (`100ms`, `3s`, `1m30s`, `10m0s`), as TM2 and CometBFT config files write them.

use std::time::Duration;

/// Parses a Go duration: one or more `‹number›‹unit›` parts with units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`; `0`
/// alone is zero.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("{s:?}: expected a number before {rest:?}"));
        }
        let value: f64 = rest[..digits].parse().map_err(|_| format!("{s:?}: bad number {:?}", &rest[..digits]))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("{s:?}: missing unit (ms, s, m, h, …)")),
            other => return Err(format!("{s:?}: unknown unit {other:?}")),
        };
        rest = &rest[unit_len..];
        total = total
            .checked_add(Duration::try_from_secs_f64(value * scale).map_err(|_| format!("{s:?}: out of range"))?)
            .ok_or_else(|| format!("{s:?}: out of range"))?;
    }
    Ok(total)
}

/// Formats a duration the way [`parse`] reads it (`100ms`, `3s`, `1m30s`).
pub fn format(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_and_format_round_trips() {
        let cases = [
            ("100ms", 100),
            ("3s", 3000),
            ("1m30s", 90_000),
            ("10m0s", 600_000),
            ("1h", 3_600_000),
            ("0", 0),
            ("1.5s", 1500),
        ];
        for (text, ms) in cases {
            assert_eq!(parse(text), Ok(Duration::from_millis(ms)), "{text}");
            assert_eq!(parse(&format(Duration::from_millis(ms))), Ok(Duration::from_millis(ms)));
        }
        for bad in ["", "3", "s", "3 parsecs", "-1s", "1x", "9999999999999999999h"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
