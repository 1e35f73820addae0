//! Logging setup through `tracing`: readable lines on a terminal, JSON lines otherwise (or as
//! configured). A bare level applies to our own crates; other crates log at `warn` unless
//! named, so dependency chatter (tantivy's segment merges) stays out of an operator's view.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Our crates, which a bare level such as `info` or `debug` applies to.
const OUR_CRATES: [&str; 3] = ["storefront", "storefront_storage", "storefront_index"];

/// A log level or filter that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid [log] level {directive:?}: {reason} (use error, warn, info, debug or trace, or filter directives such as \"info,tantivy=info\")")]
pub struct InvalidLogLevel {
    directive: String,
    reason: String,
}

/// The filter for `level`: a bare level covers our crates, with every other crate at warn;
/// anything else is taken as `tracing` filter directives.
pub fn filter(level: &str) -> Result<EnvFilter, InvalidLogLevel> {
    let level = level.trim();
    let invalid = |reason: String| InvalidLogLevel {
        directive: level.to_owned(),
        reason,
    };
    if level.is_empty() {
        return Err(invalid("empty".into()));
    }
    let directives = match level.parse::<tracing::level_filters::LevelFilter>() {
        Ok(bare) => {
            let ours: Vec<String> = OUR_CRATES.iter().map(|c| format!("{c}={bare}")).collect();
            format!("warn,{}", ours.join(","))
        }
        Err(_) if level.contains('=') || level.contains(',') => level.to_owned(),
        Err(e) => return Err(invalid(e.to_string())),
    };
    EnvFilter::builder()
        .parse(&directives)
        .map_err(|e| invalid(e.to_string()))
}

/// Installs the global subscriber. `RUST_LOG` overrides the configured level. Safe to call
/// more than once (later calls are ignored), which tests rely on.
pub fn init(config: &LogConfig) -> Result<(), InvalidLogLevel> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => self::filter(&env)?,
        _ => self::filter(&config.level)?,
    };
    let pretty = match config.format.as_str() {
        "pretty" => true,
        "json" => false,
        _ => std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if pretty {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).with_current_span(false).try_init()
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_is_ours_and_directives_pass_through() {
        let shown = filter("debug").unwrap().to_string();
        assert!(shown.contains("storefront=debug") && shown.contains("warn"), "{shown}");
        assert!(filter("info,tantivy=info")
            .unwrap()
            .to_string()
            .contains("tantivy=info"));
        assert!(filter(" INFO ").is_ok());
        for bad in ["", "loud", "verbose", "storefront=loud"] {
            assert!(filter(bad).is_err(), "{bad:?}");
        }
    }
}
