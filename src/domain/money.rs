//! Money in integer minor units with an ISO 4217 currency. Never floats.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency code (three ASCII uppercase letters), stored inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses a currency code; lowercase input is accepted and normalised.
    pub fn parse(code: &str) -> Option<Currency> {
        let bytes = code.trim().as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        Some(Currency([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
    }

    /// Returns the code as a string slice.
    pub fn as_str(&self) -> &str {
        // The constructor only admits ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl Currency {
    /// The digits after the decimal point of the currency's minor unit (ISO 4217: 0 for JPY,
    /// 3 for KWD, 2 for most).
    pub fn minor_digits(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "UYI" | "VND"
            | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }

    /// `amount` minor units as text: `1234` USD is `12.34 USD`.
    pub fn format(&self, amount: i64) -> String {
        let digits = self.minor_digits();
        let sign = if amount < 0 { "-" } else { "" };
        let abs = amount.unsigned_abs();
        if digits == 0 {
            return format!("{sign}{abs} {self}");
        }
        let unit = 10u64.pow(digits);
        format!(
            "{sign}{}.{:0width$} {self}",
            abs / unit,
            abs % unit,
            width = digits as usize
        )
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Currency::parse(&s).ok_or_else(|| serde::de::Error::custom("currency must be a 3-letter ISO 4217 code"))
    }
}

impl utoipa::PartialSchema for Currency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[A-Z]{3}$"))
            .description(Some("ISO 4217 currency code"))
            .examples([serde_json::json!("USD")])
            .into()
    }
}

impl utoipa::ToSchema for Currency {}

/// An amount of money: integer minor units (cents) and a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"amount": 129900, "currency": "USD"}))]
pub struct Money {
    /// Amount in minor units (cents): never a float.
    pub amount: i64,
    /// Currency.
    pub currency: Currency,
}

impl Money {
    /// Builds an amount.
    pub fn new(amount: i64, currency: Currency) -> Money {
        Money { amount, currency }
    }

    /// Adds two amounts of the same currency; `None` on currency mismatch or overflow.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        (self.currency == other.currency).then_some(())?;
        Some(Money::new(self.amount.checked_add(other.amount)?, self.currency))
    }

    /// Multiplies by a quantity; `None` on overflow.
    pub fn checked_mul(self, quantity: i64) -> Option<Money> {
        Some(Money::new(self.amount.checked_mul(quantity)?, self.currency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_print_with_their_currency_minor_digits() {
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(usd.format(1234), "12.34 USD");
        assert_eq!(usd.format(5), "0.05 USD");
        assert_eq!(usd.format(-250), "-2.50 USD");
        assert_eq!(Currency::parse("JPY").unwrap().format(1234), "1234 JPY");
        assert_eq!(Currency::parse("KWD").unwrap().format(1234), "1.234 KWD");
    }
    use proptest::prelude::*;

    fn usd(amount: i64) -> Money {
        Money::new(amount, Currency::parse("USD").unwrap())
    }

    #[test]
    fn currency_codes_are_normalised_and_validated() {
        assert_eq!(Currency::parse("eur").unwrap().as_str(), "EUR");
        assert!(Currency::parse("EURO").is_none());
        assert!(Currency::parse("U$D").is_none());
    }

    #[test]
    fn different_currencies_do_not_add() {
        let eur = Money::new(1, Currency::parse("EUR").unwrap());
        assert_eq!(usd(1).checked_add(eur), None);
    }

    #[test]
    fn money_serialises_as_amount_and_currency() {
        assert_eq!(
            serde_json::to_string(&usd(129900)).unwrap(),
            r#"{"amount":129900,"currency":"USD"}"#
        );
    }

    proptest! {
        #[test]
        fn addition_is_exact_or_refused(a: i64, b: i64) {
            match usd(a).checked_add(usd(b)) {
                Some(sum) => prop_assert_eq!(sum.amount as i128, a as i128 + b as i128),
                None => prop_assert!(a.checked_add(b).is_none()),
            }
        }

        #[test]
        fn multiplication_is_exact_or_refused(a: i64, q in 0i64..10_000) {
            match usd(a).checked_mul(q) {
                Some(total) => prop_assert_eq!(total.amount as i128, a as i128 * q as i128),
                None => prop_assert!(a.checked_mul(q).is_none()),
            }
        }
    }
}
