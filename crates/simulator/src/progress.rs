//! Progress of long-running commands (`simulate`, and `panorama replay`,
//! which shares it): one line rewritten in place on a terminal, otherwise a
//! log line now and then, so a log file is not flooded.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

/// Where progress goes: a terminal line or periodic log lines.
#[derive(Debug)]
pub struct Progress {
    terminal: bool,
    started: Instant,
    log_every: Duration,
    last_log: Option<Instant>,
}

impl Progress {
    /// Progress on stderr when it is a terminal; otherwise the caller logs
    /// at most once per `log_every`.
    pub fn new(log_every: Duration) -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            log_every,
            last_log: None,
        }
    }

    /// Rewrites the terminal line with `line`. Without a terminal, returns
    /// true when a log line is due: the caller logs it with its own fields.
    pub fn show(&mut self, line: &str) -> bool {
        if self.terminal {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K{line}");
            let _ = stderr.flush();
            return false;
        }
        let now = Instant::now();
        let due = self
            .last_log
            .is_none_or(|last| now.duration_since(last) >= self.log_every);
        if due {
            self.last_log = Some(now);
        }
        due
    }

    /// Ends the terminal line, so what is logged next starts on its own.
    pub fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }

    /// Time since the progress started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// A smoothed rate of a growing count, so figures do not jump with every
/// batch.
#[derive(Debug, Default)]
pub struct Rate {
    /// (when, count) of the previous sample.
    previous: Option<(Instant, i64)>,
    per_second: f64,
}

impl Rate {
    /// Takes a sample of the count and returns the smoothed rate per second.
    pub fn sample(&mut self, count: i64) -> f64 {
        let now = Instant::now();
        if let Some((then, before)) = self.previous {
            let seconds = now.duration_since(then).as_secs_f64();
            if seconds > 0.0 {
                let sample = (count - before).max(0) as f64 / seconds;
                self.per_second = if self.per_second == 0.0 {
                    sample
                } else {
                    0.7 * self.per_second + 0.3 * sample
                };
            }
        }
        self.previous = Some((now, count));
        self.per_second
    }
}
