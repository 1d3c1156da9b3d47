//! Times given on the command line, and times as the commands print them.

/// Parses an RFC 3339 time or a date (midnight UTC) into milliseconds since the epoch.
///
/// # Errors
/// When the text is neither.
pub fn parse_time(text: &str) -> anyhow::Result<i64> {
    use time::format_description::well_known::Rfc3339;
    let t = match time::OffsetDateTime::parse(text, &Rfc3339) {
        Ok(t) => t,
        Err(_) => {
            let date = time::Date::parse(
                text,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|_| {
                anyhow::anyhow!(
                    "{text:?} is not a time like 2026-11-26T04:01:02Z or a date like 2026-11-26"
                )
            })?;
            date.midnight().assume_utc()
        }
    };
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// A time (milliseconds since the epoch) as RFC 3339, in UTC; the number itself when out of
/// range.
pub fn time_text(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_and_dates_parse() {
        assert_eq!(super::parse_time("1970-01-01T00:00:01.5Z").unwrap(), 1500);
        assert_eq!(super::parse_time("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(super::parse_time("1970-01-01T01:00:00+01:00").unwrap(), 0);
        assert!(super::parse_time("yesterday").is_err());
    }
}
