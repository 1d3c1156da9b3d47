//! A progress bar on standard error with rate and time left; a line every few seconds when
//! standard error is not a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Progress of work measured in events.
pub struct Bar {
    label: String,
    started: Instant,
    from: u64,
    last: Option<Instant>,
    tty: bool,
}

impl Bar {
    /// A bar for work starting at position `from`.
    pub fn new(label: impl Into<String>, from: u64) -> Self {
        Self {
            label: label.into(),
            started: Instant::now(),
            from,
            last: None,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Events per second so far.
    pub fn rate(&self, at: u64) -> f64 {
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        at.saturating_sub(self.from) as f64 / secs
    }

    /// Shows `at` of `total`.
    pub fn update(&mut self, at: u64, total: u64) {
        let every = if self.tty {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(2)
        };
        if self.last.is_some_and(|l| l.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        self.draw(at, total);
    }

    fn draw(&self, at: u64, total: u64) {
        let total = total.max(at).max(1);
        let share = at as f64 / total as f64;
        let filled = (share * 30.0) as usize;
        let rate = self.rate(at);
        let left = if rate > 0.0 {
            (total - at) as f64 / rate
        } else {
            0.0
        };
        let line = format!(
            "{} [{}{}] {:>3.0}% {}/{} events, {:.0}/s, {}:{:02} left",
            self.label,
            "#".repeat(filled),
            ".".repeat(30 - filled),
            share * 100.0,
            at,
            total,
            rate,
            (left as u64) / 60,
            (left as u64) % 60
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r{line}\x1b[K");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Draws the final state and ends the line.
    pub fn finish(&self, at: u64, total: u64) {
        self.draw(at, total);
        if self.tty {
            eprintln!();
        }
    }
}
