//! Sortable entity ids (UUIDv7).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The counters of the milliseconds ids were made at lately. More than one because a
/// process may mint ids on more than one clock (the system's, a test's, an import's past).
struct Monotonic(std::sync::Mutex<[(u64, u16); SLOTS]>);

const SLOTS: usize = 16;

static MONOTONIC: Monotonic = Monotonic(std::sync::Mutex::new([(u64::MAX, 0); SLOTS]));

impl Monotonic {
    /// The millisecond and counter of the next id at `ms`: counting up within a millisecond
    /// and spilling into the next after 4,096. The least recent millisecond makes way for a
    /// new one.
    fn next(&self, mut ms: u64) -> (u64, u16) {
        let mut slots = self.0.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(i) = slots.iter().position(|(at, _)| *at == ms) {
                let (_, counter) = slots[i];
                if counter == 0x0fff {
                    ms += 1;
                    continue;
                }
                // Most recent first.
                slots[..=i].rotate_right(1);
                slots[0] = (ms, counter + 1);
                return (ms, counter + 1);
            }
            slots.rotate_right(1);
            slots[0] = (ms, 0);
            return (ms, 0);
        }
    }
}

/// A UUIDv7 entity id: opaque to clients, time-ordered in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(Uuid);

impl Id {
    /// Generates a fresh, time-ordered id.
    pub fn new() -> Id {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Id::from_time_ms(now)
    }

    /// A fresh id that sorts at `ms` (Unix milliseconds), after every id this process made
    /// before at the same `ms` (for records of the past, such as imported orders, they sort
    /// where they happened).
    pub fn from_time_ms(ms: i64) -> Id {
        let ms = u64::try_from(ms).unwrap_or(0);
        let (ms, counter) = MONOTONIC.next(ms);
        let mut random: [u8; 10] = rand::random();
        // RFC 9562 method 1: the 12 bits of `rand_a` are a counter within the millisecond.
        random[0] = (counter >> 8) as u8 & 0x0f;
        random[1] = counter as u8;
        Id(uuid::Builder::from_unix_timestamp_millis(ms, &random).into_uuid())
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
    fn ids_of_one_millisecond_sort_in_creation_order() {
        let ms = 1_900_000_000_000;
        let ids: Vec<Id> = (0..5_000).map(|_| Id::from_time_ms(ms)).collect();
        assert!(ids.windows(2).all(|w| w[0].to_bytes() < w[1].to_bytes()));
        assert_eq!(ids[0].created_at_ms(), ms);
        // Past the counter, ids move into the next millisecond rather than lose their order.
        assert!(ids[4_999].created_at_ms() <= ms + 1);
        // The past keeps its own time.
        assert_eq!(Id::from_time_ms(1_000).created_at_ms(), 1_000);
    }

    #[test]
    fn slugs_are_not_mistaken_for_ids() {
        assert_eq!(Id::parse("blue-widget"), None);
        let id = Id::new();
        assert_eq!(Id::parse(&id.to_string()), Some(id));
    }
}
