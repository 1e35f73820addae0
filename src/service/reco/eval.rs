//! The offline measure of the recommendation models on a store's order history (what
//! `storefront eval-recs` prints): each listed customer's last order is held out, the models
//! learn from everything else, and their lists are scored against it, beside a
//! global-popularity and a plain co-occurrence (cosine) baseline computed here.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::models::{Item, Model, ModelSettings};
use super::PastOrder;
use crate::domain::Id;

/// List length scored.
pub const K: usize = 10;

/// Hit rate and recall of one list kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct Score {
    /// Lists scored.
    pub n: usize,
    /// Lists with at least one held-out product.
    pub hits: usize,
    /// Sum of per-list recall.
    pub recall_sum: f64,
}

impl Score {
    fn add(&mut self, list: &[Id], truth: &HashSet<Id>) {
        if truth.is_empty() {
            return;
        }
        let found = list.iter().take(K).filter(|p| truth.contains(p)).count();
        self.n += 1;
        self.hits += usize::from(found > 0);
        self.recall_sum += found as f64 / truth.len() as f64;
    }

    /// Hit rate @10.
    pub fn hit_rate(&self) -> f64 {
        self.hits as f64 / self.n.max(1) as f64
    }

    /// Recall @10.
    pub fn recall(&self) -> f64 {
        self.recall_sum / self.n.max(1) as f64
    }
}

/// The figures of one evaluation.
#[derive(Debug, Default, Clone, Copy)]
pub struct Report {
    /// Listed customers with a held-out order.
    pub customers: usize,
    /// Personalised lists for the held-out order.
    pub personalized: Score,
    /// Global popularity for the held-out order.
    pub popularity: Score,
    /// Frequently-bought-together, leave one out within each held-out order.
    pub fbt: Score,
    /// Plain co-occurrence (cosine), leave one out.
    pub cosine: Score,
}

/// Splits `orders` (oldest first) into training and each listed customer's last order.
/// `customer_of` names an order's customer (`None` for guests).
pub fn split<'a>(
    orders: &'a [PastOrder],
    listed: &HashSet<String>,
    customer_of: impl Fn(&PastOrder) -> Option<String>,
) -> (Vec<&'a PastOrder>, Vec<&'a PastOrder>) {
    let mut last: HashMap<String, usize> = HashMap::new();
    for (i, o) in orders.iter().enumerate() {
        if let Some(c) = customer_of(o).filter(|c| listed.contains(c)) {
            last.insert(c, i);
        }
    }
    let held: HashSet<usize> = last.values().copied().collect();
    let mut train = Vec::with_capacity(orders.len());
    let mut test = Vec::with_capacity(held.len());
    for (i, o) in orders.iter().enumerate() {
        if held.contains(&i) {
            test.push(o);
        } else {
            train.push(o);
        }
    }
    (train, test)
}

/// A model trained on `orders`, in order.
pub fn train<'a>(settings: ModelSettings, orders: impl IntoIterator<Item = &'a PastOrder>) -> Model {
    let mut model = Model::new(settings);
    for o in orders {
        model.add_order(o.user, &o.products, o.at_ms);
    }
    model.refresh();
    model
}

/// A shopper's list: personalised, then filled with popular products (what a shopper the
/// model knows nothing of gets).
pub fn personal_list(model: &Model, user: Option<&Id>, now_ms: i64) -> Vec<Id> {
    let mut list: Vec<Item> = user
        .map(|u| model.personalized(u, now_ms, K).into_iter().map(|(i, _)| i).collect())
        .unwrap_or_default();
    for &(item, _) in model.popular() {
        if list.len() >= K {
            break;
        }
        if !list.contains(&item) {
            list.push(item);
        }
    }
    list.into_iter().map(|i| model.id(i)).collect()
}

/// Scores the model trained on `train` against the held-out `test` orders.
pub fn evaluate(settings: ModelSettings, train_orders: &[&PastOrder], test: &[&PastOrder]) -> Report {
    let model = train(settings, train_orders.iter().copied());
    // Baseline 1: the products in most training orders.
    let mut counts: BTreeMap<Id, usize> = BTreeMap::new();
    for o in train_orders {
        for p in &o.products {
            *counts.entry(*p).or_default() += 1;
        }
    }
    let mut by_count: Vec<(Id, usize)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let popular: Vec<Id> = by_count.iter().take(K).map(|(p, _)| *p).collect();

    let mut report = Report {
        customers: test.len(),
        ..Report::default()
    };
    for o in test {
        let truth: HashSet<Id> = o.products.iter().copied().collect();
        report
            .personalized
            .add(&personal_list(&model, o.user.as_ref(), o.at_ms), &truth);
        report.popularity.add(&popular, &truth);
        for anchor in &o.products {
            let Some(a) = model.item(anchor) else { continue };
            let rest: HashSet<Id> = truth.iter().copied().filter(|p| p != anchor).collect();
            let fbt: Vec<Id> = model
                .frequently_bought_together(a)
                .iter()
                .map(|(i, _)| model.id(*i))
                .collect();
            report.fbt.add(&fbt, &rest);
            report.cosine.add(&cosine(&model, a), &rest);
        }
    }
    report
}

/// Baseline 2: the partners of `a` by plain cosine of co-purchase counts.
fn cosine(model: &Model, a: Item) -> Vec<Id> {
    let na = f64::from(model.orders_with(a).max(1));
    let mut scored: Vec<(Item, f64)> = model
        .co_purchases(a)
        .map(|(b, n)| (b, f64::from(n) / (na * f64::from(model.orders_with(b).max(1))).sqrt()))
        .collect();
    scored.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    scored.into_iter().take(K).map(|(i, _)| model.id(i)).collect()
}
