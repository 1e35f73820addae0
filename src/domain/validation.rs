//! Field-level validation errors, collected so a client sees every problem at once.

use serde::Serialize;

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path of the field, e.g. `variants[0].price.amount`.
    pub field: String,
    /// Stable machine-readable reason, e.g. `required`, `too_long`.
    pub code: &'static str,
    /// Human explanation.
    pub message: String,
}

/// An accumulator of field errors.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Records an invalid field.
    pub fn add(&mut self, field: impl Into<String>, code: &'static str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            code,
            message: message.into(),
        });
    }

    /// Checks a text field's trimmed length, recording `required`/`too_long`.
    pub fn text(&mut self, field: &str, value: &str, required: bool, max_len: usize) {
        let len = value.trim().chars().count();
        if required && len == 0 {
            self.add(field, "required", "must not be empty");
        } else if len > max_len {
            self.add(field, "too_long", format!("must be at most {max_len} characters"));
        }
    }

    /// Records `other`'s errors under `prefix` (`shipping_address` + `line1` →
    /// `shipping_address.line1`).
    pub fn nest(&mut self, prefix: &str, other: FieldErrors) {
        for mut e in other.0 {
            e.field = format!("{prefix}.{}", e.field);
            self.0.push(e);
        }
    }

    /// Returns whether no error was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Returns `Ok(value)` when no error was recorded, else the errors.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }

    /// Returns the recorded errors.
    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
}
