//! The soak curve as a plain SVG, no dependencies: panels stacked over one time axis (tasks/s,
//! each head's RSS, state and data-directory MiB, state entries), one polyline per series,
//! the reference point (100k tasks) as a dashed line.

use std::fmt::Write;

use crate::sample::Sample;

const W: f64 = 960.0;
const PANEL_H: f64 = 170.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 36.0;
const GAP: f64 = 34.0;
const COLORS: [&str; 6] = [
    "#1d3557", "#e63946", "#2a9d8f", "#f4a261", "#6a4c93", "#8d99ae",
];

/// One line: a label and (seconds, value) points.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
}

/// One panel: a title and its lines.
struct Panel {
    title: &'static str,
    series: Vec<Series>,
}

const MIB: f64 = (1u64 << 20) as f64;

fn panels(samples: &[Sample], head_ids: &[u64]) -> Vec<Panel> {
    let line = |label: String, f: &dyn Fn(&Sample) -> Option<f64>| Series {
        label,
        points: samples
            .iter()
            .filter_map(|s| f(s).map(|v| (s.elapsed_s, v)))
            .collect(),
    };
    let per_head = |what: &str, f: &dyn Fn(&crate::sample::HeadSample) -> f64| {
        head_ids
            .iter()
            .map(|&id| line(format!("head {id} {what}"), &|s| s.head(id).map(f)))
            .collect::<Vec<_>>()
    };
    let mut bytes = vec![line("state (snapshot)".into(), &|s| {
        Some(s.state_bytes as f64 / MIB)
    })];
    bytes.extend(per_head("data dir", &|h| h.data_bytes as f64 / MIB));
    vec![
        Panel {
            title: "tasks/s",
            series: vec![line("rate".into(), &|s| {
                (s.phase == "load").then_some(s.rate)
            })],
        },
        Panel {
            title: "head RSS MiB",
            series: per_head("RSS", &|h| h.rss.total as f64 / MIB),
        },
        Panel {
            title: "MiB",
            series: bytes,
        },
        Panel {
            title: "state entries",
            series: vec![line("entries".into(), &|s| Some(s.state_entries as f64))],
        },
    ]
}

/// The SVG document for `samples`; `mark_s` (seconds) draws the reference line.
pub fn render(title: &str, samples: &[Sample], head_ids: &[u64], mark_s: Option<f64>) -> String {
    let ps = panels(samples, head_ids);
    let h = TOP + ps.len() as f64 * (PANEL_H + GAP) + 10.0;
    let t_max = samples.iter().map(|s| s.elapsed_s).fold(1.0_f64, f64::max);
    let pw = W - LEFT - RIGHT;
    let ph = PANEL_H - 20.0;
    let x = |t: f64| LEFT + pw * t / t_max;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="20" font-size="13">{}</text>"#,
        title.replace('&', "&amp;").replace('<', "&lt;")
    );
    for (i, p) in ps.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL_H + GAP);
        let peak = p
            .series
            .iter()
            .flat_map(|l| l.points.iter().map(|pt| pt.1))
            .fold(0.0_f64, f64::max)
            .max(1e-9)
            * 1.05;
        let y = |v: f64| top + ph - ph * v / peak;
        let _ = writeln!(
            s,
            r##"<text x="{LEFT}" y="{:.1}" font-weight="bold">{}</text><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/><line x1="{LEFT}" y1="{top:.1}" x2="{LEFT}" y2="{:.1}" stroke="#333"/><text x="4" y="{:.1}">{:.1}</text><text x="4" y="{:.1}">0</text>"##,
            top - 4.0,
            p.title,
            top + ph,
            LEFT + pw,
            top + ph,
            top + ph,
            top + 8.0,
            peak,
            top + ph
        );
        for (j, l) in p.series.iter().enumerate() {
            let color = COLORS[j % COLORS.len()];
            let pts: Vec<String> = l
                .points
                .iter()
                .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.3" points="{}"/><text x="{:.1}" y="{:.1}" fill="{color}">{}</text>"#,
                pts.join(" "),
                LEFT + pw + 8.0,
                top + 12.0 + 13.0 * j as f64,
                l.label
            );
        }
        if let Some(m) = mark_s {
            let _ = writeln!(
                s,
                r##"<line x1="{:.1}" y1="{top:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
                x(m),
                x(m),
                top + ph
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{:.0} s</text>"#,
            LEFT + pw,
            top + ph + 13.0,
            t_max
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::HeadSample;

    #[test]
    fn one_polyline_per_series_and_a_mark() {
        let samples: Vec<Sample> = (0..3)
            .map(|i| Sample {
                elapsed_s: i as f64 * 10.0,
                phase: "load",
                done: i * 100,
                rate: 10.0,
                heads: vec![HeadSample {
                    id: 1,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        let svg = render("t", &samples, &[1], Some(10.0));
        // rate, RSS of head 1, state + data dir of head 1, entries.
        assert_eq!(svg.matches("<polyline").count(), 5, "{svg}");
        assert!(svg.contains("stroke-dasharray") && svg.ends_with("</svg>\n"));
    }
}
