//! Scenario files: weighted request steps with catalog placeholders.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A scenario: weighted steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Scenario name.
    pub name: String,
    /// When > 0, each connection shops as a guest: it keeps the `X-Cart-Token` it is given and
    /// starts a new cart (a new shopper) after this many requests, so a run covers many
    /// distinct carts.
    #[serde(default)]
    pub requests_per_shopper: u32,
    /// When true, each connection is a line of guest shoppers who each run the steps in order
    /// (a journey: add to cart, then check out), every step `repeat` times; a new shopper (a
    /// new cart) starts after the last step. Weights and `requests_per_shopper` are unused.
    #[serde(default)]
    pub sequence: bool,
    /// When true, no cart token is kept: every request is a new guest shopper (each add to
    /// cart makes a new cart), as a tool that cannot keep state would send it.
    #[serde(default)]
    pub new_cart_each_request: bool,
    /// Steps, picked at random by weight (or run in order, see `sequence`).
    pub steps: Vec<Step>,
}

/// One kind of request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Step name (a histogram per step).
    pub name: String,
    /// Relative frequency.
    #[serde(default = "one")]
    pub weight: u32,
    /// In a `sequence`, how many times a shopper runs this step: `[min, max]`, picked at
    /// random (default once).
    #[serde(default)]
    pub repeat: Option<[u32; 2]>,
    /// Send an `Idempotency-Key` unique to this request (checkout requires one).
    #[serde(default)]
    pub idempotency_key: bool,
    /// Path and query; `{product}`, `{category}`, `{word}` (a title word) and `{prefix}` (its
    /// first three letters) are filled from the catalog.
    pub path: String,
    /// Send `If-None-Match` with the ETag primed for this URL.
    #[serde(default)]
    pub conditional: bool,
    /// HTTP method (default GET).
    #[serde(default = "get")]
    pub method: String,
    /// JSON body template; `{sku}` is filled with an in-stock SKU.
    #[serde(default)]
    pub body: Option<String>,
    /// Sends `Authorization: Bearer <token>` with the token taken from this environment
    /// variable when the scenario loads (a signed-in shopper's requests).
    #[serde(default)]
    pub bearer_env: Option<String>,
    /// The `Authorization` value resolved from `bearer_env`.
    #[serde(skip)]
    pub authorization: Option<hyper::header::HeaderValue>,
    /// Extra request headers, e.g. `{ "x-cart-token" = "..." }`.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// `headers`, checked when the scenario loads.
    #[serde(skip)]
    pub extra_headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
}

impl Scenario {
    /// Loads and checks a scenario file.
    pub fn load(path: &Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let mut scenario: Scenario = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        for step in &mut scenario.steps {
            for (name, value) in &step.headers {
                step.extra_headers.push((
                    hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        anyhow::anyhow!("{}: step {}: bad header name {name:?}", path.display(), step.name)
                    })?,
                    hyper::header::HeaderValue::from_str(value)
                        .map_err(|_| anyhow::anyhow!("{}: step {}: bad value of {name}", path.display(), step.name))?,
                ));
            }
            if let Some(var) = &step.bearer_env {
                let token = std::env::var(var).map_err(|_| {
                    anyhow::anyhow!("{}: step {}: set {var} to an access token", path.display(), step.name)
                })?;
                step.authorization = Some(hyper::header::HeaderValue::from_str(&format!("Bearer {token}"))?);
            }
        }
        anyhow::ensure!(!scenario.steps.is_empty(), "{}: no steps", path.display());
        anyhow::ensure!(
            scenario.sequence || scenario.steps.iter().any(|s| s.weight > 0),
            "{}: all weights are 0",
            path.display()
        );
        for step in &scenario.steps {
            if let Some([min, max]) = step.repeat {
                anyhow::ensure!(
                    scenario.sequence && min <= max && max > 0,
                    "{}: step {}: repeat needs `sequence = true` and 0 <= min <= max, max > 0",
                    path.display(),
                    step.name
                );
            }
        }
        Ok(scenario)
    }

    /// Returns whether any step uses `placeholder` (e.g. `{product}`) in its path or body.
    pub fn uses(&self, placeholder: &str) -> bool {
        self.steps
            .iter()
            .any(|s| s.path.contains(placeholder) || s.body.as_deref().is_some_and(|b| b.contains(placeholder)))
    }
}

fn one() -> u32 {
    1
}

fn get() -> String {
    "GET".into()
}
