//! Result files and human-readable output: the final table, the JSON file, the SVG plot
//! and the comparison of two targets.

use std::fmt::Write as _;

use serde::Serialize;

use crate::stats::{IntervalPoint, LatencySummary};

/// Everything one phase (populate or run) against one target measured.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    /// A label for the target ("A", "B" or the host list).
    pub target: String,
    pub hosts: Vec<String>,
    pub workload: String,
    /// "populate" or "run".
    pub phase: String,
    pub mode: String,
    pub concurrency: usize,
    pub connections: usize,
    pub consistency: String,
    pub distribution: String,
    pub partitions: u64,
    /// `--seed` of the run's random choices (repeat a run with it).
    pub seed: u64,
    pub warmup_s: f64,
    /// Measured seconds (warm-up excluded).
    pub duration_s: f64,
    pub ops: u64,
    pub reads: u64,
    pub writes: u64,
    /// Reads that returned no row (unpopulated keys).
    pub empty_reads: u64,
    pub errors: u64,
    /// Open loop: requests due before the end that were never sent because the run was cut
    /// off while the client was still behind schedule.
    pub dropped: u64,
    pub ops_per_s: f64,
    pub latency: LatencySummary,
    pub client_cpu_s: f64,
    /// Client CPU seconds per wall second: 1.0 = one core busy.
    pub client_cpu_cores: f64,
    /// Client share of the machine's cores.
    pub client_cpu_share: f64,
    pub server_cpu_cores: Option<f64>,
    pub timeline: Vec<IntervalPoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    /// B / A for each metric.
    pub throughput_ratio: f64,
    pub p50_ratio: f64,
    pub p90_ratio: f64,
    pub p99_ratio: f64,
    pub p999_ratio: f64,
    pub max_ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResultFile {
    pub tool: &'static str,
    pub version: &'static str,
    pub command_line: Vec<String>,
    pub machine_cores: usize,
    pub results: Vec<PhaseResult>,
    pub comparison: Option<Comparison>,
}

pub fn to_json(file: &ResultFile) -> String {
    serde_json::to_string_pretty(file).expect("result serialises")
}

fn ratio(b: f64, a: f64) -> f64 {
    if a == 0.0 { f64::NAN } else { b / a }
}

pub fn compare(a: &PhaseResult, b: &PhaseResult) -> Comparison {
    let (la, lb) = (&a.latency, &b.latency);
    Comparison {
        a: a.target.clone(),
        b: b.target.clone(),
        throughput_ratio: ratio(b.ops_per_s, a.ops_per_s),
        p50_ratio: ratio(lb.p50_us as f64, la.p50_us as f64),
        p90_ratio: ratio(lb.p90_us as f64, la.p90_us as f64),
        p99_ratio: ratio(lb.p99_us as f64, la.p99_us as f64),
        p999_ratio: ratio(lb.p999_us as f64, la.p999_us as f64),
        max_ratio: ratio(lb.max_us as f64, la.max_us as f64),
    }
}

pub fn fmt_us(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else if us >= 1000 {
        format!("{:.2}ms", us as f64 / 1000.0)
    } else {
        format!("{us}µs")
    }
}

pub fn progress_line(label: &str, p: &IntervalPoint) -> String {
    format!(
        "[{label}] {:>6.1}s {:>10.0} ops/s  p50 {:>8}  p99 {:>8}  errors {}{}",
        p.t_s,
        p.ops_per_s,
        fmt_us(p.p50_us),
        fmt_us(p.p99_us),
        p.errors,
        if p.warmup { "  (warm-up)" } else { "" }
    )
}

pub fn summary_table(results: &[PhaseResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<10} {:<10} {:<9} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9}",
        "target",
        "workload",
        "phase",
        "ops",
        "ops/s",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "errors",
        "cli cpu"
    );
    for r in results {
        let l = &r.latency;
        let _ = writeln!(
            s,
            "{:<10} {:<10} {:<9} {:>10} {:>12.0} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8.0}%",
            truncate(&r.target, 10),
            r.workload,
            r.phase,
            r.ops,
            r.ops_per_s,
            fmt_us(l.p50_us),
            fmt_us(l.p90_us),
            fmt_us(l.p99_us),
            fmt_us(l.p999_us),
            fmt_us(l.max_us),
            r.errors,
            r.client_cpu_share * 100.0
        );
    }
    s
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

pub fn comparison_table(c: &Comparison) -> String {
    format!(
        "B/A ({} vs {}): throughput x{:.2}  p50 x{:.2}  p90 x{:.2}  p99 x{:.2}  p99.9 x{:.2}  max x{:.2}\n",
        c.b,
        c.a,
        c.throughput_ratio,
        c.p50_ratio,
        c.p90_ratio,
        c.p99_ratio,
        c.p999_ratio,
        c.max_ratio
    )
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" upper bound for an axis: 1, 2, 2.5 or 5 times a power of ten.
pub fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let exp = v.log10().floor();
    let base = 10f64.powf(exp);
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * base * (1.0 + 1e-9) {
            return m * base;
        }
    }
    10.0 * base
}

/// Two stacked panels sharing the time axis: throughput, then p50 (dashed) and p99 latency,
/// one colour per phase result. Hand-written so the bench needs no plotting crate.
pub fn render_svg(title: &str, results: &[PhaseResult]) -> String {
    let (w, h) = (900.0, 620.0);
    let (left, right) = (80.0, 20.0);
    let panels = [(50.0, 230.0), (340.0, 230.0)];
    let max_t = results
        .iter()
        .flat_map(|r| r.timeline.iter().map(|p| p.t_s))
        .fold(0.0f64, f64::max);
    let x_max = nice_ceiling(max_t.max(1.0));
    let max_ops = results
        .iter()
        .flat_map(|r| r.timeline.iter().map(|p| p.ops_per_s))
        .fold(0.0f64, f64::max);
    let ops_max = nice_ceiling(max_ops);
    let max_lat_ms = results
        .iter()
        .flat_map(|r| r.timeline.iter().map(|p| p.p99_us as f64 / 1000.0))
        .fold(0.0f64, f64::max);
    let lat_max = nice_ceiling(max_lat_ms);
    let plot_w = w - left - right;
    let x = |t: f64| left + t / x_max * plot_w;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
        w / 2.0,
        xml_escape(title)
    );
    let axes = [
        ("throughput (ops/s)", ops_max),
        ("latency (ms): p99 solid, p50 dashed", lat_max),
    ];
    for (i, ((top, height), (label, y_max))) in panels.iter().zip(axes).enumerate() {
        let bottom = top + height;
        let _ = writeln!(
            s,
            r##"<rect x="{left}" y="{top}" width="{plot_w}" height="{height}" fill="none" stroke="#888"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="{left}" y="{}" >{}</text>"#,
            top - 6.0,
            xml_escape(label)
        );
        for k in 0..=4 {
            let f = k as f64 / 4.0;
            let y = bottom - f * height;
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                left + plot_w,
                left - 4.0,
                y + 4.0,
                axis_label(f * y_max)
            );
        }
        for k in 0..=5 {
            let t = x_max * k as f64 / 5.0;
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}s</text>"#,
                x(t),
                bottom + 16.0,
                axis_label(t)
            );
        }
        for (ri, r) in results.iter().enumerate() {
            let color = COLORS[ri % COLORS.len()];
            let y_of = |v: f64| bottom - (v / y_max).min(1.0) * height;
            let series: Vec<(f64, &str)> = if i == 0 {
                vec![(0.0, "")]
            } else {
                vec![(99.0, ""), (50.0, r#" stroke-dasharray="4 3""#)]
            };
            for (which, dash) in series {
                let pts: Vec<String> = r
                    .timeline
                    .iter()
                    .map(|p| {
                        let v = if i == 0 {
                            p.ops_per_s
                        } else if which == 99.0 {
                            p.p99_us as f64 / 1000.0
                        } else {
                            p.p50_us as f64 / 1000.0
                        };
                        format!("{:.1},{:.1}", x(p.t_s), y_of(v))
                    })
                    .collect();
                if let [only] = pts.as_slice() {
                    // A one-second phase has a single point, which a polyline would not show.
                    let (cx, cy) = only.split_once(',').expect("x,y");
                    let _ = writeln!(s, r#"<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>"#);
                } else if !pts.is_empty() {
                    let _ = writeln!(
                        s,
                        r#"<polyline fill="none" stroke="{color}" stroke-width="1.5"{dash} points="{}"/>"#,
                        pts.join(" ")
                    );
                }
            }
        }
    }
    for (ri, r) in results.iter().enumerate() {
        let color = COLORS[ri % COLORS.len()];
        let y = h - 8.0;
        let xpos = left + 220.0 * ri as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{xpos}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{y}">{}</text>"#,
            y - 10.0,
            xpos + 16.0,
            xml_escape(&format!("{} {} {}", r.target, r.workload, r.phase))
        );
    }
    s.push_str("</svg>\n");
    s
}

fn axis_label(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(target: &str) -> PhaseResult {
        PhaseResult {
            target: target.into(),
            hosts: vec!["127.0.0.1:9042".into()],
            workload: "write".into(),
            phase: "run".into(),
            mode: "closed".into(),
            concurrency: 8,
            connections: 1,
            consistency: "ONE".into(),
            distribution: "uniform".into(),
            partitions: 100,
            seed: 7,
            warmup_s: 1.0,
            duration_s: 2.0,
            ops: 2000,
            reads: 0,
            writes: 2000,
            empty_reads: 0,
            errors: 0,
            dropped: 0,
            ops_per_s: 1000.0,
            latency: LatencySummary {
                count: 2000,
                mean_us: 100.0,
                p50_us: 90,
                p90_us: 150,
                p99_us: 300,
                p999_us: 900,
                max_us: 1200,
            },
            client_cpu_s: 0.5,
            client_cpu_cores: 0.25,
            client_cpu_share: 0.125,
            server_cpu_cores: None,
            timeline: (1..=3)
                .map(|i| IntervalPoint {
                    t_s: i as f64,
                    ops: 1000,
                    ops_per_s: 1000.0 * i as f64,
                    p50_us: 90,
                    p99_us: 300 * i,
                    errors: 0,
                    warmup: i == 1,
                })
                .collect(),
        }
    }

    #[test]
    fn json_has_expected_fields() {
        let file = ResultFile {
            tool: "shoal-bench",
            version: "0",
            command_line: vec!["shoal-bench".into()],
            machine_cores: 2,
            results: vec![sample("A")],
            comparison: None,
        };
        let v: serde_json::Value = serde_json::from_str(&to_json(&file)).unwrap();
        let r = &v["results"][0];
        for key in [
            "ops",
            "ops_per_s",
            "latency",
            "client_cpu_s",
            "timeline",
            "workload",
            "phase",
        ] {
            assert!(!r[key].is_null(), "missing {key}");
        }
        for key in ["p50_us", "p90_us", "p99_us", "p999_us", "max_us"] {
            assert!(r["latency"][key].is_u64(), "missing latency.{key}");
        }
        assert_eq!(r["timeline"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn comparison_ratios() {
        let a = sample("A");
        let mut b = sample("B");
        b.ops_per_s = 2000.0;
        b.latency.p99_us = 150;
        let c = compare(&a, &b);
        assert_eq!(c.throughput_ratio, 2.0);
        assert_eq!(c.p99_ratio, 0.5);
        assert_eq!(c.p50_ratio, 1.0);
        assert!(comparison_table(&c).contains("throughput x2.00"));
    }

    /// Checks that every element opened is closed in order (enough to catch broken output
    /// without an XML parser dependency).
    fn assert_well_formed(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("unterminated tag") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "nested '<' in {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.trim()),
                    "mismatched close"
                );
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap().to_string();
                stack.push(name);
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
    }

    #[test]
    fn svg_is_well_formed_and_plots_every_series() {
        let svg = render_svg("t <&> \"x\"", &[sample("A"), sample("B")]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_well_formed(&svg);
        // Throughput + p99 + p50 per result.
        assert_eq!(svg.matches("<polyline").count(), 6);
        assert!(svg.contains("t &lt;&amp;&gt; &quot;x&quot;"));
    }

    #[test]
    fn svg_marks_single_point_phases() {
        let mut r = sample("A");
        r.timeline.truncate(1);
        let svg = render_svg("one", &[r]);
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<circle").count(), 3);
    }

    #[test]
    fn svg_with_no_data_is_still_valid() {
        let svg = render_svg("empty", &[]);
        assert_well_formed(&svg);
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(nice_ceiling(4500.0), 5000.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(nice_ceiling(21.0), 25.0);
    }

    #[test]
    fn table_lists_each_result() {
        let t = summary_table(&[sample("A"), sample("B")]);
        assert_eq!(t.lines().count(), 3);
        assert!(t.contains("300µs"));
        assert_eq!(fmt_us(1500), "1.50ms");
        assert_eq!(fmt_us(25_000), "25.0ms");
    }
}
