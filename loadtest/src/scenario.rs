//! Scenario files: weighted request steps with catalog placeholders.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A scenario: weighted steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Scenario name.
    pub name: String,
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

    /// Returns whether any step uses `placeholder` (e.g. `{product}`).
    pub fn uses(&self, placeholder: &str) -> bool {
        self.steps.iter().any(|s| s.path.contains(placeholder))
    }
}
