//! Interledger timestamps: 17 ASCII digits `YYYYMMDDHHmmssfff`, UTC, checked strictly (RFC 27/30): no month 13,
//! hour 24 or second 60, no spaces. Held as milliseconds since the Unix epoch.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why 17 bytes are not an Interledger timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {0:?} (expected YYYYMMDDHHmmssfff, UTC)")]
pub struct TimestampError(pub String);

/// A point in time with millisecond precision, as ILP packets carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

// Days from 1970-01-01 to the civil date (proleptic Gregorian), after H. Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Timestamp {
    /// The earliest and latest instants an ILP timestamp can hold.
    pub const MIN: Timestamp = Timestamp(-62_135_596_800_000);
    /// 9999-12-31T23:59:59.999Z.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999);

    /// Milliseconds since the Unix epoch, clamped to what the format can hold.
    pub fn from_unix_ms(ms: i64) -> Timestamp {
        Timestamp(ms.clamp(Self::MIN.0, Self::MAX.0))
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_ms(self) -> i64 {
        self.0
    }

    /// The wall clock now.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// This instant plus `ms` milliseconds (saturating at the format's limits).
    pub fn plus_ms(self, ms: i64) -> Timestamp {
        Timestamp::from_unix_ms(self.0.saturating_add(ms))
    }

    /// Parses the 17 ASCII digits.
    pub fn parse(bytes: &[u8]) -> Result<Timestamp, TimestampError> {
        let bad = || TimestampError(String::from_utf8_lossy(bytes).into_owned());
        if bytes.len() != 17 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| bytes[r].iter().fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
        let (y, mo, d, h, mi, s, ms) =
            (num(0..4), num(4..6), num(6..8), num(8..10), num(10..12), num(12..14), num(14..17));
        if y < 1 || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
            return Err(bad());
        }
        let days = days_from_civil(y, mo, d);
        Ok(Timestamp((((days * 24 + h) * 60 + mi) * 60 + s) * 1000 + ms))
    }

    /// The 17 ASCII digits.
    pub fn to_bytes(self) -> [u8; 17] {
        let ms = self.0.rem_euclid(1000) as u32;
        let secs = self.0.div_euclid(1000);
        let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
        let (y, m, d) = civil_from_days(days);
        // Two digits at a time, in unsigned arithmetic (this runs for every packet encoded; no formatting
        // machinery, no allocation). A year outside 0..=9999 keeps its last four digits, as a field of four does.
        let y = y.rem_euclid(10_000) as u32;
        let two = |v: u32| [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8];
        let mut out = [0u8; 17];
        out[0..2].copy_from_slice(&two(y / 100));
        out[2..4].copy_from_slice(&two(y % 100));
        out[4..6].copy_from_slice(&two(m as u32));
        out[6..8].copy_from_slice(&two(d as u32));
        out[8..10].copy_from_slice(&two(sod / 3600));
        out[10..12].copy_from_slice(&two(sod / 60 % 60));
        out[12..14].copy_from_slice(&two(sod % 60));
        out[14] = b'0' + (ms / 100) as u8;
        out[15..17].copy_from_slice(&two(ms % 100));
        out
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp::from_unix_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp::from_unix_ms(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> SystemTime {
        if t.0 >= 0 {
            UNIX_EPOCH + Duration::from_millis(t.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_millis(t.0.unsigned_abs())
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.to_bytes();
        let s = |r: std::ops::Range<usize>| std::str::from_utf8(&b[r]).unwrap_or("?");
        write!(f, "{}-{}-{}T{}:{}:{}.{}Z", s(0..4), s(4..6), s(6..8), s(8..10), s(10..12), s(12..14), s(14..17))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example_round_trips() {
        let t = Timestamp::parse(b"20171223012140549").unwrap();
        assert_eq!(t.unix_ms(), 1_513_992_100_549);
        assert_eq!(&t.to_bytes(), b"20171223012140549");
        assert_eq!(t.to_string(), "2017-12-23T01:21:40.549Z");
        assert_eq!(&Timestamp::MAX.to_bytes(), b"99991231235959999");
        assert_eq!(&Timestamp::MIN.to_bytes(), b"00010101000000000");
    }

    #[test]
    fn what_javascript_rolls_over_is_refused() {
        for bad in [
            &b"20171323012140549"[..],
            b"20171223242140549",
            b"20171223012160549",
            b"2017122301214054 ",
            b"20170229000000000",
            b"2017122301214054",
            b"00000101000000000",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(Timestamp::parse(b"20000229000000000").is_ok());
    }

    #[test]
    fn the_digits_are_those_of_the_calendar_date_in_every_field() {
        // Against formatting, field by field, at odd times across the whole range.
        let (min, max) = (Timestamp::MIN.unix_ms(), Timestamp::MAX.unix_ms());
        let mut t = min;
        while t <= max {
            let (secs, ms) = (t.div_euclid(1000), t.rem_euclid(1000));
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let sod = secs.rem_euclid(86_400);
            let want = format!("{y:04}{m:02}{d:02}{:02}{:02}{:02}{ms:03}", sod / 3600, sod / 60 % 60, sod % 60);
            assert_eq!(Timestamp(t).to_bytes(), want.as_bytes(), "{t}");
            t += 7_919_999_997;
        }
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        let mut t = Timestamp::parse(b"19000101000000000").unwrap().unix_ms();
        for _ in 0..146_097 {
            let ts = Timestamp(t + 86_399_999);
            assert_eq!(Timestamp::parse(&ts.to_bytes()), Ok(ts));
            t += 86_400_000;
        }
    }
}
