//! The self-contained HTML page of a report (plots are linked PNGs).

use std::fmt::Write as _;

use super::plot::Plot;
use super::{CellResult, Report, Stat};
use crate::scenario::Reference;

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn stat(s: Option<Stat>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{:.3} ± {:.3}", s.mean, s.ci95),
        Some(s) => format!("{:.3}", s.mean),
        None => "–".into(),
    }
}

fn row(c: &CellResult) -> String {
    let cell = &c.cell;
    let errors = if c.errors() > 0 {
        let first = c
            .runs
            .iter()
            .find_map(|r| r.error.as_deref())
            .unwrap_or_default();
        format!("{} ({})", c.errors(), escape(first))
    } else {
        "0".into()
    };
    format!(
        "<tr id=\"cell-{id}\"><td><code>{id}</code></td><td>{codec}</td><td>{prot}</td><td>{model}</td>\
         <td>{loss}</td><td>{delay}</td><td>{jitter}</td><td>{measured:.2}</td><td>{wire:.1}</td>\
         <td>{pwb}</td><td>{vq}</td><td>{pnb}</td><td>{em}</td><td>{errors}</td>\
         <td><a href=\"cells/{id}.csv\">csv</a> <a href=\"cells/{id}.json\">json</a></td></tr>\n",
        id = escape(&cell.id),
        codec = escape(&cell.codec),
        prot = cell.protection.name(),
        model = escape(cell.loss_model.name()),
        loss = super::trim(cell.loss_percent),
        delay = cell.delay_ms,
        jitter = cell.jitter_ms,
        measured = c.measured_loss_percent,
        wire = c.wire_kbps,
        pwb = stat(c.pesq_wb),
        vq = stat(c.visqol),
        pnb = stat(c.pesq_nb),
        em = stat(c.emodel_mos),
    )
}

/// Renders the page.
pub fn render(report: &Report, plots: &[Plot]) -> String {
    let s = &report.scenario;
    let mut h = String::new();
    let reference = match &s.reference {
        Reference::Voices(v) => format!("voices: {}", v.join(", ")),
        Reference::Wav(p) => p.display().to_string(),
    };
    let seeds: Vec<String> = s.seeds.iter().map(u64::to_string).collect();
    let fec_note = format!(
        " (in-band FEC where on, encoder told {} % loss)",
        s.fec_loss_percent
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em;max-width:1400px}}\
         table{{border-collapse:collapse;font-size:0.9em}}\
         td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}\
         img{{max-width:100%;border:1px solid #eee;margin:0.5em 0}}\
         </style></head><body>\n<h1>{title}</h1>\n<ul>\
         <li>Reference: {reference} ({secs:.1} s, 48 kHz)</li>\
         <li>Seeds per cell: {seeds}; scores are means with 95 % confidence \
         intervals across seeds (Student's t)</li>\
         <li>Cells: {n}; runs: {runs}; wall time {elapsed:.1} s</li>\
         <li>Pipeline: Opus (libopus) → RTP{red} → seeded network emulator → adaptive \
         jitter buffer → decoder with PLC{fec}; WB-PESQ is ITU-T P.862.2, ViSQOL is v3.1 \
         in speech mode at 16 kHz, the E-model is ITU-T G.107 from the measured loss and \
         mouth-to-ear delay</li>\
         <li>Bitrates on the wire include IP/UDP/RTP headers (40 bytes per packet) and \
         RED headers</li></ul>\n",
        title = escape(&s.name),
        secs = report.reference_seconds,
        seeds = seeds.join(", "),
        n = report.cells.len(),
        runs = report.cells.iter().map(|c| c.runs.len()).sum::<usize>(),
        elapsed = report.elapsed_seconds,
        red = format_args!(" (RED depth {} where on)", s.red_depth),
        fec = fec_note,
    );
    h.push_str("<h2>Plots</h2>\n");
    for p in plots {
        let _ = writeln!(
            h,
            "<figure><img src=\"{file}\" alt=\"{title}\" data-cells=\"{cells}\">\
             <figcaption>{title}</figcaption></figure>",
            file = escape(&p.file),
            title = escape(&p.title),
            cells = escape(&p.cells.join(" ")),
        );
    }
    h.push_str(
        "<h2>Cells</h2>\n<p>All results: <a href=\"results.csv\">results.csv</a>, \
         <a href=\"results.json\">results.json</a>.</p>\n<table>\n<tr><th>cell</th><th>codec</th>\
         <th>protection</th><th>loss model</th><th>loss %</th><th>delay ms</th><th>jitter ms</th>\
         <th>measured loss %</th><th>wire kb/s</th><th>WB-PESQ</th><th>ViSQOL</th><th>NB-PESQ</th>\
         <th>E-model MOS</th><th>unscored seeds</th><th>per seed</th></tr>\n",
    );
    for c in &report.cells {
        h.push_str(&row(c));
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }
}
