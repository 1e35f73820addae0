//! Autocomplete: a dictionary of product titles, brands and categories built by a full scan,
//! answering prefix lookups.

use std::collections::HashMap;

use storefront_storage::listing::normalize_brand;
use storefront_storage::records::ArchivedProductRecord;

use super::normalize_query;
use crate::domain::Id;
use crate::service::catalog::CategoryTree;
use crate::service::view::search::SuggestionView;

struct Entry {
    key: String,
    target: u32,
}

struct Target {
    text: String,
    kind: &'static str,
    slug: Option<String>,
    score: f32,
}

/// Prefix lookup over product titles (at every word), brands and categories, ranked by a
/// popularity/quality score rather than alphabetically.
#[derive(Default)]
pub struct Suggester {
    entries: Vec<Entry>,
    targets: Vec<Target>,
}

impl Suggester {
    /// Returns up to `limit` suggestions for `prefix`, best first.
    pub fn lookup(&self, prefix: &str, limit: usize) -> Vec<SuggestionView<'_>> {
        let prefix = normalize_query(prefix);
        if prefix.is_empty() {
            return Vec::new();
        }
        let start = self.entries.partition_point(|e| e.key.as_str() < prefix.as_str());
        // PERF: bounded scan; for one-letter prefixes the first 4096 keys are ranked.
        let mut best: Vec<u32> = self.entries[start..]
            .iter()
            .take_while(|e| e.key.starts_with(&prefix))
            .take(4096)
            .map(|e| e.target)
            .collect();
        best.sort_unstable();
        best.dedup();
        best.sort_by(|a, b| {
            self.targets[*b as usize]
                .score
                .total_cmp(&self.targets[*a as usize].score)
        });
        best.into_iter()
            .take(limit)
            .map(|t| {
                let t = &self.targets[t as usize];
                SuggestionView {
                    text: &t.text,
                    kind: t.kind,
                    slug: t.slug.as_deref(),
                }
            })
            .collect()
    }
}

#[derive(Default)]
pub(super) struct SuggesterBuilder {
    titles: Vec<(String, String, f32)>,
    /// Per brand key, how often each spelling occurs.
    brands: HashMap<String, HashMap<String, u32>>,
    categories: HashMap<Id, u32>,
}

impl SuggesterBuilder {
    pub(super) fn add_product(&mut self, p: &ArchivedProductRecord, tree: &CategoryTree) {
        // Quality: rated and shorter (more canonical) titles first; in-stock is not known here.
        let count = p.rating_count.to_native() as f32;
        let rating = if count > 0.0 {
            p.rating_sum.to_native() as f32 / count
        } else {
            0.0
        };
        let score = rating + (count + 1.0).ln() + 1.0 / (1.0 + p.title.len() as f32 / 40.0);
        self.titles.push((p.title.to_string(), p.slug.to_string(), score));
        if let Some(b) = p.brand.as_ref() {
            let spellings = self.brands.entry(normalize_brand(b)).or_default();
            *spellings.entry(b.trim().to_owned()).or_default() += 1;
        }
        if let Some(c) = p.category_id.as_ref() {
            for id in tree.path_up(Id::from_bytes(*c)) {
                *self.categories.entry(id).or_default() += 1;
            }
        }
    }

    /// Builds the suggester, and the spelling shown for each brand key (its most common one).
    pub(super) fn build(self, tree: &CategoryTree) -> (Suggester, HashMap<String, String>) {
        let mut s = Suggester::default();
        let push = |s: &mut Suggester,
                    text: String,
                    kind: &'static str,
                    slug: Option<String>,
                    score: f32,
                    every_word: bool| {
            let target = s.targets.len() as u32;
            let normalized = normalize_query(&text);
            let words: Vec<usize> = std::iter::once(0)
                .chain(normalized.match_indices(' ').map(|(i, _)| i + 1))
                .take(if every_word { 12 } else { 3 })
                .collect();
            for start in words {
                let key: String = normalized[start..].chars().take(48).collect();
                s.entries.push(Entry { key, target });
            }
            s.targets.push(Target {
                text,
                kind,
                slug,
                score,
            });
        };
        // Brands and categories outrank titles: they narrow the search the shopper is typing.
        let mut brand_names = HashMap::with_capacity(self.brands.len());
        for (key, spellings) in self.brands {
            let count: u32 = spellings.values().sum();
            let Some((name, _)) = spellings
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            else {
                continue;
            };
            push(&mut s, name.clone(), "brand", None, 100.0 + (count as f32).ln(), false);
            brand_names.insert(key, name);
        }
        for (id, count) in self.categories {
            if let Some(node) = tree.get(id) {
                push(
                    &mut s,
                    node.name.clone(),
                    "category",
                    Some(node.slug.clone()),
                    50.0 + (count as f32).ln(),
                    false,
                );
            }
        }
        for (title, slug, score) in self.titles {
            push(&mut s, title, "product", Some(slug), score, true);
        }
        s.entries.sort_by(|a, b| a.key.cmp(&b.key));
        (s, brand_names)
    }
}
