//! LogQL text built from parts (labels are quoted, filters escaped) and `--since`-style durations.

use std::time::Duration;

use anyhow::bail;

/// A LogQL string literal: double-quoted, with `\` and `"` escaped.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `{k1="v1", k2="v2"}`: a stream selector matching every label exactly.
pub fn selector(labels: &[(&str, &str)]) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={}", quote(v))).collect();
    format!("{{{}}}", parts.join(", "))
}

/// A line filter keeping lines that contain `word` in any case: `|~ "(?i)<word, regex-escaped>"`.
pub fn contains_ignoring_case(word: &str) -> String {
    let mut pattern = String::from("(?i)");
    for c in word.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    format!("|~ {}", quote(&pattern))
}

/// Longest `--since` accepted: Loki's default `max_query_length` is 30d1h.
pub const MAX_SINCE: Duration = Duration::from_secs(30 * 24 * 3600);

/// `90s`, `10m`, `2h`, `1d`, or combinations such as `1h30m`; positive and at most 30 days.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let usage = || format!("invalid duration `{text}`: use a number with a unit s, m, h or d, e.g. 10m, 2h, 1d, 1h30m");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => bail!(usage()),
        };
        let Ok(n) = digits.parse::<u64>() else { bail!(usage()) };
        total = n.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(|| anyhow::format_err!(usage()))?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        bail!(usage());
    }
    let duration = Duration::from_secs(total);
    if duration > MAX_SINCE {
        bail!("duration `{text}` is longer than 30 days, the longest query Loki accepts by default");
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_quote_and_escape_values() {
        assert_eq!(selector(&[("service_name", "worker")]), r#"{service_name="worker"}"#);
        assert_eq!(selector(&[("a", r#"x"y\z"#), ("b", "c")]), r#"{a="x\"y\\z", b="c"}"#);
    }

    #[test]
    fn level_filters_are_case_insensitive_and_regex_escaped() {
        assert_eq!(contains_ignoring_case("error"), r#"|~ "(?i)error""#);
        // The regex escape's backslash is itself escaped inside the LogQL string.
        assert_eq!(contains_ignoring_case("a.b"), r#"|~ "(?i)a\\.b""#);
    }

    #[test]
    fn durations_parse_with_units_and_reject_nonsense() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("45s").unwrap(), Duration::from_secs(45));
        for bad in ["", "10", "m", "0m", "-5m", "10x", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
        assert!(format!("{:#}", parse_duration("31d").unwrap_err()).contains("30 days"));
    }
}
