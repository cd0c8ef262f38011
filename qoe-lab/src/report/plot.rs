//! PNG plots with `plotters`: one chart per metric × codec × loss model ×
//! delay × jitter, MOS against loss, one line per protection scheme with
//! its 95 % confidence band across seeds. Text is drawn by plotters'
//! ab_glyph backend with an embedded DejaVu Sans, so no fontconfig or
//! freetype is needed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{CellResult, Report, ReportError, Stat};

/// DejaVu Sans (Bitstream Vera licence, see assets/DejaVuSans-LICENSE.txt).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// A plot written, and the cells it shows.
#[derive(Debug, Clone)]
pub struct Plot {
    /// Path relative to the output directory.
    pub file: String,
    /// Title.
    pub title: String,
    /// Ids of the cells drawn.
    pub cells: Vec<String>,
}

/// The metrics plotted: name, axis label, accessor.
type Metric = (&'static str, &'static str, fn(&CellResult) -> Option<Stat>);
const METRICS: [Metric; 3] = [
    ("pesq-wb", "WB-PESQ (P.862.2 MOS-LQO)", |c| c.pesq_wb),
    ("visqol", "ViSQOL v3.1 speech (MOS-LQO)", |c| c.visqol),
    ("emodel", "E-model MOS-CQE (G.107)", |c| c.emodel_mos),
];

fn register_font() -> Result<(), String> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| "the embedded font is not a valid TrueType font".to_owned());
    });
    result
}

/// Draws every chart of `report` into `out/plots/`.
pub fn draw_all(report: &Report, out: &Path) -> Result<Vec<Plot>, ReportError> {
    register_font().map_err(|message| ReportError::Plot {
        path: out.join("plots"),
        message,
    })?;
    // Group: codec, loss model, delay, jitter → protection → cells.
    let mut groups: BTreeMap<(String, String, u64, u64), Vec<&CellResult>> = BTreeMap::new();
    for c in &report.cells {
        let k = (
            c.cell.codec.clone(),
            c.cell.loss_model.name().to_owned(),
            c.cell.delay_ms,
            c.cell.jitter_ms,
        );
        groups.entry(k).or_default().push(c);
    }
    let mut plots = Vec::new();
    for ((codec, model, delay, jitter), cells) in &groups {
        for (metric, label, get) in METRICS {
            if cells.iter().all(|c| get(c).is_none()) {
                continue;
            }
            let file = format!("plots/{metric}_{codec}_{model}_d{delay}_j{jitter}.png");
            let title = format!("{codec}, {model} loss, {delay} ms delay, {jitter} ms jitter");
            draw(&out.join(&file), &title, label, cells, get).map_err(|message| {
                ReportError::Plot {
                    path: out.join(&file),
                    message,
                }
            })?;
            plots.push(Plot {
                file,
                title: format!("{label}: {title}"),
                cells: cells.iter().map(|c| c.cell.id.clone()).collect(),
            });
        }
    }
    Ok(plots)
}

fn draw(
    path: &Path,
    title: &str,
    label: &str,
    cells: &[&CellResult],
    get: fn(&CellResult) -> Option<Stat>,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    // Series in first-appearance order (the scenario's protection order).
    let mut series: Vec<(&str, Vec<(f64, Stat)>)> = Vec::new();
    for c in cells {
        let name = c.cell.protection.name();
        let point = get(c).map(|s| (c.cell.loss_percent, s));
        match series.iter_mut().find(|(n, _)| *n == name) {
            Some((_, pts)) => pts.extend(point),
            None => series.push((name, point.into_iter().collect())),
        }
    }
    for (_, pts) in &mut series {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let xs = || series.iter().flat_map(|(_, p)| p.iter().map(|(x, _)| *x));
    let (mut x0, mut x1) = (xs().fold(f64::MAX, f64::min), xs().fold(f64::MIN, f64::max));
    if x1 - x0 < 1.0 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    let pad = 0.03 * (x1 - x0);
    let (x0, x1) = ((x0 - pad).max(-1.0), x1 + pad);

    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(x0..x1, 1.0f64..5.0f64)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("packet loss (%)")
        .y_desc(label)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 15))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        // Confidence band: upper edge left to right, lower edge back.
        let clamp = |y: f64| y.clamp(1.0, 5.0);
        let mut band: Vec<(f64, f64)> = pts
            .iter()
            .map(|(x, s)| (*x, clamp(s.mean + s.ci95)))
            .collect();
        band.extend(pts.iter().rev().map(|(x, s)| (*x, clamp(s.mean - s.ci95))));
        if pts.len() > 1 {
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band,
                    color.mix(0.18).filled(),
                )))
                .map_err(|e| err(&e))?;
        }
        chart
            .draw_series(pts.iter().map(|(x, s)| {
                PathElement::new(
                    vec![(*x, clamp(s.mean - s.ci95)), (*x, clamp(s.mean + s.ci95))],
                    color.mix(0.6),
                )
            }))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|(x, s)| (*x, s.mean)),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                pts.iter()
                    .map(|(x, s)| Circle::new((*x, s.mean), 3, color.filled())),
            )
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
