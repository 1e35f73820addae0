//! URL slugs: lowercase ASCII letters, digits and single dashes.

use std::fmt;

/// Longest accepted slug.
pub const MAX_SLUG_LEN: usize = 120;

/// A validated slug.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    /// Validates a client-supplied slug.
    pub fn parse(s: &str) -> Result<Slug, &'static str> {
        if s.is_empty() || s.len() > MAX_SLUG_LEN {
            return Err("must be 1 to 120 characters");
        }
        let valid = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
            && !s.contains("--");
        if !valid {
            return Err("may contain only lowercase letters, digits and single dashes");
        }
        Ok(Slug(s.to_owned()))
    }

    /// Derives a slug from free text (transliterating non-ASCII), limited to `max_len` bytes.
    /// Returns `None` when nothing sluggable remains.
    pub fn derive(text: &str, max_len: usize) -> Option<Slug> {
        let ascii = deunicode::deunicode(text);
        let mut out = String::with_capacity(ascii.len().min(max_len));
        for c in ascii.chars() {
            if out.len() >= max_len {
                break;
            }
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        while out.ends_with('-') {
            out.pop();
        }
        (!out.is_empty()).then_some(Slug(out))
    }

    /// Returns the slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the slug with `-suffix` appended (used to make derived slugs unique).
    pub fn with_suffix(&self, suffix: &str) -> Slug {
        let base = &self.0[..self.0.len().min(MAX_SLUG_LEN - suffix.len() - 1)];
        Slug(format!("{}-{}", base.trim_end_matches('-'), suffix))
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_become_readable_slugs() {
        let slug = Slug::derive("HP Pavilion dv7 — 43.2 cm (17\") Café", 120).unwrap();
        assert_eq!(slug.as_str(), "hp-pavilion-dv7-43-2-cm-17-cafe");
        assert!(Slug::parse(slug.as_str()).is_ok());
    }

    #[test]
    fn invalid_slugs_are_rejected() {
        for bad in ["", "Upper", "two--dashes", "-lead", "trail-", "sp ace"] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn suffixes_keep_slugs_within_the_limit() {
        let long = Slug::derive(&"a".repeat(200), 120).unwrap();
        let suffixed = long.with_suffix("12345");
        assert!(suffixed.as_str().len() <= MAX_SLUG_LEN);
        assert!(Slug::parse(suffixed.as_str()).is_ok());
    }

    proptest::proptest! {
        /// A slug parses to itself; one derived from any title parses.
        #[test]
        fn slugs_parse_to_themselves_and_derived_ones_parse(raw in "\\PC{0,40}", title in "\\PC{0,80}") {
            if let Ok(slug) = Slug::parse(&raw) {
                proptest::prop_assert_eq!(Slug::parse(slug.as_str()).map(|s| s.as_str().to_owned()), Ok(slug.as_str().to_owned()));
            }
            if let Some(slug) = Slug::derive(&title, 120) {
                proptest::prop_assert!(Slug::parse(slug.as_str()).is_ok(), "{:?} from {:?}", slug.as_str(), title);
            }
        }
    }
}
