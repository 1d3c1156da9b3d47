//! A progress bar on standard error (indicatif) with rate and time left; a line every few
//! seconds when standard error is not a terminal.

use indicatif::{HumanCount, HumanDuration, ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};

/// How often a line is written when standard error is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(2);

const TEMPLATE: &str = "{msg} [{bar:30}] {percent:>3}% {pos}/{len} events, {per_sec:0}, {eta} left";

/// Progress of work measured in events.
pub struct Bar {
    bar: ProgressBar,
    from: u64,
    /// When the last line was written; indicatif draws nothing off a terminal, so logs get
    /// lines of ours.
    last_line: Option<Instant>,
}

impl Bar {
    /// A bar for work starting at position `from`.
    pub fn new(label: impl Into<String>, from: u64) -> Self {
        let style = ProgressStyle::with_template(TEMPLATE)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("#.");
        let bar = ProgressBar::new(from)
            .with_style(style)
            .with_message(label.into())
            .with_position(from);
        // Time left is estimated from the events done here, not from those before `from`.
        bar.reset_eta();
        Self {
            bar,
            from,
            last_line: None,
        }
    }

    /// Events per second so far.
    pub fn rate(&self, at: u64) -> f64 {
        let secs = self.bar.elapsed().as_secs_f64().max(1e-6);
        at.saturating_sub(self.from) as f64 / secs
    }

    /// Shows `at` of `total`.
    pub fn update(&mut self, at: u64, total: u64) {
        self.bar.set_length(total.max(at));
        self.bar.set_position(at);
        if self.bar.is_hidden() && self.last_line.is_none_or(|l| l.elapsed() >= LINE_EVERY) {
            self.line(at);
        }
    }

    fn line(&mut self, at: u64) {
        self.last_line = Some(Instant::now());
        let total = self.bar.length().unwrap_or(at).max(at).max(1);
        eprintln!(
            "{} {:>3.0}% {at}/{total} events, {}/s, {:#} left",
            self.bar.message(),
            at as f64 * 100.0 / total as f64,
            HumanCount(self.rate(at) as u64),
            HumanDuration(self.bar.eta()),
        );
    }

    /// Draws the final state and ends the line.
    pub fn finish(&mut self, at: u64, total: u64) {
        self.bar.set_length(total.max(at));
        self.bar.set_position(at);
        self.bar.finish();
        if self.bar.is_hidden() {
            self.line(at);
        }
    }
}
