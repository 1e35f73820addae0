//! Shipping zones, methods and rates: which methods ship to an address, and what each costs.
//!
//! A zone lists the areas it covers: a country (`US`), a region of one (`US-CA`), or `*`
//! (anywhere no other zone covers). For an address the most specific covering zone applies:
//! its region, else its country, else `*`. No two zones may name the same area, so the
//! answer is never ambiguous. A store with no zones at all ships everywhere with the
//! `[pricing]` rule as its one method, `standard`.
//!
//! **Multi-seller carts**: every seller ships their own parcel (one fulfilment each), and a
//! method prices each parcel on its own: a flat rate is charged per parcel, a weight band
//! by that parcel's weight, a free-over threshold against that parcel's goods after
//! discounts. The cart's shipping is the sum. A method is offered only when it can price
//! every parcel (a parcel heavier than its last weight band rules it out).

use serde::Deserialize;

use super::FieldErrors;

/// Body of `POST /admin/shipping-zones` and `PATCH /admin/shipping-zones/{id}` (absent
/// fields stay; `methods` replaces the whole list).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneInput {
    /// Name, e.g. "Domestic" (1–80 characters).
    pub name: Option<String>,
    /// Areas: ISO 3166-1 alpha-2 countries (`US`), regions (`US-CA`), or `*` for everywhere
    /// no other zone covers.
    pub areas: Option<Vec<String>>,
    /// Its methods (at least one).
    pub methods: Option<Vec<MethodInput>>,
}

/// A shipping method of a zone.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MethodInput {
    /// Code, unique within the zone: lower-case letters, digits, `-` and `_` (checkout's
    /// `shipping_method`).
    pub code: String,
    /// What shoppers see, e.g. "Express" (1–80 characters).
    pub name: String,
    /// The price rule.
    pub rate: RateInput,
    /// Delivery estimate: at the soonest, in days (default 0).
    #[serde(default)]
    pub min_days: u16,
    /// Delivery estimate: at the latest, in days (default `min_days`).
    pub max_days: Option<u16>,
}

/// How a method prices a parcel.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RateInput {
    /// The same price for every parcel.
    Flat {
        /// Minor units.
        amount: i64,
    },
    /// By weight: a parcel costs the amount of the first band it fits in; a parcel heavier
    /// than the last band is not offered this method.
    Weight {
        /// Bands in increasing `up_to_grams`.
        bands: Vec<BandInput>,
    },
    /// Free for parcels of at least `threshold` (goods after discounts), `amount` below it.
    FreeOver {
        /// Minor units.
        threshold: i64,
        /// Minor units.
        amount: i64,
    },
}

/// One weight band.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BandInput {
    /// Parcels up to this weight (inclusive), grams.
    pub up_to_grams: u64,
    /// Cost, minor units.
    pub amount: i64,
}

/// A method's price rule, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rate {
    /// Per parcel.
    Flat(i64),
    /// `(up_to_grams, amount)` in increasing weight.
    Weight(Vec<(u64, i64)>),
    /// Free from `threshold`, `amount` below.
    FreeOver {
        /// Minor units.
        threshold: i64,
        /// Minor units.
        amount: i64,
    },
}

/// A shipping method, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// Code within its zone.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Price rule.
    pub rate: Rate,
    /// Delivery estimate, days.
    pub min_days: u16,
    /// Delivery estimate, days.
    pub max_days: u16,
}

/// One seller's parcel of a cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Parcel {
    /// Its goods after discounts, minor units.
    pub goods: i64,
    /// Its weight, grams.
    pub grams: u64,
}

/// What a method costs for a cart: in total and per parcel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The sum over parcels.
    pub amount: i64,
    /// Per parcel, in the parcels' order.
    pub per_parcel: Vec<i64>,
}

impl Rate {
    /// What one parcel costs, or `None` when the rule cannot ship it.
    pub fn price(&self, parcel: Parcel) -> Option<i64> {
        match self {
            Rate::Flat(amount) => Some(*amount),
            Rate::Weight(bands) => bands.iter().find(|(up_to, _)| parcel.grams <= *up_to).map(|(_, a)| *a),
            Rate::FreeOver { threshold, amount } => Some(if parcel.goods >= *threshold { 0 } else { *amount }),
        }
    }
}

impl Method {
    /// What the method costs for `parcels`, or `None` when it cannot ship one of them.
    pub fn quote(&self, parcels: &[Parcel]) -> Option<Quote> {
        let per_parcel = parcels
            .iter()
            .map(|p| self.rate.price(*p))
            .collect::<Option<Vec<i64>>>()?;
        Some(Quote {
            amount: per_parcel.iter().sum(),
            per_parcel,
        })
    }
}

/// An area a zone covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Area {
    /// Anywhere no other zone covers.
    Everywhere,
    /// A country, ISO 3166-1 alpha-2.
    Country(String),
    /// A region of a country.
    Region(String, String),
}

impl Area {
    /// Parses `US`, `US-CA` or `*` (case-insensitive).
    pub fn parse(raw: &str) -> Option<Area> {
        let raw = raw.trim().to_ascii_uppercase();
        if raw == "*" {
            return Some(Area::Everywhere);
        }
        let (country, region) = match raw.split_once('-') {
            Some((c, r)) => (c, Some(r)),
            None => (raw.as_str(), None),
        };
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return None;
        }
        match region {
            None => Some(Area::Country(country.to_owned())),
            Some(r) if (1..=3).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                Some(Area::Region(country.to_owned(), r.to_owned()))
            }
            Some(_) => None,
        }
    }

    /// How well it covers `country`/`region`: higher is more specific; `None` = not at all.
    pub fn covers(&self, country: &str, region: &str) -> Option<u8> {
        match self {
            Area::Everywhere => Some(0),
            Area::Country(c) => c.eq_ignore_ascii_case(country.trim()).then_some(1),
            Area::Region(c, r) => {
                (c.eq_ignore_ascii_case(country.trim()) && r.eq_ignore_ascii_case(region.trim())).then_some(2)
            }
        }
    }
}

impl std::fmt::Display for Area {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Area::Everywhere => f.write_str("*"),
            Area::Country(c) => f.write_str(c),
            Area::Region(c, r) => write!(f, "{c}-{r}"),
        }
    }
}

/// The index of the zone that applies to `country`/`region`: the most specific cover.
pub fn zone_for<'z>(zones: impl IntoIterator<Item = &'z [Area]>, country: &str, region: &str) -> Option<usize> {
    zones
        .into_iter()
        .enumerate()
        .filter_map(|(i, areas)| {
            areas
                .iter()
                .filter_map(|a| a.covers(country, region))
                .max()
                .map(|s| (s, i))
        })
        .max_by_key(|(score, i)| (*score, std::cmp::Reverse(*i)))
        .map(|(_, i)| i)
}

/// Checks areas into a sorted, deduplicated list, recording bad ones under `areas[i]`.
pub fn areas(raw: &[String], errors: &mut FieldErrors) -> Vec<Area> {
    if raw.is_empty() {
        errors.add("areas", "required", "name at least one country, region or *");
    }
    let mut out: Vec<Area> = raw
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let parsed = Area::parse(a);
            if parsed.is_none() {
                errors.add(
                    format!("areas[{i}]"),
                    "invalid",
                    "a country (US), a region of one (US-CA), or *",
                );
            }
            parsed
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Checks methods, recording bad fields under `methods[i]`.
pub fn methods(raw: &[MethodInput], errors: &mut FieldErrors) -> Vec<Method> {
    if raw.is_empty() {
        errors.add("methods", "required", "a zone has at least one method");
    }
    let mut seen = std::collections::HashSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, m)| {
            let mut e = FieldErrors::default();
            let code = m.code.trim().to_owned();
            let good_code = !code.is_empty()
                && code.len() <= 40
                && code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !good_code {
                e.add("code", "invalid", "1–40 of a-z, 0-9, - and _");
            } else if !seen.insert(code.clone()) {
                e.add("code", "duplicate", "another method of the zone has this code");
            }
            e.text("name", m.name.trim(), true, 80);
            let max_days = m.max_days.unwrap_or(m.min_days);
            if max_days < m.min_days {
                e.add("max_days", "out_of_range", "must be at least min_days");
            }
            let rate = rate(&m.rate, &mut e);
            errors.nest(&format!("methods[{i}]"), e);
            Method {
                code,
                name: m.name.trim().to_owned(),
                rate,
                min_days: m.min_days,
                max_days,
            }
        })
        .collect()
}

fn rate(raw: &RateInput, errors: &mut FieldErrors) -> Rate {
    let mut amount = |field: &str, v: i64| {
        if v < 0 {
            errors.add(format!("rate.{field}"), "out_of_range", "must not be negative");
        }
        v
    };
    match raw {
        RateInput::Flat { amount: a } => Rate::Flat(amount("amount", *a)),
        RateInput::FreeOver { threshold, amount: a } => Rate::FreeOver {
            threshold: amount("threshold", *threshold),
            amount: amount("amount", *a),
        },
        RateInput::Weight { bands } => {
            let checked: Vec<(u64, i64)> = bands
                .iter()
                .enumerate()
                .map(|(i, b)| (b.up_to_grams, amount(&format!("bands[{i}].amount"), b.amount)))
                .collect();
            if checked.is_empty() {
                errors.add("rate.bands", "required", "at least one band");
            } else if checked.windows(2).any(|w| w[1].0 <= w[0].0) {
                errors.add("rate.bands", "invalid", "up_to_grams must increase band by band");
            }
            Rate::Weight(checked)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parcel(goods: i64, grams: u64) -> Parcel {
        Parcel { goods, grams }
    }

    #[test]
    fn the_most_specific_zone_applies() {
        let zones = [
            vec![Area::Everywhere],
            vec![Area::Country("US".into())],
            vec![
                Area::Region("US".into(), "HI".into()),
                Area::Region("US".into(), "AK".into()),
            ],
        ];
        let slices = || zones.iter().map(Vec::as_slice);
        assert_eq!(zone_for(slices(), "us", "ca"), Some(1));
        assert_eq!(zone_for(slices(), "US", "HI"), Some(2));
        assert_eq!(zone_for(slices(), "DE", ""), Some(0));
        assert_eq!(zone_for(zones[1..].iter().map(Vec::as_slice), "DE", ""), None);
    }

    #[test]
    fn areas_parse_and_reject() {
        assert_eq!(Area::parse("us-ca"), Some(Area::Region("US".into(), "CA".into())));
        assert_eq!(Area::parse(" de "), Some(Area::Country("DE".into())));
        assert_eq!(Area::parse("*"), Some(Area::Everywhere));
        for bad in ["", "USA", "U1", "US-", "US-TOOLONG", "1"] {
            assert_eq!(Area::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn weight_bands_price_by_the_first_band_that_fits_and_refuse_heavier() {
        let rate = Rate::Weight(vec![(1_000, 500), (5_000, 900)]);
        assert_eq!(rate.price(parcel(0, 0)), Some(500));
        assert_eq!(rate.price(parcel(0, 1_000)), Some(500));
        assert_eq!(rate.price(parcel(0, 1_001)), Some(900));
        assert_eq!(rate.price(parcel(0, 5_001)), None);
    }

    #[test]
    fn each_parcel_is_priced_on_its_own() {
        let method = Method {
            code: "standard".into(),
            name: "Standard".into(),
            rate: Rate::FreeOver {
                threshold: 5_000,
                amount: 599,
            },
            min_days: 2,
            max_days: 5,
        };
        let q = method.quote(&[parcel(6_000, 0), parcel(1_000, 0)]).unwrap();
        assert_eq!(q.per_parcel, vec![0, 599]);
        assert_eq!(q.amount, 599);
    }

    #[test]
    fn bad_methods_name_each_field() {
        let mut errors = FieldErrors::default();
        let raw: Vec<MethodInput> = serde_json::from_value(serde_json::json!([
            {"code": "Std!", "name": "", "rate": {"type": "flat", "amount": -1}, "min_days": 3, "max_days": 1},
            {"code": "x", "name": "X", "rate": {"type": "weight", "bands": [{"up_to_grams": 5, "amount": 1}, {"up_to_grams": 5, "amount": 2}]}}
        ]))
        .unwrap();
        methods(&raw, &mut errors);
        let fields: Vec<String> = errors.into_vec().into_iter().map(|e| e.field).collect();
        for f in [
            "methods[0].code",
            "methods[0].name",
            "methods[0].max_days",
            "methods[0].rate.amount",
            "methods[1].rate.bands",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
        }
    }

    proptest! {
        #[test]
        fn a_quote_is_the_sum_of_its_parcels(
            goods in proptest::collection::vec((0i64..100_000, 0u64..20_000), 1..6),
            threshold in 0i64..50_000,
            amount in 0i64..2_000,
        ) {
            let parcels: Vec<Parcel> = goods.iter().map(|(g, w)| parcel(*g, *w)).collect();
            let method = Method {
                code: "m".into(), name: "M".into(),
                rate: Rate::FreeOver { threshold, amount }, min_days: 0, max_days: 0,
            };
            let q = method.quote(&parcels).unwrap();
            prop_assert_eq!(q.amount, q.per_parcel.iter().sum::<i64>());
            prop_assert!(q.per_parcel.iter().all(|p| *p == 0 || *p == amount));
        }
    }
}
