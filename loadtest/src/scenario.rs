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
    /// Steps, picked at random by weight.
    pub steps: Vec<Step>,
}

/// One kind of request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Step name (a histogram per step).
    pub name: String,
    /// Relative frequency.
    pub weight: u32,
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
}

impl Scenario {
    /// Loads and checks a scenario file.
    pub fn load(path: &Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let scenario: Scenario = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        anyhow::ensure!(!scenario.steps.is_empty(), "{}: no steps", path.display());
        anyhow::ensure!(
            scenario.steps.iter().any(|s| s.weight > 0),
            "{}: all weights are 0",
            path.display()
        );
        Ok(scenario)
    }

    /// Returns whether any step uses `placeholder` (e.g. `{product}`) in its path or body.
    pub fn uses(&self, placeholder: &str) -> bool {
        self.steps
            .iter()
            .any(|s| s.path.contains(placeholder) || s.body.as_deref().is_some_and(|b| b.contains(placeholder)))
    }
}

fn get() -> String {
    "GET".into()
}
