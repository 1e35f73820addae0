//! A query word's score when matching is relaxed to any word: a fixed tier for matching at
//! all, plus the word's own score. Two `Should` clauses (a constant-score copy of the word's
//! query and the query itself) gave the same sum but evaluated the word's union over every
//! text field twice, and at 1M products that union is most of a broad search.

use std::fmt;

use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, TantivyError, Term, COLLECT_BLOCK_BUFFER_LEN};

/// Matches what `query` matches, scoring `tier` plus `query`'s score.
pub struct TierQuery {
    query: Box<dyn Query>,
    tier: Score,
}

impl TierQuery {
    /// `query`, its scores raised by `tier`.
    pub fn new(query: Box<dyn Query>, tier: Score) -> TierQuery {
        TierQuery { query, tier }
    }
}

impl Clone for TierQuery {
    fn clone(&self) -> Self {
        TierQuery {
            query: self.query.box_clone(),
            tier: self.tier,
        }
    }
}

impl fmt::Debug for TierQuery {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Tier(tier={}, query={:?})", self.tier, self.query)
    }
}

impl Query for TierQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let weight = self.query.weight(scoring)?;
        Ok(if scoring.is_scoring_enabled() {
            Box::new(TierWeight {
                weight,
                tier: self.tier,
            })
        } else {
            weight
        })
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.query.query_terms(visitor);
    }
}

struct TierWeight {
    weight: Box<dyn Weight>,
    tier: Score,
}

impl Weight for TierWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(TierScorer {
            scorer: self.weight.scorer(reader, boost)?,
            tier: boost * self.tier,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(TantivyError::InvalidArgument(format!("document #{doc} does not match")));
        }
        let mut explanation = Explanation::new("Tier", scorer.score());
        explanation.add_detail(Explanation::new("tier", self.tier));
        explanation.add_detail(self.weight.explain(reader, doc)?);
        Ok(explanation)
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        self.weight.count(reader)
    }
}

struct TierScorer {
    scorer: Box<dyn Scorer>,
    tier: Score,
}

impl DocSet for TierScorer {
    fn advance(&mut self) -> DocId {
        self.scorer.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.scorer.seek(target)
    }

    fn fill_buffer(&mut self, buffer: &mut [DocId; COLLECT_BLOCK_BUFFER_LEN]) -> usize {
        self.scorer.fill_buffer(buffer)
    }

    fn doc(&self) -> DocId {
        self.scorer.doc()
    }

    fn size_hint(&self) -> u32 {
        self.scorer.size_hint()
    }
}

impl Scorer for TierScorer {
    fn score(&mut self) -> Score {
        self.tier + self.scorer.score()
    }
}

#[cfg(test)]
mod tests {
    use tantivy::collector::TopDocs;
    use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, TermQuery};
    use tantivy::schema::{IndexRecordOption, Schema, TEXT};
    use tantivy::{doc, Index, IndexWriter};

    use super::*;

    #[test]
    fn scores_are_the_tier_plus_the_query_score_as_two_clauses_gave() {
        let mut builder = Schema::builder();
        let title = builder.add_text_field("title", TEXT);
        let index = Index::create_in_ram(builder.build());
        let mut writer: IndexWriter = index.writer(15_000_000).unwrap();
        for text in ["black cable", "black black mouse", "white cable", "black"] {
            writer.add_document(doc!(title => text)).unwrap();
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let word = || -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(title, "black"),
                IndexRecordOption::WithFreqs,
            ))
        };
        let two_clauses = BooleanQuery::new(vec![
            (
                Occur::Should,
                Box::new(ConstScoreQuery::new(word(), 10_000.0)) as Box<dyn Query>,
            ),
            (Occur::Should, word()),
        ]);
        let top = TopDocs::with_limit(10);
        let expected = searcher.search(&two_clauses, &top).unwrap();
        let found = searcher.search(&TierQuery::new(word(), 10_000.0), &top).unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!(found, expected);
        assert!(found.iter().all(|(score, _)| *score > 10_000.0));
    }
}
