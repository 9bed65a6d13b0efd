//! The PNG: cross-process streaming throughput against payload size, ours and theirs.
//!
//! Bitmap backend; text through `ab_glyph` with DejaVu Sans from the `dejavu` crate, so no
//! system font, fontconfig or freetype is needed.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::{Result, size_label};

const OURS: RGBColor = RGBColor(31, 119, 180);
const THEIRS: RGBColor = RGBColor(214, 39, 40);
const MEMCPY: RGBColor = RGBColor(90, 90, 90);

fn register_fonts() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        for (style, bytes) in [
            (FontStyle::Normal, dejavu::sans::regular()),
            (FontStyle::Bold, dejavu::sans::bold()),
        ] {
            if plotters::style::register_font("sans-serif", style, bytes).is_err() {
                result = Err("cannot load the DejaVu Sans font".into());
            }
        }
    });
    result
}

/// One point per payload size: (size, ours msg/s, theirs msg/s; NaN when not measured).
pub type Series = [(usize, f64, f64)];

/// Draws `series` into `path` (PNG, 1200×520): messages per second (log scale) on the left,
/// bytes per second on the right with the memcpy bandwidth at 64 KiB when measured.
pub fn streaming_png(path: &Path, series: &Series, memcpy: Option<f64>, note: &str) -> Result<()> {
    register_fonts()?;
    if series.is_empty() {
        return Err("no streaming results to plot".into());
    }
    let root = BitMapBackend::new(path, (1200, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "Cross-process streaming throughput by payload size",
        ("sans-serif", 24).into_font().style(FontStyle::Bold),
    )?;
    let (body, footer) = root.split_vertically(490);
    footer.draw(&Text::new(
        note.to_string(),
        (20, 5),
        ("sans-serif", 14).into_font().color(&MEMCPY),
    ))?;
    let (left, right) = body.split_horizontally(600);
    let last = series.len() as f64 - 0.5;
    let label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < series.len() {
            size_label(series[i as usize].0)
        } else {
            String::new()
        }
    };
    let points = |pick: fn(&(usize, f64, f64)) -> f64| -> Vec<(f64, f64)> {
        series
            .iter()
            .enumerate()
            .map(|(i, point)| (i as f64, pick(point)))
            .filter(|(_, v)| v.is_finite() && *v > 0.0)
            .collect()
    };

    // Left: messages per second, log scale.
    let ours = points(|p| p.1);
    let theirs = points(|p| p.2);
    let all: Vec<f64> = ours.iter().chain(&theirs).map(|p| p.1).collect();
    let low = all.iter().copied().fold(f64::INFINITY, f64::min) / 2.0;
    let high = all.iter().copied().fold(0.0, f64::max) * 2.0;
    let mut chart = ChartBuilder::on(&left)
        .margin(20)
        .caption("messages per second (log scale)", ("sans-serif", 18))
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(-0.5f64..last, (low..high).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(series.len())
        .x_label_formatter(&label)
        .y_labels(12)
        .y_label_formatter(&|v| {
            if *v >= 1e6 {
                format!("{:.0} M", v / 1e6)
            } else {
                format!("{:.0} k", v / 1e3)
            }
        })
        .x_desc("payload")
        .label_style(("sans-serif", 14))
        .draw()?;
    draw_line(&mut chart, &ours, OURS, "tachyon-ring (ours)")?;
    draw_line(
        &mut chart,
        &theirs,
        THEIRS,
        "tachyon-ipc 0.5.1 (theirs, C++)",
    )?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .label_font(("sans-serif", 14))
        .draw()?;

    // Right: bytes per second.
    let bandwidth = |points: &[(f64, f64)]| -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|&(x, rate)| (x, rate * series[x as usize].0 as f64 / 1e9))
            .collect()
    };
    let ours_bw = bandwidth(&ours);
    let theirs_bw = bandwidth(&theirs);
    let top = ours_bw
        .iter()
        .chain(&theirs_bw)
        .map(|p| p.1)
        .chain(memcpy.map(|m| m / 1e9))
        .fold(0.0, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(&right)
        .margin(20)
        .caption("GB/s (payload bytes)", ("sans-serif", 18))
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..last, 0.0..top.max(0.1))?;
    chart
        .configure_mesh()
        .x_labels(series.len())
        .x_label_formatter(&label)
        .y_label_formatter(&|v| format!("{v:.1}"))
        .x_desc("payload")
        .label_style(("sans-serif", 14))
        .draw()?;
    draw_line(&mut chart, &ours_bw, OURS, "tachyon-ring (ours)")?;
    draw_line(
        &mut chart,
        &theirs_bw,
        THEIRS,
        "tachyon-ipc 0.5.1 (theirs, C++)",
    )?;
    if let Some(memcpy) = memcpy.filter(|m| m.is_finite()) {
        let at = (series.len() - 1) as f64;
        let y = memcpy / 1e9;
        chart
            .draw_series(std::iter::once(Cross::new(
                (at, y),
                7,
                MEMCPY.stroke_width(2),
            )))?
            .label("plain memcpy, 64 KiB blocks")
            .legend(|(x, y)| Cross::new((x + 10, y), 5, MEMCPY.stroke_width(2)));
        chart.draw_series(std::iter::once(Text::new(
            format!("memcpy {y:.1}"),
            (at - 0.75, y * 1.04),
            ("sans-serif", 14).into_font().color(&MEMCPY),
        )))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

fn draw_line<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    points: &[(f64, f64)],
    color: RGBColor,
    name: &str,
) -> Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
    DB::ErrorType: 'static,
{
    if points.is_empty() {
        return Ok(());
    }
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(3),
        ))
        .map_err(|e| e.to_string())?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
    chart
        .draw_series(
            points
                .iter()
                .map(|&point| Circle::new(point, 5, color.filled())),
        )
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_png_without_system_fonts() {
        let path = std::env::temp_dir().join(format!("tachyon-plot-{}.png", std::process::id()));
        let series = [
            (0, 20e6, 15e6),
            (32, 18e6, 12e6),
            (1024, 5e6, f64::NAN),
            (65536, 1e5, 9e4),
        ];
        streaming_png(&path, &series, Some(9e9), "test").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }
}
