//! Sortable entity ids (UUIDv7).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A UUIDv7 entity id: opaque to clients, time-ordered in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(Uuid);

impl Id {
    /// Generates a fresh, time-ordered id.
    pub fn new() -> Id {
        Id(Uuid::now_v7())
    }

    /// A fresh id that sorts at `ms` (Unix milliseconds): for records of the past, such as
    /// imported orders, so they sort where they happened.
    pub fn from_time_ms(ms: i64) -> Id {
        let ms = u64::try_from(ms).unwrap_or(0);
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, ((ms % 1000) * 1_000_000) as u32);
        // The rest of the id is random, so ids of one millisecond differ.
        Id(Uuid::new_v7(ts))
    }

    /// When the id was made, Unix milliseconds (0 for an id that is not a UUIDv7).
    pub fn created_at_ms(self) -> i64 {
        self.0
            .get_timestamp()
            .map(|t| {
                let (secs, nanos) = t.to_unix();
                secs as i64 * 1000 + i64::from(nanos / 1_000_000)
            })
            .unwrap_or(0)
    }

    /// Returns the 16 big-endian bytes used as storage keys.
    pub fn to_bytes(self) -> [u8; 16] {
        *self.0.as_bytes()
    }

    /// Rebuilds an id from storage bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Id {
        Id(Uuid::from_bytes(bytes))
    }

    /// Parses a path segment: `Some` when it is a UUID, `None` when it must be a slug.
    pub fn parse(s: &str) -> Option<Id> {
        // Slugs can't be 32+ chars of hex with dashes in UUID positions *and* parse as a UUID
        // unless they are one, so trying the UUID form first is unambiguous.
        if s.len() < 32 {
            return None;
        }
        Uuid::try_parse(s).ok().map(Id)
    }
}

impl utoipa::PartialSchema for Id {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .description(Some("A UUIDv7: opaque, and sorts by creation time"))
            .into()
    }
}

impl utoipa::ToSchema for Id {}

impl Default for Id {
    fn default() -> Self {
        Id::new()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for Id {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s).map(Id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_ids_sort_after_earlier_ones_as_bytes() {
        let a = Id::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = Id::new();
        assert!(a.to_bytes() < b.to_bytes());
    }

    #[test]
    fn slugs_are_not_mistaken_for_ids() {
        assert_eq!(Id::parse("blue-widget"), None);
        let id = Id::new();
        assert_eq!(Id::parse(&id.to_string()), Some(id));
    }
}
