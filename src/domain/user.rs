//! Accounts: email normalisation, roles, the password policy and addresses.

use serde::Deserialize;

use super::FieldErrors;

/// Longest accepted password (argon2 cost is linear in input; this bounds hashing work).
pub const MAX_PASSWORD_LEN: usize = 256;
/// Most saved addresses per user.
pub const MAX_ADDRESSES: usize = 20;

/// A syntactically valid, normalised (trimmed, lowercased) email address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Normalises and validates an email address.
    pub fn parse(raw: &str) -> Result<Email, &'static str> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() || email.len() > 254 {
            return Err("must be an email address of at most 254 characters");
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("must contain @");
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        if !(local_ok && domain_ok) {
            return Err("is not a valid email address");
        }
        Ok(Email(email))
    }

    /// Returns the normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Emails are personal data: keep them out of debug logs.
        f.write_str("Email(<redacted>)")
    }
}

/// A password as received; never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(p: impl Into<String>) -> Password {
        Password(p.into())
    }

    /// Returns the secret text (for hashing only).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Checks the password policy: `min_len..=MAX_PASSWORD_LEN` characters and not the email.
pub fn check_password(
    field: &str,
    password: &Password,
    email: Option<&Email>,
    min_len: usize,
    errors: &mut FieldErrors,
) {
    let p = password.expose();
    let len = p.chars().count();
    if len < min_len {
        errors.add(field, "too_short", format!("must be at least {min_len} characters"));
    } else if len > MAX_PASSWORD_LEN {
        errors.add(
            field,
            "too_long",
            format!("must be at most {MAX_PASSWORD_LEN} characters"),
        );
    }
    if let Some(email) = email {
        let lower = p.trim().to_lowercase();
        if lower == email.as_str() || email.as_str().split('@').next() == Some(lower.as_str()) {
            errors.add(field, "matches_email", "must not be your email address");
        }
    }
}

/// Account roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A shopper.
    Customer,
    /// Manages one seller's products and stock.
    Seller,
    /// Manages everything.
    Admin,
}

impl Role {
    /// Parses `customer|seller|admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "customer" => Some(Role::Customer),
            "seller" => Some(Role::Seller),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Returns the wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Seller => "seller",
            Role::Admin => "admin",
        }
    }
}

/// Body of `POST /auth/register`.
#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    /// Email (required); stored normalised to lowercase.
    pub email: Option<String>,
    /// Password (required), at least `[auth] password_min_length` characters.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Password>,
    /// Display name.
    pub name: Option<String>,
}

/// Body of `POST /auth/login`.
#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    /// Email.
    pub email: String,
    /// Password.
    #[schema(value_type = String, format = Password)]
    pub password: Password,
}

/// Body of `POST /auth/refresh` and `POST /auth/logout`.
#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshInput {
    /// The refresh token of the session.
    pub refresh_token: String,
}

/// Body of `POST /auth/password-reset`.
#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetInput {
    /// The account's email.
    pub email: String,
}

/// Body of `POST /auth/password-reset/confirm`.
#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirm {
    /// The token from the email.
    pub token: String,
    /// The new password.
    #[schema(value_type = String)]
    pub password: Password,
}

/// Body of `POST /auth/verify-email`.
#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailInput {
    /// The token from the email.
    pub token: String,
}

/// Body of `PATCH /me`.
#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// New display name.
    pub name: Option<String>,
    /// New password (requires `current_password`).
    #[schema(value_type = Option<String>, format = Password)]
    pub new_password: Option<Password>,
    /// Current password.
    #[schema(value_type = Option<String>, format = Password)]
    pub current_password: Option<Password>,
}

/// Body of `POST /admin/users/{id}/role`.
#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    /// `customer`, `seller` or `admin`.
    pub role: String,
    /// The seller (id or slug) a seller user manages; required for `seller`.
    pub seller: Option<String>,
}

/// Body of `POST /me/addresses` (all fields) and `PATCH /me/addresses/{id}` (any subset).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    /// Recipient.
    pub name: Option<String>,
    /// First line.
    pub line1: Option<String>,
    /// Second line.
    pub line2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Region/state.
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Make this the default address.
    pub is_default: Option<bool>,
}

/// A validated address.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Address {
    /// Recipient.
    pub name: String,
    /// First line.
    pub line1: String,
    /// Second line.
    pub line2: String,
    /// City.
    pub city: String,
    /// Region.
    pub region: String,
    /// Postal code.
    pub postal_code: String,
    /// Country code, uppercase.
    pub country: String,
    /// Phone.
    pub phone: String,
}

/// Applies `input` over `base` (a new address starts from the default) and validates the result.
pub fn check_address(base: &Address, input: &AddressInput, errors: &mut FieldErrors) -> Address {
    let pick = |new: &Option<String>, old: &str| {
        new.as_deref()
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| old.to_owned())
    };
    let address = Address {
        name: pick(&input.name, &base.name),
        line1: pick(&input.line1, &base.line1),
        line2: pick(&input.line2, &base.line2),
        city: pick(&input.city, &base.city),
        region: pick(&input.region, &base.region),
        postal_code: pick(&input.postal_code, &base.postal_code),
        country: pick(&input.country, &base.country).to_uppercase(),
        phone: pick(&input.phone, &base.phone),
    };
    errors.text("name", &address.name, true, 100);
    errors.text("line1", &address.line1, true, 200);
    errors.text("line2", &address.line2, false, 200);
    errors.text("city", &address.city, true, 100);
    errors.text("region", &address.region, false, 100);
    errors.text("postal_code", &address.postal_code, true, 20);
    errors.text("phone", &address.phone, false, 30);
    if !(address.country.len() == 2 && address.country.bytes().all(|b| b.is_ascii_uppercase())) {
        errors.add(
            "country",
            "invalid",
            "must be an ISO 3166-1 alpha-2 code such as US or DE",
        );
    }
    address
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@exa_mple.com",
            "a..b@example.com",
            "a@example.c0m",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_passwords_and_the_email_itself_are_rejected() {
        let email = Email::parse("alice@example.com").unwrap();
        let mut errors = FieldErrors::default();
        check_password("password", &Password::new("short"), Some(&email), 10, &mut errors);
        assert_eq!(errors.into_vec()[0].code, "too_short");
        let mut errors = FieldErrors::default();
        check_password(
            "password",
            &Password::new("Alice@Example.com"),
            Some(&email),
            10,
            &mut errors,
        );
        assert_eq!(errors.into_vec()[0].code, "matches_email");
        let mut errors = FieldErrors::default();
        check_password(
            "password",
            &Password::new("correct horse battery"),
            Some(&email),
            10,
            &mut errors,
        );
        assert!(errors.is_empty());
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        assert!(!format!("{:?}", Password::new("hunter2hunter2")).contains("hunter2"));
        assert!(!format!("{:?}", Email::parse("bob@example.com").unwrap()).contains("bob"));
    }

    #[test]
    fn addresses_require_the_essentials() {
        let mut errors = FieldErrors::default();
        check_address(
            &Address::default(),
            &AddressInput {
                country: Some("usa".into()),
                ..Default::default()
            },
            &mut errors,
        );
        let fields: Vec<String> = errors.into_vec().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, vec!["name", "line1", "city", "postal_code", "country"]);
    }

    proptest::proptest! {
        /// Whatever comes in, an accepted address is already normal: parsing it again gives
        /// itself, it is lower-case and trimmed, and it has one `@` with a dotted domain.
        #[test]
        fn accepted_emails_are_normal_and_stable(raw in "\\PC{0,30}|[ A-Za-z0-9._+-]{1,12}@[A-Za-z0-9-]{1,8}\\.[A-Za-z]{2,4} ?") {
            if let Ok(email) = Email::parse(&raw) {
                let text = email.as_str();
                let again = Email::parse(text);
                proptest::prop_assert_eq!(again.as_ref().map(Email::as_str), Ok(text));
                proptest::prop_assert_eq!(text, text.trim().to_lowercase());
                let (_, domain) = text.rsplit_once('@').unwrap();
                proptest::prop_assert!(domain.contains('.') && text.len() <= 254);
            }
        }
    }
}
