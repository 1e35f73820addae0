//! SVG report: latency over time (p50/p99 per second) and the latency percentile curve.

use std::path::Path;

use plotters::prelude::*;

use crate::report::Report;

/// Writes the SVG report.
pub fn write_svg(report: &Report, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1100, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(450);
    let to_ms = |us: u64| us as f64 / 1000.0;

    let seconds = report.timeline.len().max(1) as f64;
    let max_ms = report.timeline.iter().map(|s| to_ms(s.p99_us)).fold(0.1f64, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("{} · latency over time (ms)", report.scenario.name),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..seconds, 0f64..max_ms)?;
    chart.configure_mesh().x_desc("seconds").y_desc("ms").draw()?;
    chart
        .draw_series(LineSeries::new(
            report.timeline.iter().map(|s| (s.t_s as f64, to_ms(s.p50_us))),
            &BLUE,
        ))?
        .label("p50")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(
            report.timeline.iter().map(|s| (s.t_s as f64, to_ms(s.p99_us))),
            &RED,
        ))?
        .label("p99")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;

    // Percentile curve on a "nines" axis: x = log10(1 / (1 - q)), so p90 = 1, p99 = 2, p99.9 = 3.
    let nines = |q: f64| (1.0 / (1.0 - q.min(0.9999))).log10();
    let max_curve_ms = report
        .steps
        .iter()
        .flat_map(|s| s.curve.iter().map(|(_, us)| to_ms(*us)))
        .fold(0.1f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&bottom)
        .caption(
            "latency by percentile (x: 1 = p90, 2 = p99, 3 = p99.9, 4 = p99.99)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..4.0, 0f64..max_curve_ms)?;
    chart.configure_mesh().x_desc("nines").y_desc("ms").draw()?;
    let palette = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (i, step) in report.steps.iter().enumerate() {
        let color = palette[i % palette.len()];
        chart
            .draw_series(LineSeries::new(
                step.curve.iter().map(|(q, us)| (nines(*q), to_ms(*us))),
                color,
            ))?
            .label(step.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}
