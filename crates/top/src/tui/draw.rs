//! One frame: the header line, the table of rings, the detail pane and the keys line.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table, TableState};
use tachyon_top::{End, RingReport};

use super::app::App;

pub(crate) fn frame(frame: &mut Frame<'_>, app: &mut App) {
    let detail_height = if app.detail { 14 } else { 0 };
    let [header, table, detail, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(detail_height),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(header_line(app)), header);
    draw_table(frame, app, table);
    if app.detail {
        draw_detail(frame, app, detail);
    }
    frame.render_widget(Paragraph::new(keys_line(app)), keys);
}

fn header_line(app: &App) -> Line<'static> {
    let rows = app.rows();
    let (rings, uninspectable) = app
        .snapshot
        .as_ref()
        .map_or((0, 0), |s| (s.rings.len(), s.uninspectable.len()));
    let alarms: usize = rows.iter().map(|r| r.alarms.len()).sum();
    let mut spans = vec![
        Span::styled("tachyon-top", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "  rings {}/{rings}  alarms {alarms}  every {:.2} s  sort {} {}",
            rows.len(),
            app.interval().as_secs_f64(),
            app.sort.name(),
            if app.descending { "desc" } else { "asc" }
        )),
    ];
    if !app.filter.is_empty() || app.editing {
        spans.push(Span::raw(format!(
            "  filter: {}{}",
            app.filter,
            if app.editing { "_" } else { "" }
        )));
    }
    if uninspectable > 0 {
        spans.push(Span::styled(
            format!("  {uninspectable} processes not inspectable (run as root)"),
            Style::new().fg(Color::Yellow),
        ));
    }
    Line::from(spans)
}

fn keys_line(app: &App) -> Line<'static> {
    let text = if app.editing {
        "type to filter by label, comm or pid   enter keep   esc clear"
    } else {
        "q quit   ↑↓/jk select   s sort   r reverse   / filter   enter detail   +/- interval"
    };
    Line::styled(text, Style::new().add_modifier(Modifier::REVERSED))
}

fn draw_table(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let rows = app.rows();
    let header = Row::new([
        "LABEL",
        "KIND",
        "STATE",
        "CAP",
        "FILL",
        "FILL%",
        "MB/s",
        "MSG/s",
        "CONSUMER",
        "PIDS",
        "ALARMS / ERROR",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    let body: Vec<Row> = rows.iter().map(|ring| table_row(ring)).collect();
    let widths = [
        Constraint::Fill(3),
        Constraint::Length(12),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(17),
        Constraint::Length(14),
        Constraint::Fill(2),
    ];
    let table = Table::new(body, widths)
        .header(header)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(Block::new().borders(Borders::TOP));
    let mut state = TableState::new().with_selected(app.selected_index(&rows));
    frame.render_stateful_widget(table, area, &mut state);
    if rows.is_empty() {
        let message = if app.snapshot.as_ref().is_some_and(|s| !s.rings.is_empty()) {
            "no ring matches the filter"
        } else {
            "no tachyon ring found on this machine"
        };
        let inner = Rect {
            y: area.y + 2,
            height: 1,
            ..area
        };
        frame.render_widget(Paragraph::new(message), inner);
    }
}

fn table_row(ring: &RingReport) -> Row<'static> {
    let pids = ring
        .processes
        .iter()
        .map(|p| p.pid.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let alarms = ring
        .alarms
        .iter()
        .map(|a| a.kind.name())
        .collect::<Vec<_>>()
        .join(",");
    let style = if ring.alarms.is_empty() && ring.error.is_none() {
        Style::new()
    } else {
        Style::new().fg(Color::Red)
    };
    let Some(state) = &ring.ring else {
        let error = ring.error.clone().unwrap_or_default();
        return Row::new(vec![
            Cell::from(ring.label.clone()),
            Cell::from(ring.kind.name()),
            Cell::from("error"),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(pids),
            Cell::from(error),
        ])
        .style(style);
    };
    let msgs = state
        .peek
        .as_ref()
        .and_then(|p| p.msgs_per_s)
        .map_or("-".to_string(), count);
    let consumer = format!(
        "{}{}",
        state.consumer.state,
        if state.consumer.implementation == "tachyon-ring" {
            " (ours)"
        } else {
            ""
        }
    );
    Row::new(vec![
        Cell::from(ring.label.clone()),
        Cell::from(ring.kind.name()),
        Cell::from(state.state),
        Cell::from(bytes(state.capacity)),
        Cell::from(bytes(state.fill_bytes)),
        Cell::from(format!("{:.0}%", state.fill_ratio * 100.0)),
        Cell::from(
            state
                .bytes_per_s
                .map_or("-".to_string(), |b| format!("{:.2}", b / 1e6)),
        ),
        Cell::from(msgs),
        Cell::from(consumer),
        Cell::from(pids),
        Cell::from(alarms),
    ])
    .style(style)
}

fn draw_detail(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let rows = app.rows();
    let Some(ring) = app.selected_index(&rows).map(|i| rows[i]) else {
        frame.render_widget(
            Paragraph::new("no ring selected").block(Block::bordered().title(" detail ")),
            area,
        );
        return;
    };
    let block = Block::bordered().title(format!(" {} ({}) ", ring.label, ring.id));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [text_area, spark_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(4)]).areas(inner);
    let mut lines: Vec<Line> = Vec::new();
    for process in &ring.processes {
        lines.push(Line::raw(format!(
            "pid {:<8} {:<9} uid {:<6} {:<16} via {:<7} {}",
            process.pid,
            match process.end {
                End::Unknown => "end ?",
                end => end.name(),
            },
            process.uid.map_or("?".into(), |u| u.to_string()),
            process.comm,
            process.found_by.join("+"),
            process.cmdline.join(" ")
        )));
    }
    if let Some(state) = &ring.ring {
        lines.push(Line::raw(format!(
            "head {}  tail {}  consumer {} (word {}, features {:#x}: {})  full for {:.1} s  tail still {:.1} s",
            state.head,
            state.tail,
            state.consumer.state,
            state.consumer.sleeping_word,
            state.consumer.features,
            state.consumer.implementation,
            state.time_full_s,
            state.tail_still_s
        )));
        if let Some(peek) = &state.peek {
            let types: Vec<String> = peek
                .type_counts
                .iter()
                .take(8)
                .map(|(t, n)| format!("{t}:{n}"))
                .collect();
            lines.push(Line::raw(format!(
                "peek: {} pending, {} walked, mean slot {}, types {}{}",
                peek.pending_messages,
                peek.walked_messages,
                peek.mean_slot_bytes
                    .map_or("-".into(), |m| format!("{m:.0} B")),
                types.join(" "),
                peek.error
                    .as_ref()
                    .map_or(String::new(), |e| format!("  error: {e}"))
            )));
        }
    }
    if let Some(pair) = &ring.pair {
        lines.push(Line::raw(format!(
            "paired with {pair} (the other ring of the RPC bus)"
        )));
    }
    if let Some(error) = &ring.error {
        lines.push(Line::styled(
            format!("error: {error}"),
            Style::new().fg(Color::Red),
        ));
    }
    for alarm in &ring.alarms {
        lines.push(Line::styled(
            format!("{}: {}", alarm.kind.name(), alarm.message),
            Style::new().fg(Color::Red),
        ));
    }
    frame.render_widget(Paragraph::new(lines), text_area);
    let width = spark_area.width as usize;
    let data: Vec<u64> = ring
        .history
        .iter()
        .skip(ring.history.len().saturating_sub(width))
        .copied()
        .collect();
    let peak = data.iter().max().copied().unwrap_or(0);
    frame.render_widget(
        Sparkline::default()
            .block(Block::new().title(format!("published bytes/s (peak {})", bytes(peak))))
            .data(&data),
        spark_area,
    );
}

/// Bytes with a binary unit.
fn bytes(value: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut scaled = value as f64;
    let mut unit = 0;
    while scaled >= 1024.0 && unit < UNITS.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{scaled:.1} {}", UNITS[unit])
    }
}

/// A count per second, with k/M.
fn count(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}
