//! A secret value (broker password, access token) that cannot be printed by accident.
//!
//! In: the text of a password or token, from the file or an environment variable. Out: a
//! [`Secret`] whose `Debug` and `Display` print `***`; only [`Secret::expose`] gives the
//! text, so every place that uses it is easy to find.

use std::fmt;

/// A password or token. `{:?}` and `{}` print `***`, so settings can be logged whole.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret text, for the one place that sends or compares it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether there is no secret (an empty string).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_prints_as_stars() {
        let s = Secret::from("hunter2");
        assert_eq!(format!("{s:?} {s} {s:#?}"), "*** *** ***");
        assert_eq!(s.expose(), "hunter2");
        assert!(Secret::default().is_empty());
    }
}
