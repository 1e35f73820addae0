//! Compare mode: the ratio of every metric between two result files.

use crate::report::{Percentiles, Report};

fn ratio(a: f64, b: f64) -> String {
    if a == 0.0 {
        "-".into()
    } else {
        format!("{:.2}x", b / a)
    }
}

fn rows(name: &str, a: &Percentiles, b: &Percentiles, out: &mut String) {
    let metrics: [(&str, f64, f64); 6] = [
        ("rps", a.rps, b.rps),
        ("p50_us", a.p50_us as f64, b.p50_us as f64),
        ("p90_us", a.p90_us as f64, b.p90_us as f64),
        ("p99_us", a.p99_us as f64, b.p99_us as f64),
        ("p99.9_us", a.p999_us as f64, b.p999_us as f64),
        ("max_us", a.max_us as f64, b.max_us as f64),
    ];
    for (metric, x, y) in metrics {
        out.push_str(&format!(
            "{:<20} {:<10} {:>12.1} {:>12.1} {:>8}\n",
            name,
            metric,
            x,
            y,
            ratio(x, y)
        ));
    }
    out.push_str(&format!(
        "{:<20} {:<10} {:>12} {:>12}\n",
        name, "errors", a.errors, b.errors
    ));
}

/// Renders `b` relative to `a` (ratios are b / a).
pub fn compare(a: &Report, b: &Report) -> String {
    let mut out = format!(
        "A: {} ({} {}, commit {})\nB: {} ({} {}, commit {})\n",
        a.label,
        a.scenario.name,
        a.settings.mode,
        a.git_commit.as_deref().unwrap_or("?"),
        b.label,
        b.scenario.name,
        b.settings.mode,
        b.git_commit.as_deref().unwrap_or("?"),
    );
    out.push_str(&format!(
        "{:<20} {:<10} {:>12} {:>12} {:>8}\n",
        "step", "metric", "A", "B", "B/A"
    ));
    rows("TOTAL", &a.total, &b.total, &mut out);
    for step in &a.steps {
        if let Some(other) = b.steps.iter().find(|s| s.name == step.name) {
            rows(&step.name, &step.latency, &other.latency, &mut out);
        }
    }
    out
}
