//! What the events file's writers (the shim, mifrun's `--guard`) share: the schema
//! version of its lines and the UTC civil time their `time` field is written in.

/// `"v"` of every line.
pub const VERSION: u32 = 1;

/// Seconds since the epoch to a UTC civil date and time: (year, month, day, hour,
/// minute, second) (Howard Hinnant's days-from-civil, inverted). Allocation-free: the
/// shim calls it in hooks.
pub fn civil_utc(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_across_leap_years_and_2038() {
        assert_eq!(civil_utc(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil_utc(951_827_696), (2000, 2, 29, 12, 34, 56));
        assert_eq!(civil_utc(2_147_483_648), (2038, 1, 19, 3, 14, 8));
        assert_eq!(civil_utc(1_796_169_599), (2026, 12, 1, 23, 59, 59));
        assert_eq!(civil_utc(-1), (1969, 12, 31, 23, 59, 59));
    }
}
