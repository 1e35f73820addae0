//! Query-side relevance helpers: spelling correction against the index vocabulary, synonyms,
//! compound words, and the accessory vocabulary used to demote accessories.
//!
//! Corrections are real index terms, so corrected words are scored with BM25 like any other
//! (tantivy's fuzzy queries give every match the same score, which loses the ranking).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;

use foldhash::fast::RandomState;
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
    "support",
    "rest",
    "pillow",
    "convert",
    "antenna",
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

/// Words that also match a broader word, one way only (stemmed forms): a shopper asking for a
/// PS4 game is served by a "PlayStation 4" title, but one asking for PlayStation is not served
/// only by PS4 titles.
pub const BROADER: &[(&str, &str)] = &[("ps4", "playstat")];

/// Returns the words a stemmed word also matches: its synonyms and broader words.
pub fn synonyms(word: &str) -> impl Iterator<Item = &'static str> + '_ {
    let both_ways = SYNONYMS.iter().filter_map(move |(a, b)| {
        if *a == word {
            Some(*b)
        } else if *b == word {
            Some(*a)
        } else {
            None
        }
    });
    let broader = BROADER
        .iter()
        .filter(move |(narrow, _)| *narrow == word)
        .map(|(_, broad)| *broad);
    both_ways.chain(broader)
}

/// The words of a short name ("Cell Phone Cases") as search compares them: lower-cased, split
/// on anything but letters and digits, stemmed ("cell phone case"). Names that differ only in
/// case, punctuation or number compare equal.
pub fn name_key(text: &str) -> String {
    let stemmer = Stemmer::create(Algorithm::English);
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| stemmer.stem(w).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
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

/// The terms of one index segment, term → document frequency: the main fields (title, brand,
/// category), and secondary text (attributes: "Netflix" in a list of preinstalled apps) that
/// corrections fall back to.
#[derive(Debug, Default)]
pub struct SegmentTerms {
    main: TermCounts,
    fallback: TermCounts,
}

/// Term → document frequency. A correction probes these thousands of times, so they hash with
/// foldhash rather than SipHash.
type TermCounts = HashMap<String, u64, RandomState>;

impl SegmentTerms {
    /// Keeps the main terms and, of the secondary ones, only those a typo could be corrected
    /// to (letters only, 4 or more).
    pub fn new(
        main: impl IntoIterator<Item = (String, u64)>,
        secondary: impl IntoIterator<Item = (String, u64)>,
    ) -> SegmentTerms {
        let fallback = secondary
            .into_iter()
            .filter(|(t, _)| typo_distance(t) > 0 && t.bytes().all(|b| b.is_ascii_lowercase()))
            .collect();
        SegmentTerms {
            main: main.into_iter().collect(),
            fallback,
        }
    }
}

/// A known term a typed word may have meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// The index term (a stem) to search for.
    pub stem: String,
    /// The word as it would have been typed: "laptop" for "latpop" (whose stem is `laptop`),
    /// "gaming" for "gaimng" (`game`).
    pub spelled: String,
}

/// The correction vocabulary over every searched segment.
///
/// Index terms are stems, but typos happen in what the shopper typed: corrections edit the
/// typed word and stem each candidate ("gaimng" → "gaming" → `game`), so a typo in an inflected
/// word still finds its stem. Segments keep their own term maps so that a commit only reads
/// the terms of segments it has not seen.
pub struct Vocabulary {
    segments: Vec<Arc<SegmentTerms>>,
    stemmer: Stemmer,
    /// The corrections of recently typed unknown words. A long unknown word costs thousands of
    /// stemmed candidates (milliseconds), and the same typo comes back in many queries (and
    /// twice in one search: for the terms and for the respelled query). It lives and dies
    /// with this vocabulary, so it never outlives the terms it was computed from.
    memo: quick_cache::sync::Cache<String, Arc<[Correction]>>,
}

/// Unknown words whose corrections a vocabulary remembers.
const MEMO_WORDS: usize = 4096;
/// Corrections computed per word; callers take up to this many.
const MAX_CORRECTIONS: usize = 3;

impl Default for Vocabulary {
    fn default() -> Vocabulary {
        Vocabulary::from_segments(Vec::new())
    }
}

impl std::fmt::Debug for Vocabulary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocabulary")
            .field("segments", &self.segments.len())
            .finish()
    }
}

/// Which terms of a segment a lookup reads.
type Side = fn(&SegmentTerms) -> &TermCounts;

const MAIN: Side = |s| &s.main;
const FALLBACK: Side = |s| &s.fallback;

impl Vocabulary {
    /// Builds the vocabulary of the given segments.
    pub fn from_segments(segments: Vec<Arc<SegmentTerms>>) -> Vocabulary {
        Vocabulary {
            segments,
            stemmer: Stemmer::create(Algorithm::English),
            memo: quick_cache::sync::Cache::new(MEMO_WORDS),
        }
    }

    /// Stems a lower-cased word the way the index tokenizer does.
    pub fn stem<'a>(&self, word: &'a str) -> Cow<'a, str> {
        self.stemmer.stem(word)
    }

    /// Returns whether the (stemmed) term occurs in the main fields.
    pub fn contains(&self, term: &str) -> bool {
        self.has(MAIN, term)
    }

    fn has(&self, side: Side, term: &str) -> bool {
        self.segments.iter().any(|s| side(s).contains_key(term))
    }

    fn doc_freq(&self, side: Side, term: &str) -> u64 {
        self.segments.iter().filter_map(|s| side(s).get(term)).sum()
    }

    /// Adds the stem of `candidate` to `found` when `side` knows it, keeping per stem the
    /// spelling closest in length to the typed word: "cabel" reads as "cable", not as "cabl",
    /// though both stem to `cabl`.
    fn lookup(&self, side: Side, candidate: &[u8], typed_len: usize, found: &mut HashMap<String, String>) {
        let Ok(text) = std::str::from_utf8(candidate) else {
            return;
        };
        let stem = self.stem(text);
        let distance = |s: &str| s.len().abs_diff(typed_len);
        match found.get_mut(stem.as_ref()) {
            Some(spelled) if distance(text) < distance(spelled) => text.clone_into(spelled),
            Some(_) => {}
            None if self.has(side, &stem) => {
                found.insert(stem.into_owned(), text.to_owned());
            }
            None => {}
        }
    }

    /// Returns up to `limit` (at most 3) known terms (stems, with a spelling) within the allowed
    /// edit distance of a typed, lower-cased word that the index does not know, most frequent
    /// first. Known words (in the main or the secondary terms) and words that allow no typos
    /// get none.
    pub fn corrections(&self, word: &str, limit: usize) -> Vec<Correction> {
        let distance = typo_distance(word);
        let stem = self.stem(word);
        if distance == 0 || !word.is_ascii() || self.contains(&stem) || self.has(FALLBACK, &stem) {
            // A word the index knows, even only from attribute text, is not a typo.
            return Vec::new();
        }
        let Ok(all) = self
            .memo
            .get_or_insert_with(word, || Ok::<_, Infallible>(self.compute_corrections(word, distance)));
        all[..limit.min(all.len())].to_vec()
    }

    fn compute_corrections(&self, word: &str, distance: u8) -> Arc<[Correction]> {
        let first = edits1(word);
        let mut found = HashMap::new();
        let mut side = MAIN;
        for candidate in &first {
            self.lookup(side, candidate.as_bytes(), word.len(), &mut found);
        }
        if found.is_empty() && distance >= 2 {
            // Second-level edits, limited to deletes and transposes. Many coincide (with each
            // other, with a first-level edit, with the word itself); each distinct one is
            // stemmed once, which is most of the cost.
            let mut seen: HashSet<Box<[u8]>, RandomState> = first.iter().map(|c| c.as_bytes().into()).collect();
            seen.insert(word.as_bytes().into());
            let mut edit = Vec::with_capacity(word.len() + 1);
            for candidate in &first {
                let b = candidate.as_bytes();
                for i in 0..b.len() {
                    for transpose in [false, true] {
                        edit.clear();
                        if transpose {
                            if i + 1 == b.len() {
                                continue;
                            }
                            edit.extend_from_slice(b);
                            edit.swap(i, i + 1);
                        } else {
                            edit.extend_from_slice(&b[..i]);
                            edit.extend_from_slice(&b[i + 1..]);
                        }
                        if seen.contains(edit.as_slice()) {
                            continue;
                        }
                        seen.insert(edit.as_slice().into());
                        self.lookup(side, &edit, word.len(), &mut found);
                    }
                }
            }
        }
        if found.is_empty() {
            side = FALLBACK;
            for candidate in &first {
                self.lookup(side, candidate.as_bytes(), word.len(), &mut found);
            }
        }
        let mut ranked: Vec<(u64, Correction)> = found
            .into_iter()
            .map(|(stem, spelled)| (self.doc_freq(side, &stem), Correction { stem, spelled }))
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.stem.cmp(&b.1.stem)));
        ranked.into_iter().take(MAX_CORRECTIONS).map(|(_, c)| c).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn main_terms() -> HashMap<String, u64> {
        [
            ("headphon".to_string(), 40),
            ("keyboard".to_string(), 30),
            ("mous".to_string(), 20),
            ("hous".to_string(), 2),
            ("game".to_string(), 10),
        ]
        .into()
    }

    fn stems(corrections: Vec<Correction>) -> Vec<String> {
        corrections.into_iter().map(|c| c.stem).collect()
    }

    fn vocab() -> Vocabulary {
        Vocabulary::from_segments(vec![Arc::new(SegmentTerms::new(main_terms(), HashMap::new()))])
    }

    #[test]
    fn one_and_two_edit_typos_are_corrected_to_frequent_terms() {
        let v = vocab();
        assert_eq!(stems(v.corrections("keyobard", 2)), vec!["keyboard"]);
        assert_eq!(
            stems(v.corrections("haedphones", 2)),
            vec!["headphon"],
            "candidates are stemmed"
        );
        assert_eq!(stems(v.corrections("muose", 2)), vec!["mous"]);
        assert!(v.corrections("keyboards", 2).is_empty(), "known words are left alone");
        assert!(v.corrections("tn2110", 2).is_empty(), "model codes need exact matches");
        assert!(v.corrections("mus", 2).is_empty(), "short words allow no typos");
    }

    #[test]
    fn a_long_word_with_two_typos_is_corrected_and_remembered_per_limit() {
        let v = vocab();
        // Two transposes: no one-edit variant is a term, so the second level finds it.
        assert_eq!(stems(v.corrections("kyebaord", 3)), vec!["keyboard"]);
        assert_eq!(
            stems(v.corrections("kyebaord", 1)),
            vec!["keyboard"],
            "memoized, same answer"
        );
        assert!(
            v.corrections("kyebaord", 0).is_empty(),
            "the limit applies to remembered words"
        );
        assert!(v.corrections("qqqqqqqq", 3).is_empty());
    }

    #[test]
    fn secondary_terms_correct_only_what_the_main_terms_cannot() {
        let secondary = [
            ("netflix".to_string(), 3),
            ("mouse".to_string(), 50),
            ("4k".to_string(), 9),
        ];
        let v = Vocabulary::from_segments(vec![Arc::new(SegmentTerms::new(main_terms(), secondary))]);
        assert_eq!(stems(v.corrections("neftlix", 2)), vec!["netflix"]);
        assert_eq!(stems(v.corrections("muose", 2)), vec!["mous"], "main terms win");
        assert!(
            v.corrections("netflix", 2).is_empty(),
            "a known secondary word is left alone"
        );
    }

    #[test]
    fn segments_add_up_and_each_term_counts_once() {
        // "keyboard" is rarer than "keyword" in each segment but more frequent over both.
        let segment = |pairs: &[(&str, u64)]| {
            let main: Vec<_> = pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect();
            Arc::new(SegmentTerms::new(main, HashMap::new()))
        };
        let v = Vocabulary::from_segments(vec![
            segment(&[("keyboard", 5), ("keyword", 6)]),
            segment(&[("keyboard", 5), ("keyword", 1)]),
        ]);
        assert_eq!(stems(v.corrections("keybord", 2)), vec!["keyboard", "keyword"]);
        assert!(v.contains("keyword") && !v.contains("keys"));
    }

    #[test]
    fn a_typo_in_an_inflected_word_finds_the_stem() {
        // "gaming" is indexed as `game`; no one-edit variant of "gaimng" is itself a term.
        assert_eq!(
            vocab().corrections("gaimng", 2),
            vec![Correction {
                stem: "game".into(),
                spelled: "gaming".into()
            }]
        );
    }

    #[test]
    fn names_compare_by_stemmed_words() {
        assert_eq!(name_key("Cell Phone Cases"), name_key("cell-phone case"));
        assert_eq!(name_key("Batteries"), name_key("battery"));
        assert_ne!(name_key("Cases"), name_key("Cables"));
        assert_eq!(name_key("  "), "");
    }

    #[test]
    fn synonyms_work_both_ways() {
        assert_eq!(synonyms("laptop").collect::<Vec<_>>(), vec!["notebook"]);
        assert_eq!(synonyms("notebook").collect::<Vec<_>>(), vec!["laptop"]);
    }

    #[test]
    fn a_narrow_word_matches_its_broader_word_but_not_back() {
        assert!(synonyms("ps4").any(|s| s == "playstat"));
        assert!(synonyms("playstat").all(|s| s != "ps4"));
    }
}
