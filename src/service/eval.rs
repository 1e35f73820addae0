//! Search relevance evaluation on graded judgments (NDCG@10, judged@10, zero-result rate),
//! for clean queries and deterministic one-typo variants.

use std::collections::HashMap;
use std::path::Path;

use super::search::{external_ids, plain_request, Search};
use super::ServiceError;

/// Judgments: query id → (query text, product external id → grade 0–3).
pub struct Judgments {
    /// Queries in evaluation order.
    pub queries: Vec<(String, String)>,
    /// Grades per query id.
    pub grades: HashMap<String, HashMap<String, u8>>,
}

impl Judgments {
    /// Loads `queries.tsv`, `judgments.tsv` and `dev_queries.txt` from a Chorus data folder.
    pub fn load(dir: &Path) -> anyhow::Result<Judgments> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(name).display()))
        };
        let texts: HashMap<String, String> = read("queries.tsv")?
            .lines()
            .filter_map(|l| {
                let mut cols = l.split('\t');
                Some((cols.next()?.to_owned(), cols.next()?.to_owned()))
            })
            .filter(|(id, _)| id.chars().all(|c| c.is_ascii_digit()))
            .collect();
        let mut grades: HashMap<String, HashMap<String, u8>> = HashMap::new();
        for line in read("judgments.tsv")?.lines() {
            let cols: Vec<&str> = line.split('\t').collect();
            if let [q, product, grade] = cols[..] {
                if let Ok(g) = grade.trim().parse::<u8>() {
                    grades.entry(q.to_owned()).or_default().insert(product.to_owned(), g);
                }
            }
        }
        let queries = read("dev_queries.txt")?
            .split_whitespace()
            .filter_map(|id| texts.get(id).map(|t| (id.to_owned(), t.clone())))
            .collect();
        Ok(Judgments { queries, grades })
    }
}

/// NDCG@k with gain 2^grade − 1 and a log2 discount; the ideal ranking comes from the query's
/// own judgments; unjudged results count 0. `None` when the query has no grade above 0.
pub fn ndcg_at(k: usize, results: &[String], grades: &HashMap<String, u8>) -> Option<f64> {
    let gain = |g: u8| (2f64.powi(g as i32)) - 1.0;
    let discount = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let dcg: f64 = results
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, id)| gain(*grades.get(id).unwrap_or(&0)) * discount(i))
        .sum();
    let mut ideal: Vec<u8> = grades.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| gain(*g) * discount(i))
        .sum();
    (idcg > 0.0).then(|| dcg / idcg)
}

/// Makes a deterministic one-typo variant: swaps two adjacent letters in the middle of the
/// longest word (words shorter than 4 letters are left alone).
pub fn one_typo(query: &str) -> String {
    let words: Vec<&str> = query.split_whitespace().collect();
    let Some((longest, _)) = words
        .iter()
        .enumerate()
        .max_by_key(|(i, w)| (w.chars().count(), usize::MAX - i))
    else {
        return query.to_owned();
    };
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut chars: Vec<char> = w.chars().collect();
            if i == longest && chars.len() >= 4 {
                let at = chars.len() / 2 - 1;
                chars.swap(at, at + 1);
            }
            chars.into_iter().collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Evaluation summary.
#[derive(Debug, Clone, Default)]
pub struct EvalReport {
    /// Mean NDCG@10 over queries with a relevant judgment.
    pub ndcg10: f64,
    /// Share of top-10 results that were judged.
    pub judged_at_10: f64,
    /// Mean NDCG@10 of the condensed ranking (Sakai): the top 100 with unjudged results
    /// removed. A diagnostic for incomplete judgments, not the target metric: the gap to
    /// `ndcg10` is what unjudged results in the top 10 cost.
    pub condensed_ndcg10: f64,
    /// Share of queries with no result.
    pub zero_result_rate: f64,
    /// Queries scored.
    pub scored: usize,
}

/// Runs every query (through `transform`) and scores it.
pub fn evaluate(
    search: &Search,
    judgments: &Judgments,
    transform: impl Fn(&str) -> String,
) -> Result<EvalReport, ServiceError> {
    let (mut ndcg_sum, mut scored, mut judged, mut shown, mut zero) = (0.0, 0usize, 0usize, 0usize, 0usize);
    let mut condensed_sum = 0.0;
    for (id, text) in &judgments.queries {
        let query = transform(text);
        let results = search
            .index()
            .search(&plain_request(search, &query, 10))
            .map_err(|e| ServiceError::internal_from("search index", e))?;
        let ids = external_ids(search, &results.hits)?;
        if ids.is_empty() {
            zero += 1;
            tracing::debug!(query = %query, "no results");
        }
        let empty = HashMap::new();
        let grades = judgments.grades.get(id).unwrap_or(&empty);
        judged += ids.iter().filter(|p| grades.contains_key(*p)).count();
        shown += ids.len();
        if let Some(n) = ndcg_at(10, &ids, grades) {
            ndcg_sum += n;
            scored += 1;
            tracing::debug!(query = %query, ndcg = n, top = ?ids, "evaluated");
            let deep = search
                .index()
                .search(&plain_request(search, &query, 100))
                .map_err(|e| ServiceError::internal_from("search index", e))?;
            let mut judged_only = external_ids(search, &deep.hits)?;
            judged_only.retain(|p| grades.contains_key(p));
            condensed_sum += ndcg_at(10, &judged_only, grades).unwrap_or(0.0);
        }
    }
    Ok(EvalReport {
        ndcg10: if scored > 0 { ndcg_sum / scored as f64 } else { 0.0 },
        judged_at_10: if shown > 0 { judged as f64 / shown as f64 } else { 0.0 },
        condensed_ndcg10: if scored > 0 { condensed_sum / scored as f64 } else { 0.0 },
        zero_result_rate: zero as f64 / judgments.queries.len().max(1) as f64,
        scored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perfect_ranking_scores_one_and_unjudged_results_score_zero() {
        let grades: HashMap<String, u8> = [("a".into(), 3), ("b".into(), 1), ("c".into(), 0)].into();
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!((ndcg_at(10, &ids(&["a", "b"]), &grades).unwrap() - 1.0).abs() < 1e-9);
        let swapped = ndcg_at(10, &ids(&["b", "a"]), &grades).unwrap();
        assert!(swapped < 1.0 && swapped > 0.5, "{swapped}");
        assert_eq!(ndcg_at(10, &ids(&["x", "y"]), &grades), Some(0.0));
        let irrelevant: HashMap<String, u8> = [("c".into(), 0)].into();
        assert_eq!(
            ndcg_at(10, &ids(&["c"]), &irrelevant),
            None,
            "queries without relevant products are skipped"
        );
    }

    #[test]
    fn typo_variants_are_deterministic() {
        assert_eq!(one_typo("bluetooth speaker"), "bluteooth speaker");
        assert_eq!(one_typo("ps4"), "ps4");
        assert_eq!(one_typo("usb hub"), "usb hub");
        assert_eq!(one_typo("laptop"), one_typo("laptop"));
    }
}
