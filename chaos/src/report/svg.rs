//! The throughput plot: acknowledged operations per second (green) and failed or indeterminate
//! ones (red) over the run, with every fault window shaded and labelled. Plain SVG, no
//! dependencies.

use std::fmt::Write;

use super::Report;

const W: f64 = 960.0;
const H: f64 = 320.0;
const LEFT: f64 = 50.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 40.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The SVG document.
pub fn render(r: &Report) -> String {
    let secs = r.throughput.len().max(1) as f64;
    let peak = r
        .throughput
        .iter()
        .map(|s| s.ok.max(s.not_ok))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x = |t: f64| LEFT + pw * t / secs;
    let y = |v: f64| TOP + ph - ph * v / peak;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="18" font-size="13">xnai-chaos seed {} — ops/s (green ok, red fail/unknown), faults shaded; {} violation(s)</text>"#,
        r.config.seed,
        r.violations.len()
    );
    for (i, f) in r.faults.iter().enumerate() {
        let (a, b) = (
            x(f.fault.start_ms as f64 / 1000.0),
            x(f.fault.end_ms as f64 / 1000.0),
        );
        let _ = writeln!(
            s,
            r##"<rect x="{a:.1}" y="{TOP}" width="{:.1}" height="{ph}" fill="#f4a261" fill-opacity="0.25"><title>{} {}</title></rect>"##,
            (b - a).max(1.0),
            esc(&f.fault.nemesis),
            esc(&f.fault.target)
        );
        let ly = TOP - 4.0 + if i % 2 == 0 { 0.0 } else { 10.0 } + ph + 24.0;
        let _ = writeln!(
            s,
            r##"<text x="{a:.1}" y="{ly:.1}" fill="#8a4b08" font-size="9">{} {}</text>"##,
            esc(&f.fault.nemesis),
            esc(&f.fault.target)
        );
    }
    for (color, pick) in [("#2a9d8f", true), ("#e63946", false)] {
        let pts: Vec<String> = r
            .throughput
            .iter()
            .map(|p| {
                let v = if pick { p.ok } else { p.not_ok };
                format!("{:.1},{:.1}", x(p.t as f64 + 0.5), y(v as f64))
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            pts.join(" ")
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#333"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="#333"/>"##,
        TOP + ph,
        LEFT + pw,
        TOP + ph,
        TOP + ph
    );
    let _ = writeln!(
        s,
        r#"<text x="4" y="{:.1}">{peak}</text><text x="4" y="{:.1}">0</text>"#,
        TOP + 4.0,
        TOP + ph
    );
    let step = if secs > 60.0 { 10 } else { 5 };
    for t in (0..secs as usize).step_by(step) {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{t}s</text>"#,
            x(t as f64),
            TOP + ph + 12.0
        );
    }
    s.push_str("</svg>\n");
    s
}
