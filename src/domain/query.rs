//! Parsing of the query parameters that listings, search and order lists share: page size,
//! amounts in minor units, price ranges and yes/no flags. Each parser records what is wrong
//! in [`FieldErrors`], so a request with three bad parameters hears about all three.

use super::FieldErrors;

/// Page size when none is asked for.
pub const DEFAULT_LIMIT: usize = 20;
/// Largest page size.
pub const MAX_LIMIT: usize = 100;

/// `limit`: an integer from 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn limit(raw: Option<&str>, errors: &mut FieldErrors) -> usize {
    match raw.map(str::trim) {
        None => DEFAULT_LIMIT,
        Some(s) => match s.parse::<usize>() {
            Ok(n @ 1..=MAX_LIMIT) => n,
            _ => {
                errors.add(
                    "limit",
                    "out_of_range",
                    format!("must be an integer from 1 to {MAX_LIMIT}"),
                );
                DEFAULT_LIMIT
            }
        },
    }
}

/// `cursor` of a page keyed by time-ordered ids: the id the previous page ended at.
pub fn id_cursor(raw: Option<&str>, errors: &mut FieldErrors) -> Option<super::Id> {
    let raw = raw?;
    let id = super::Id::parse(raw);
    if id.is_none() {
        errors.add("cursor", "invalid", "must be a next_cursor from a previous page");
    }
    id
}

/// A non-negative amount in minor units.
pub fn amount(field: &str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<i64> {
    let raw = raw?.trim();
    match raw.parse::<i64>() {
        Ok(n) if n >= 0 => Some(n),
        _ => {
            errors.add(field, "invalid", "must be a non-negative integer amount in minor units");
            None
        }
    }
}

/// `min_price` and `max_price`, the lower not above the upper.
pub fn price_range(min: Option<&str>, max: Option<&str>, errors: &mut FieldErrors) -> (Option<i64>, Option<i64>) {
    let lo = amount("min_price", min, errors);
    let hi = amount("max_price", max, errors);
    if let (Some(lo), Some(hi)) = (lo, hi) {
        if lo > hi {
            errors.add("min_price", "invalid_range", "must not exceed max_price");
        }
    }
    (lo, hi)
}

/// A yes/no flag: `true`/`1` or `false`/`0`, false when absent.
/// An RFC 3339 time as Unix milliseconds (absent: `None`); a bad one records `field`.
pub fn time(field: &str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<i64> {
    let raw = raw?;
    match humantime::parse_rfc3339_weak(raw) {
        Ok(t) => Some(
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        ),
        Err(_) => {
            errors.add(field, "invalid", "must be an RFC 3339 time");
            None
        }
    }
}

pub fn flag(field: &str, raw: Option<&str>, errors: &mut FieldErrors) -> bool {
    match raw.map(str::trim) {
        None => false,
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(_) => {
            errors.add(field, "invalid", "must be true or false");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_parameter_is_reported() {
        let mut errors = FieldErrors::default();
        assert_eq!(limit(Some("0"), &mut errors), DEFAULT_LIMIT);
        assert_eq!(
            price_range(Some("500"), Some("100"), &mut errors),
            (Some(500), Some(100))
        );
        assert!(!flag("in_stock", Some("maybe"), &mut errors));
        assert_eq!(amount("min_price", Some("-1"), &mut errors), None);
        let fields: Vec<_> = errors.into_vec().into_iter().map(|e| (e.field, e.code)).collect();
        assert_eq!(
            fields,
            vec![
                ("limit".to_string(), "out_of_range"),
                ("min_price".to_string(), "invalid_range"),
                ("in_stock".to_string(), "invalid"),
                ("min_price".to_string(), "invalid"),
            ]
        );
    }

    #[test]
    fn absent_parameters_take_their_defaults() {
        let mut errors = FieldErrors::default();
        assert_eq!(limit(None, &mut errors), 20);
        assert_eq!(price_range(None, None, &mut errors), (None, None));
        assert!(!flag("in_stock", None, &mut errors));
        assert!(flag("in_stock", Some("1"), &mut errors));
        assert!(errors.is_empty());
    }

    proptest::proptest! {
        /// Any text: a parser returns a value in range or records exactly one error, never
        /// both silently and never a panic.
        #[test]
        fn query_parsers_accept_exactly_their_language(raw in "\\PC{0,24}", n in 0u64..200, lo in 0i64..1_000_000, hi in 0i64..1_000_000) {
            let mut errors = FieldErrors::default();
            let got = limit(Some(&raw), &mut errors);
            let ok = matches!(raw.trim().parse::<usize>(), Ok(1..=MAX_LIMIT));
            proptest::prop_assert!((1..=MAX_LIMIT).contains(&got));
            proptest::prop_assert_eq!(errors.is_empty(), ok);

            let mut errors = FieldErrors::default();
            proptest::prop_assert_eq!(limit(Some(&n.to_string()), &mut errors), if (1..=100).contains(&n) { n as usize } else { DEFAULT_LIMIT });

            let mut errors = FieldErrors::default();
            let parsed = amount("min_price", Some(&raw), &mut errors);
            proptest::prop_assert_eq!(parsed.is_some(), errors.is_empty());
            proptest::prop_assert!(parsed.is_none_or(|a| a >= 0));

            let mut errors = FieldErrors::default();
            let (a, b) = price_range(Some(&lo.to_string()), Some(&hi.to_string()), &mut errors);
            proptest::prop_assert_eq!((a, b), (Some(lo), Some(hi)));
            proptest::prop_assert_eq!(errors.is_empty(), lo <= hi);

            let mut errors = FieldErrors::default();
            let on = flag("in_stock", Some(&raw), &mut errors);
            let known = ["true", "1", "false", "0"].contains(&raw.trim());
            proptest::prop_assert_eq!(errors.is_empty(), known);
            proptest::prop_assert!(!on || ["true", "1"].contains(&raw.trim()));

            let mut errors = FieldErrors::default();
            proptest::prop_assert_eq!(time("since", Some(&raw), &mut errors).is_some(), errors.is_empty());
        }

        /// A cursor is an id a page handed out: every id round-trips, other text is refused.
        #[test]
        fn id_cursors_round_trip_and_refuse_the_rest(bytes: [u8; 16], junk in "\\PC{0,40}") {
            let id = super::super::Id::from_bytes(bytes);
            let mut errors = FieldErrors::default();
            proptest::prop_assert_eq!(id_cursor(Some(&id.to_string()), &mut errors), Some(id));
            proptest::prop_assert!(errors.is_empty());
            let mut errors = FieldErrors::default();
            match id_cursor(Some(&junk), &mut errors) {
                Some(parsed) => proptest::prop_assert_eq!(id_cursor(Some(&parsed.to_string()), &mut FieldErrors::default()), Some(parsed)),
                None => proptest::prop_assert!(!errors.is_empty()),
            }
        }
    }
}
