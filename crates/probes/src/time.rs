//! Calendar dates of epoch days, for timestamps printed in UTC (no date crate for one function).

/// `(year, month, day)` of a day count since 1970-01-01: Howard Hinnant's days-to-civil
/// algorithm (proleptic Gregorian).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn epoch_days_are_calendar_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_793), (2026, 12, 6));
        assert_eq!(super::civil_from_days(21_243), (2028, 2, 29));
        assert_eq!(super::civil_from_days(-1), (1969, 12, 31));
    }
}
