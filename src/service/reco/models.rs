//! The recommendation models, in memory and updated one action at a time: time-decayed
//! popularity, co-purchase and co-view counts, each shopper's recent history, and the
//! ranked lists served from them (frequently bought together, related, personalised).
//!
//! Nothing here reads storage or the clock: the worker feeds actions in order, the eval
//! feeds historical orders, and both ask the same questions. Ranked lists of an item are
//! recomputed when its counts change ([`Model::refresh`]), so a request only reads them.

use std::collections::VecDeque;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::domain::Id;

/// A product, numbered densely by the model.
pub type Item = u32;

/// How the models weigh and rank (from `[recommendations]`).
#[derive(Debug, Clone, Copy)]
pub struct ModelSettings {
    /// Half-life of an action's weight in popularity, milliseconds.
    pub popular_half_life_ms: f64,
    /// Half-life of a shopper's own actions in their recommendations, milliseconds.
    pub history_half_life_ms: f64,
    /// Personalised lists leave out what the shopper bought this recently, milliseconds.
    pub exclude_bought_within_ms: i64,
    /// Frequently-bought-together needs this many orders with both products.
    pub min_support: u32,
    /// Frequently-bought-together divides co-purchases by the partner's purchases to this
    /// power: 0 is confidence, 1 is lift.
    pub damping: f64,
    /// Weight of buying again against buying what goes with one's purchases.
    pub repeat_weight: f64,
    /// Weight of what is popular now in a personalised list.
    pub popularity_prior: f64,
}

/// What a shopper did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Opened the product page.
    View,
    /// Put it in a cart.
    Cart,
    /// Bought it.
    Purchase,
}

impl Signal {
    /// Weight in popularity and in a shopper's history.
    fn weight(self) -> f64 {
        match self {
            Signal::View => 0.05,
            Signal::Cart => 0.3,
            Signal::Purchase => 1.0,
        }
    }
}

/// Basket items that pair with each other: the rest of a huge (wholesale) basket still
/// counts as bought, but pairs grow with the square of the basket.
const MAX_PAIRED: usize = 150;
/// Ranked partners kept per item.
const KEPT: usize = 40;
/// Recent views remembered per shopper or session.
const RECENT_VIEWS: usize = 20;
/// Views this close together belong to one browsing session.
const SESSION_GAP_MS: i64 = 30 * 60 * 1000;
/// Popular items kept ranked.
const POPULAR_KEPT: usize = 1000;

/// A decayed sum kept as `Σ w·e^{(t - base)/τ}`, so adding is one multiply and reading at
/// time `now` divides once: nothing is rescaled as time passes.
#[derive(Debug, Clone, Copy)]
struct Decay {
    base_ms: i64,
    tau_ms: f64,
}

impl Decay {
    fn new(base_ms: i64, half_life_ms: f64) -> Decay {
        Decay {
            base_ms,
            tau_ms: (half_life_ms / std::f64::consts::LN_2).max(1.0),
        }
    }

    fn grow(&self, at_ms: i64) -> f64 {
        (((at_ms - self.base_ms) as f64) / self.tau_ms)
            .clamp(-700.0, 700.0)
            .exp()
    }
}

#[derive(Debug, Default, Clone)]
struct History {
    /// Per bought item: decayed purchase weight (at the history decay) and the last time.
    bought: FxHashMap<Item, (f64, i64)>,
    /// Recent views and cart adds, newest last.
    recent: VecDeque<(Item, i64, Signal)>,
}

/// The models.
#[derive(Debug, Clone)]
pub struct Model {
    settings: ModelSettings,
    ids: Vec<Id>,
    index: FxHashMap<Id, Item>,
    /// Orders containing each item.
    bought: Vec<u32>,
    /// Co-purchases: orders containing both.
    co_bought: Vec<FxHashMap<Item, u32>>,
    /// Sessions that viewed each item.
    viewed: Vec<u32>,
    /// Co-views: sessions that viewed both.
    co_viewed: Vec<FxHashMap<Item, u32>>,
    popularity: Vec<f64>,
    popular_decay: Option<Decay>,
    history_decay: Option<Decay>,
    users: FxHashMap<Id, History>,
    sessions: FxHashMap<u64, VecDeque<(Item, i64)>>,
    dirty: FxHashSet<Item>,
    fbt: Vec<Vec<(Item, f32)>>,
    related: Vec<Vec<(Item, f32)>>,
    popular: Vec<(Item, f64)>,
    popular_dirty: bool,
    last_at_ms: i64,
}

impl Model {
    /// An empty model.
    pub fn new(settings: ModelSettings) -> Model {
        Model {
            settings,
            ids: Vec::new(),
            index: FxHashMap::default(),
            bought: Vec::new(),
            co_bought: Vec::new(),
            viewed: Vec::new(),
            co_viewed: Vec::new(),
            popularity: Vec::new(),
            popular_decay: None,
            history_decay: None,
            users: FxHashMap::default(),
            sessions: FxHashMap::default(),
            dirty: FxHashSet::default(),
            fbt: Vec::new(),
            related: Vec::new(),
            popular: Vec::new(),
            popular_dirty: false,
            last_at_ms: 0,
        }
    }

    /// The item number of a product, if the model has seen it.
    pub fn item(&self, id: &Id) -> Option<Item> {
        self.index.get(id).copied()
    }

    /// The product of an item number.
    pub fn id(&self, item: Item) -> Id {
        self.ids[item as usize]
    }

    /// Products the model knows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the model has seen nothing.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The time of the latest action taken in.
    pub fn last_at_ms(&self) -> i64 {
        self.last_at_ms
    }

    fn intern(&mut self, id: Id) -> Item {
        if let Some(i) = self.index.get(&id) {
            return *i;
        }
        let item = self.ids.len() as Item;
        self.ids.push(id);
        self.index.insert(id, item);
        self.bought.push(0);
        self.co_bought.push(FxHashMap::default());
        self.viewed.push(0);
        self.co_viewed.push(FxHashMap::default());
        self.popularity.push(0.0);
        self.fbt.push(Vec::new());
        self.related.push(Vec::new());
        item
    }

    fn decays(&mut self, at_ms: i64) -> (Decay, Decay) {
        let s = self.settings;
        let popular = *self
            .popular_decay
            .get_or_insert_with(|| Decay::new(at_ms, s.popular_half_life_ms));
        let history = *self
            .history_decay
            .get_or_insert_with(|| Decay::new(at_ms, s.history_half_life_ms));
        self.last_at_ms = self.last_at_ms.max(at_ms);
        (popular, history)
    }

    /// Takes in an order: its products (duplicates ignored), its buyer if known, and when.
    pub fn add_order(&mut self, user: Option<Id>, products: &[Id], at_ms: i64) {
        let (popular, history) = self.decays(at_ms);
        let mut items: Vec<Item> = Vec::with_capacity(products.len());
        let mut seen = FxHashSet::default();
        for p in products {
            let item = self.intern(*p);
            if seen.insert(item) {
                items.push(item);
            }
        }
        let grow = popular.grow(at_ms);
        for &i in &items {
            self.bought[i as usize] += 1;
            self.popularity[i as usize] += Signal::Purchase.weight() * grow;
            self.dirty.insert(i);
        }
        self.popular_dirty = true;
        let paired = &items[..items.len().min(MAX_PAIRED)];
        for (n, &a) in paired.iter().enumerate() {
            for &b in &paired[n + 1..] {
                *self.co_bought[a as usize].entry(b).or_default() += 1;
                *self.co_bought[b as usize].entry(a).or_default() += 1;
            }
        }
        if let Some(user) = user {
            let h = self.users.entry(user).or_default();
            let w = history.grow(at_ms);
            for &i in &items {
                let e = h.bought.entry(i).or_insert((0.0, at_ms));
                e.0 += w;
                e.1 = e.1.max(at_ms);
            }
        }
    }

    /// Takes in a view or a cart add by a user or a pseudonymous session.
    /// `count` such actions at once (anonymous views are coalesced).
    pub fn add_action(&mut self, signal: Signal, user: Option<Id>, session: u64, product: Id, at_ms: i64, count: u32) {
        let (popular, _) = self.decays(at_ms);
        let item = self.intern(product);
        self.popularity[item as usize] += signal.weight() * f64::from(count.max(1)) * popular.grow(at_ms);
        self.popular_dirty = true;
        // A session is the user when signed in, else the cart token's hash.
        let key = match user {
            Some(u) => u64::from_le_bytes(u.to_bytes()[8..].try_into().expect("8 bytes")),
            None => session,
        };
        if key != 0 {
            let recent = self.sessions.entry(key).or_default();
            recent.retain(|(_, at)| at_ms - *at <= SESSION_GAP_MS);
            if !recent.iter().any(|(i, _)| *i == item) {
                let earlier: Vec<Item> = recent.iter().map(|(i, _)| *i).collect();
                self.viewed[item as usize] += 1;
                for other in earlier {
                    *self.co_viewed[item as usize].entry(other).or_default() += 1;
                    *self.co_viewed[other as usize].entry(item).or_default() += 1;
                    self.dirty.insert(other);
                }
                self.dirty.insert(item);
            }
            let recent = self.sessions.entry(key).or_default();
            recent.push_back((item, at_ms));
            if recent.len() > RECENT_VIEWS {
                recent.pop_front();
            }
        }
        if let Some(user) = user {
            let h = self.users.entry(user).or_default();
            h.recent.push_back((item, at_ms, signal));
            if h.recent.len() > RECENT_VIEWS {
                h.recent.pop_front();
            }
        }
    }

    /// Forgets browsing sessions idle for longer than a session gap before `now`.
    pub fn forget_idle_sessions(&mut self, now_ms: i64) {
        self.sessions
            .retain(|_, recent| recent.back().is_some_and(|(_, at)| now_ms - *at <= SESSION_GAP_MS));
    }

    /// Recomputes the ranked lists of every item whose counts changed; returns how many.
    pub fn refresh(&mut self) -> usize {
        let dirty: Vec<Item> = self.dirty.drain().collect();
        for &a in &dirty {
            self.fbt[a as usize] = self.rank_fbt(a);
            self.related[a as usize] = self.rank_related(a);
        }
        if self.popular_dirty {
            let mut ranked: Vec<(Item, f64)> = self
                .popularity
                .iter()
                .enumerate()
                .filter(|(_, s)| **s > 0.0)
                .map(|(i, s)| (i as Item, *s))
                .collect();
            let keep = POPULAR_KEPT.min(ranked.len());
            if keep < ranked.len() {
                ranked.select_nth_unstable_by(keep, |a, b| b.1.total_cmp(&a.1));
                ranked.truncate(keep);
            }
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            self.popular = ranked;
            self.popular_dirty = false;
        }
        dirty.len()
    }

    fn rank_fbt(&self, a: Item) -> Vec<(Item, f32)> {
        let damping = self.settings.damping;
        let ranked = self.co_bought[a as usize]
            .iter()
            .filter(|(_, n)| **n >= self.settings.min_support)
            .map(|(&b, &n)| {
                (
                    b,
                    (f64::from(n) / f64::from(self.bought[b as usize].max(1)).powf(damping)) as f32,
                )
            });
        top(ranked, KEPT)
    }

    fn rank_related(&self, a: Item) -> Vec<(Item, f32)> {
        let mut scores: FxHashMap<Item, f32> = FxHashMap::default();
        let cosine =
            |n: u32, x: u32, y: u32| (f64::from(n) / (f64::from(x.max(1)) * f64::from(y.max(1))).sqrt()) as f32;
        for (&b, &n) in &self.co_bought[a as usize] {
            *scores.entry(b).or_default() += cosine(n, self.bought[a as usize], self.bought[b as usize]);
        }
        for (&b, &n) in &self.co_viewed[a as usize] {
            *scores.entry(b).or_default() += 0.5 * cosine(n, self.viewed[a as usize], self.viewed[b as usize]);
        }
        top(scores.into_iter(), KEPT)
    }

    /// Frequently bought together with `a`, best first.
    pub fn frequently_bought_together(&self, a: Item) -> &[(Item, f32)] {
        &self.fbt[a as usize]
    }

    /// Related to `a` by co-purchases and co-views, best first.
    pub fn related(&self, a: Item) -> &[(Item, f32)] {
        &self.related[a as usize]
    }

    /// The most popular items now, best first.
    pub fn popular(&self) -> &[(Item, f64)] {
        &self.popular
    }

    /// Whether the model knows anything of `user`.
    pub fn knows(&self, user: &Id) -> bool {
        self.users.contains_key(user)
    }

    /// A shopper's recommendations at `now`, best first: what people who bought and viewed
    /// what they did went on to buy, and what they buy again, leaving out what they bought
    /// within the exclusion window. Empty for an unknown shopper.
    pub fn personalized(&self, user: &Id, now_ms: i64, limit: usize) -> Vec<(Item, f64)> {
        let Some(h) = self.users.get(user) else {
            return Vec::new();
        };
        let Some(decay) = self.history_decay else {
            return Vec::new();
        };
        let now_grow = decay.grow(now_ms);
        let mut weights: FxHashMap<Item, f64> = FxHashMap::default();
        for (&item, &(w, _)) in &h.bought {
            *weights.entry(item).or_default() += w / now_grow;
        }
        for &(item, at, signal) in &h.recent {
            *weights.entry(item).or_default() += signal.weight() * decay.grow(at) / now_grow;
        }
        let total: f64 = weights.values().sum();
        if total <= 0.0 {
            return Vec::new();
        }
        let mut scores: FxHashMap<Item, f64> = FxHashMap::default();
        for (&item, &w) in &weights {
            let w = w / total;
            for &(other, sim) in self.related(item) {
                *scores.entry(other).or_default() += w * f64::from(sim);
            }
        }
        for (&item, &(w, _)) in &h.bought {
            *scores.entry(item).or_default() += self.settings.repeat_weight * (w / now_grow) / total;
        }
        if self.settings.popularity_prior > 0.0 {
            if let Some(&(_, best)) = self.popular.first() {
                for &(item, p) in self.popular.iter().take(limit * 5) {
                    *scores.entry(item).or_default() += self.settings.popularity_prior * p / best;
                }
            }
        }
        let cutoff = now_ms - self.settings.exclude_bought_within_ms;
        let mut ranked: Vec<(Item, f64)> = scores
            .into_iter()
            .filter(|(item, _)| h.bought.get(item).is_none_or(|(_, last)| *last < cutoff))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(limit);
        ranked
    }

    /// Orders that contain `a`.
    pub fn orders_with(&self, a: Item) -> u32 {
        self.bought[a as usize]
    }

    /// Orders that contain both `a` and `b`.
    pub fn orders_with_both(&self, a: Item, b: Item) -> u32 {
        self.co_bought[a as usize].get(&b).copied().unwrap_or(0)
    }

    /// Every co-purchase partner of `a` with its count (for baselines).
    pub fn co_purchases(&self, a: Item) -> impl Iterator<Item = (Item, u32)> + '_ {
        self.co_bought[a as usize].iter().map(|(b, n)| (*b, *n))
    }
}

/// The `k` best by score, best first (ties by item number, so lists are stable).
fn top(scores: impl Iterator<Item = (Item, f32)>, k: usize) -> Vec<(Item, f32)> {
    let mut all: Vec<(Item, f32)> = scores.filter(|(_, s)| *s > 0.0).collect();
    let by = |a: &(Item, f32), b: &(Item, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if all.len() > k {
        all.select_nth_unstable_by(k, by);
        all.truncate(k);
    }
    all.sort_by(by);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ModelSettings {
        ModelSettings {
            popular_half_life_ms: 86_400_000.0,
            history_half_life_ms: 86_400_000.0 * 30.0,
            exclude_bought_within_ms: 3_600_000,
            min_support: 2,
            damping: 0.2,
            repeat_weight: 1.0,
            popularity_prior: 0.0,
        }
    }

    fn ids(n: usize) -> Vec<Id> {
        (0..n).map(|_| Id::new()).collect()
    }

    #[test]
    fn products_bought_together_rank_each_other_above_chance_pairs() {
        let p = ids(4);
        let mut m = Model::new(settings());
        for t in 0..5 {
            m.add_order(None, &[p[0], p[1]], t);
        }
        m.add_order(None, &[p[0], p[2]], 10);
        m.add_order(None, &[p[3]], 11);
        m.refresh();
        let a = m.item(&p[0]).unwrap();
        let fbt: Vec<Id> = m.frequently_bought_together(a).iter().map(|(i, _)| m.id(*i)).collect();
        assert_eq!(fbt, [p[1]], "p2 was bought with p0 once: under the minimum support");
        let related: Vec<Id> = m.related(a).iter().map(|(i, _)| m.id(*i)).collect();
        assert_eq!(related, [p[1], p[2]]);
        assert_eq!(m.orders_with_both(a, m.item(&p[1]).unwrap()), 5);
    }

    #[test]
    fn popularity_decays_so_recent_sales_win() {
        let p = ids(2);
        let day = 86_400_000;
        let mut m = Model::new(settings());
        for t in 0..4 {
            m.add_order(None, &[p[0]], t);
        }
        for t in 0..2 {
            m.add_order(None, &[p[1]], 10 * day + t);
        }
        m.refresh();
        assert_eq!(m.id(m.popular()[0].0), p[1], "two sales today beat four ten days ago");
    }

    #[test]
    fn personalised_lists_follow_the_shoppers_purchases_and_skip_what_they_just_bought() {
        let p = ids(5);
        let (me, other) = (Id::new(), Id::new());
        let mut m = Model::new(settings());
        for t in 0..3 {
            m.add_order(Some(other), &[p[0], p[1]], t);
        }
        m.add_order(Some(other), &[p[3], p[4]], 5);
        m.add_order(Some(me), &[p[0]], 100);
        m.refresh();
        let soon: Vec<Id> = m.personalized(&me, 200, 10).iter().map(|(i, _)| m.id(*i)).collect();
        assert_eq!(soon, [p[1]], "p0 was just bought; p1 goes with it; p3/p4 are unrelated");
        let later: Vec<Id> = m
            .personalized(&me, 100 + 7_200_000, 10)
            .iter()
            .map(|(i, _)| m.id(*i))
            .collect();
        assert!(later.contains(&p[0]), "after the window, buying again is a candidate");
        assert!(m.personalized(&Id::new(), 200, 10).is_empty());
    }

    #[test]
    fn views_in_one_session_relate_products() {
        let p = ids(3);
        let mut m = Model::new(settings());
        for session in 1..=3u64 {
            m.add_action(Signal::View, None, session, p[0], 0, 1);
            m.add_action(Signal::View, None, session, p[1], 1000, 1);
        }
        m.add_action(Signal::View, None, 9, p[2], 0, 1);
        m.refresh();
        let a = m.item(&p[0]).unwrap();
        let related: Vec<Id> = m.related(a).iter().map(|(i, _)| m.id(*i)).collect();
        assert_eq!(related, [p[1]]);
    }
}
