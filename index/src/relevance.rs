//! Query-side relevance helpers: spelling correction against the index vocabulary, synonyms,
//! compound words, and the accessory vocabulary used to demote accessories.
//!
//! Corrections are real index terms, so corrected words are scored with BM25 like any other
//! (tantivy's fuzzy queries give every match the same score, which loses the ranking).

use std::borrow::Cow;
use std::collections::HashMap;

use rust_stemmers::{Algorithm, Stemmer};

/// Title words that mark an accessory *for* something (a mouse pad, a laptop sleeve). When the
/// query names none of them, such products are demoted below the thing itself.
pub const ACCESSORY_WORDS: &[&str] = &[
    "pad",
    "cover",
    "case",
    "bag",
    "sleeve",
    "cabl",
    "cable",
    "adapt",
    "adapter",
    "lock",
    "filter",
    "stand",
    "mount",
    "kit",
    "holder",
    "charger",
    "drum",
    "toner",
    "cartridg",
    "cartridge",
    "protector",
    "skin",
    "strap",
    "replac",
    "spare",
    "ink",
    "dock",
    "cradl",
    "extens",
    "extension",
    "bracket",
    "screen",
];

/// Small built-in synonym table (stemmed forms), both directions.
pub const SYNONYMS: &[(&str, &str)] = &[
    ("laptop", "notebook"),
    ("headset", "headphon"),
    ("earphon", "headphon"),
    ("tv", "televis"),
    ("pc", "desktop"),
    ("cellphon", "smartphon"),
    ("mobil", "smartphon"),
    ("hdd", "hard"),
    ("ssd", "solid"),
    ("stick", "flash"),
    ("pendriv", "flash"),
];

/// Returns synonyms of a stemmed word.
pub fn synonyms(word: &str) -> impl Iterator<Item = &'static str> + '_ {
    SYNONYMS.iter().filter_map(move |(a, b)| {
        if *a == word {
            Some(*b)
        } else if *b == word {
            Some(*a)
        } else {
            None
        }
    })
}

/// Edit distance allowed for a query word: none for short words and anything with digits
/// (model codes, sizes), 1 for mid-length words, 2 for long ones.
pub fn typo_distance(word: &str) -> u8 {
    if word.chars().any(|c| c.is_ascii_digit()) {
        return 0;
    }
    match word.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

/// All ASCII strings one edit (delete, transpose, replace, insert) away from `word`.
fn edits1(word: &str) -> Vec<String> {
    let b = word.as_bytes();
    let mut out = Vec::with_capacity(b.len() * 56 + 26);
    for i in 0..b.len() {
        out.push([&b[..i], &b[i + 1..]].concat());
        if i + 1 < b.len() {
            let mut t = b.to_vec();
            t.swap(i, i + 1);
            out.push(t);
        }
        for &c in ALPHABET {
            if c != b[i] {
                let mut t = b.to_vec();
                t[i] = c;
                out.push(t);
            }
        }
    }
    for i in 0..=b.len() {
        for &c in ALPHABET {
            out.push([&b[..i], &[c], &b[i..]].concat());
        }
    }
    out.into_iter().filter_map(|v| String::from_utf8(v).ok()).collect()
}

/// Term → document frequency over the fields typos are corrected against.
///
/// Index terms are stems, but typos happen in what the shopper typed: corrections edit the
/// typed word and stem each candidate ("gaimng" → "gaming" → `game`), so a typo in an inflected
/// word still finds its stem.
pub struct Vocabulary {
    terms: HashMap<String, u64>,
    /// Terms found only in secondary text (attributes: "Netflix" in a list of preinstalled
    /// apps), tried when the main fields offer no correction.
    fallback: HashMap<String, u64>,
    stemmer: Stemmer,
}

impl Default for Vocabulary {
    fn default() -> Vocabulary {
        Vocabulary::new(HashMap::new())
    }
}

impl std::fmt::Debug for Vocabulary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocabulary").field("terms", &self.terms.len()).finish()
    }
}

impl Vocabulary {
    /// Builds a vocabulary from `(stemmed term, doc_freq)` pairs.
    pub fn new(terms: HashMap<String, u64>) -> Vocabulary {
        Vocabulary {
            terms,
            fallback: HashMap::new(),
            stemmer: Stemmer::create(Algorithm::English),
        }
    }

    /// Adds secondary terms, used for corrections (one edit only) when the main terms have
    /// none. Only terms a typo could be corrected to are kept (letters only, 4 or more).
    pub fn with_fallback(mut self, terms: HashMap<String, u64>) -> Vocabulary {
        self.fallback = terms
            .into_iter()
            .filter(|(t, _)| typo_distance(t) > 0 && t.bytes().all(|b| b.is_ascii_lowercase()))
            .filter(|(t, _)| !self.terms.contains_key(t))
            .collect();
        self
    }

    /// Stems a lower-cased word the way the index tokenizer does.
    pub fn stem<'a>(&self, word: &'a str) -> Cow<'a, str> {
        self.stemmer.stem(word)
    }

    /// Returns whether the (stemmed) term occurs in the index.
    pub fn contains(&self, term: &str) -> bool {
        self.terms.contains_key(term)
    }

    fn lookup<'a>(&self, terms: &'a HashMap<String, u64>, candidate: &[u8], found: &mut HashMap<&'a str, u64>) {
        if let Ok(text) = std::str::from_utf8(candidate) {
            if let Some((k, df)) = terms.get_key_value(self.stem(text).as_ref()) {
                found.insert(k.as_str(), *df);
            }
        }
    }

    /// Returns up to `limit` known terms (stems) within the allowed edit distance of a typed,
    /// lower-cased word that the index does not know, most frequent first. Known words (in the
    /// main or the secondary terms) and words that allow no typos get none.
    pub fn corrections(&self, word: &str, limit: usize) -> Vec<String> {
        let distance = typo_distance(word);
        let stem = self.stem(word);
        if distance == 0 || !word.is_ascii() || self.contains(&stem) || self.fallback.contains_key(stem.as_ref()) {
            // A word the index knows, even only from attribute text, is not a typo.
            return Vec::new();
        }
        let first = edits1(word);
        let mut found: HashMap<&str, u64> = HashMap::new();
        for candidate in &first {
            self.lookup(&self.terms, candidate.as_bytes(), &mut found);
        }
        if found.is_empty() && distance >= 2 {
            // PERF: second-level edits limited to deletes and transposes keep this ~1 ms.
            for candidate in &first {
                let b = candidate.as_bytes();
                for i in 0..b.len() {
                    self.lookup(&self.terms, &[&b[..i], &b[i + 1..]].concat(), &mut found);
                    if i + 1 < b.len() {
                        let mut t = b.to_vec();
                        t.swap(i, i + 1);
                        self.lookup(&self.terms, &t, &mut found);
                    }
                }
            }
        }
        if found.is_empty() {
            for candidate in &first {
                self.lookup(&self.fallback, candidate.as_bytes(), &mut found);
            }
        }
        let mut ranked: Vec<(&str, u64)> = found.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        ranked.into_iter().take(limit).map(|(t, _)| t.to_owned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocabulary {
        Vocabulary::new(
            [
                ("headphon".to_string(), 40),
                ("keyboard".to_string(), 30),
                ("mous".to_string(), 20),
                ("hous".to_string(), 2),
                ("game".to_string(), 10),
            ]
            .into(),
        )
    }

    #[test]
    fn one_and_two_edit_typos_are_corrected_to_frequent_terms() {
        let v = vocab();
        assert_eq!(v.corrections("keyobard", 2), vec!["keyboard"]);
        assert_eq!(
            v.corrections("haedphones", 2),
            vec!["headphon"],
            "candidates are stemmed"
        );
        assert_eq!(v.corrections("muose", 2), vec!["mous"]);
        assert!(v.corrections("keyboards", 2).is_empty(), "known words are left alone");
        assert!(v.corrections("tn2110", 2).is_empty(), "model codes need exact matches");
        assert!(v.corrections("mus", 2).is_empty(), "short words allow no typos");
    }

    #[test]
    fn secondary_terms_correct_only_what_the_main_terms_cannot() {
        let v = vocab().with_fallback(
            [
                ("netflix".to_string(), 3),
                ("mouse".to_string(), 50),
                ("4k".to_string(), 9),
            ]
            .into(),
        );
        assert_eq!(v.corrections("neftlix", 2), vec!["netflix"]);
        assert_eq!(v.corrections("muose", 2), vec!["mous"], "main terms win");
        assert!(
            v.corrections("netflix", 2).is_empty(),
            "a known secondary word is left alone"
        );
    }

    #[test]
    fn a_typo_in_an_inflected_word_finds_the_stem() {
        // "gaming" is indexed as `game`; no one-edit variant of "gaimng" is itself a term.
        assert_eq!(vocab().corrections("gaimng", 2), vec!["game"]);
    }

    #[test]
    fn synonyms_work_both_ways() {
        assert_eq!(synonyms("laptop").collect::<Vec<_>>(), vec!["notebook"]);
        assert_eq!(synonyms("notebook").collect::<Vec<_>>(), vec!["laptop"]);
    }
}
