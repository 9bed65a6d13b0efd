//! What the view shows and what each key does, apart from any terminal.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tachyon_top::{RingReport, Snapshot};

/// The columns the table can be sorted by, in the order `s` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortKey {
    Label,
    Fill,
    Rate,
    State,
    Alarms,
}

impl SortKey {
    pub(crate) fn name(self) -> &'static str {
        match self {
            SortKey::Label => "label",
            SortKey::Fill => "fill",
            SortKey::Rate => "MB/s",
            SortKey::State => "state",
            SortKey::Alarms => "alarms",
        }
    }

    fn next(self) -> SortKey {
        match self {
            SortKey::Label => SortKey::Fill,
            SortKey::Fill => SortKey::Rate,
            SortKey::Rate => SortKey::State,
            SortKey::State => SortKey::Alarms,
            SortKey::Alarms => SortKey::Label,
        }
    }
}

/// After a key: go on, or quit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Continue,
    Quit,
}

/// The view's state.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) snapshot: Option<Snapshot>,
    pub(crate) sort: SortKey,
    pub(crate) descending: bool,
    pub(crate) filter: String,
    /// The filter is being typed.
    pub(crate) editing: bool,
    pub(crate) detail: bool,
    /// The selected ring's id.
    pub(crate) selected: Option<String>,
    interval: Duration,
}

const INTERVALS: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

impl App {
    pub(crate) fn new(interval: Duration) -> App {
        App {
            snapshot: None,
            sort: SortKey::Label,
            descending: false,
            filter: String::new(),
            editing: false,
            detail: false,
            selected: None,
            interval,
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    pub(crate) fn update(&mut self, snapshot: Snapshot) {
        self.snapshot = Some(snapshot);
        let rows = self.rows();
        let still_there = self
            .selected
            .as_ref()
            .is_some_and(|id| rows.iter().any(|r| &r.id == id));
        if !still_there {
            self.selected = rows.first().map(|r| r.id.clone());
        }
    }

    /// The rings shown, filtered and sorted.
    pub(crate) fn rows(&self) -> Vec<&RingReport> {
        let Some(snapshot) = &self.snapshot else {
            return Vec::new();
        };
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<&RingReport> = snapshot
            .rings
            .iter()
            .filter(|ring| needle.is_empty() || matches_filter(ring, &needle))
            .collect();
        let rate = |r: &RingReport| r.ring.as_ref().and_then(|s| s.bytes_per_s).unwrap_or(-1.0);
        let fill = |r: &RingReport| r.ring.as_ref().map_or(-1.0, |s| s.fill_ratio);
        rows.sort_by(|a, b| {
            let order = match self.sort {
                SortKey::Label => a.label.cmp(&b.label),
                SortKey::Fill => fill(a).total_cmp(&fill(b)),
                SortKey::Rate => rate(a).total_cmp(&rate(b)),
                SortKey::State => state_of(a).cmp(state_of(b)),
                SortKey::Alarms => a.alarms.len().cmp(&b.alarms.len()),
            };
            let order = order.then_with(|| a.id.cmp(&b.id));
            if self.descending {
                order.reverse()
            } else {
                order
            }
        });
        rows
    }

    /// Index of the selected ring among [`rows`](App::rows).
    pub(crate) fn selected_index(&self, rows: &[&RingReport]) -> Option<usize> {
        let id = self.selected.as_ref()?;
        rows.iter().position(|r| &r.id == id)
    }

    pub(crate) fn key(&mut self, key: KeyEvent) -> Step {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Step::Quit;
        }
        if self.editing {
            match key.code {
                KeyCode::Enter => self.editing = false,
                KeyCode::Esc => {
                    self.editing = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            self.keep_selection_visible();
            return Step::Continue;
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Step::Quit,
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::Char('s') => self.sort = self.sort.next(),
            KeyCode::Char('r') => self.descending = !self.descending,
            KeyCode::Char('/') => self.editing = true,
            KeyCode::Enter | KeyCode::Char('d') => self.detail = !self.detail,
            KeyCode::Char('+') => self.change_interval(1),
            KeyCode::Char('-') => self.change_interval(-1),
            _ => {}
        }
        Step::Continue
    }

    fn move_selection(&mut self, by: isize) {
        let rows = self.rows();
        if rows.is_empty() {
            return;
        }
        let at = self.selected_index(&rows).unwrap_or(0) as isize;
        let to = (at + by).clamp(0, rows.len() as isize - 1) as usize;
        self.selected = Some(rows[to].id.clone());
    }

    fn keep_selection_visible(&mut self) {
        let rows = self.rows();
        if self.selected_index(&rows).is_none() {
            self.selected = rows.first().map(|r| r.id.clone());
        }
    }

    fn change_interval(&mut self, by: isize) {
        let at = INTERVALS
            .iter()
            .position(|i| *i >= self.interval)
            .unwrap_or(INTERVALS.len() - 1) as isize;
        self.interval = INTERVALS[(at + by).clamp(0, INTERVALS.len() as isize - 1) as usize];
    }
}

fn state_of(ring: &RingReport) -> &str {
    ring.ring.as_ref().map_or("error", |s| s.state)
}

fn matches_filter(ring: &RingReport, needle: &str) -> bool {
    ring.label.to_lowercase().contains(needle)
        || ring
            .processes
            .iter()
            .any(|p| p.pid.to_string() == needle || p.comm.to_lowercase().contains(needle))
}
