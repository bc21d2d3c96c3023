//! Helpers shared by the services: ports, processes, logs, names, polling.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rand::Rng as _;

/// How often [`eventually`] polls.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The least time one call of the check in [`eventually`] may take.
const CHECK_MIN_TIME: Duration = Duration::from_secs(1);

/// Characters of the random part of [`random_name`].
const NAME_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Length of the random part of [`random_name`].
const NAME_RANDOM_LEN: usize = 10;

/// Longest prefix [`random_name`] accepts: PostgreSQL truncates identifiers
/// at 63 bytes, and the random suffix takes 11.
const NAME_MAX_PREFIX: usize = 63 - 1 - NAME_RANDOM_LEN;

/// A unique name: `prefix` + `_` + 10 random lowercase letters and digits.
///
/// The result is a valid PostgreSQL database name (even unquoted, when the
/// prefix is lowercase) and a valid Kafka topic name.
///
/// # Panics
///
/// When `prefix` is empty, longer than 52 bytes, or holds anything but ASCII
/// letters, digits and `_`: such a prefix would not give a name valid
/// everywhere.
pub fn random_name(prefix: &str) -> String {
    assert!(
        !prefix.is_empty()
            && prefix.len() <= NAME_MAX_PREFIX
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "random_name: prefix {prefix:?} must be 1..={NAME_MAX_PREFIX} ASCII letters, digits or `_`"
    );
    let mut rng = rand::rng();
    let mut name = String::with_capacity(prefix.len() + 1 + NAME_RANDOM_LEN);
    name.push_str(prefix);
    name.push('_');
    for _ in 0..NAME_RANDOM_LEN {
        name.push(char::from(
            NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())],
        ));
    }
    name
}

/// Polls `check` every 20 ms until it returns `Some(T)`, and returns that
/// value.
///
/// `check` runs at least once, and once more at or after the deadline, so a
/// condition that became true just in time is not missed. A single call of
/// `check` that hangs counts against the timeout too (each call may run
/// until the deadline, and at least one second).
///
/// Time is tokio's, so this works under a paused test clock as well.
///
/// # Panics
///
/// When `timeout` passes without `check` returning `Some`; the message names
/// `what` (phrase it as what is awaited: "the projector to store 3 events").
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    loop {
        let now = tokio::time::Instant::now();
        let last = now >= deadline;
        let check_deadline = deadline.max(now + CHECK_MIN_TIME);
        match tokio::time::timeout_at(check_deadline, check()).await {
            Ok(Some(value)) => return value,
            Ok(None) if !last => {}
            Ok(None) => panic!("timed out after {:?} waiting for {what}", started.elapsed()),
            Err(_) => panic!(
                "timed out after {:?} waiting for {what} (the last check had not finished)",
                started.elapsed()
            ),
        }
        let now = tokio::time::Instant::now();
        tokio::time::sleep(POLL_INTERVAL.min(deadline.saturating_duration_since(now))).await;
    }
}

/// A port on 127.0.0.1 that was free a moment ago: bound to port 0, read and
/// released. Another process may take it before it is used; starters retry
/// with a fresh port when binding fails.
///
/// # Errors
///
/// When binding 127.0.0.1:0 fails.
pub fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).context("binding 127.0.0.1:0 to find a free port")?;
    Ok(listener
        .local_addr()
        .context("reading the port bound to 127.0.0.1:0")?
        .port())
}

/// Whether this process runs as root (uid 0), from `id -u`.
pub(crate) fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|out| {
                out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "0"
            })
    })
}

/// Quotes `s` for a POSIX shell.
pub(crate) fn shell_quote(s: impl AsRef<OsStr>) -> String {
    let s = s.as_ref().to_string_lossy();
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The last lines of a log file (at most 60 lines and 8 KiB), for error
/// messages.
pub(crate) fn log_tail(path: &Path) -> String {
    const MAX_BYTES: usize = 8 * 1024;
    const MAX_LINES: usize = 60;
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(MAX_BYTES);
            let text = String::from_utf8_lossy(&bytes[start..]);
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(MAX_LINES)..].join("\n");
            if tail.trim().is_empty() {
                format!("(log {} is empty)", path.display())
            } else {
                format!("last lines of {}:\n{tail}", path.display())
            }
        }
        Err(err) => format!("(could not read log {}: {err})", path.display()),
    }
}

/// Runs `cmd` to completion with null stdin and captured output; an error
/// names `what` and holds the exit status, stdout and stderr.
pub(crate) fn run(cmd: &mut Command, what: &str) -> anyhow::Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{what}: could not run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{what}: {cmd:?} failed ({}){}",
            out.status,
            describe_output(&out)
        );
    }
    Ok(out)
}

/// Stdout and stderr of a finished command, for error messages.
fn describe_output(out: &Output) -> String {
    let mut text = String::new();
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let s = String::from_utf8_lossy(bytes);
        if !s.trim().is_empty() {
            let _ = write!(text, "\n{name}:\n{}", s.trim_end());
        }
    }
    text
}

/// Starts a watchdog: a detached shell that runs `script` (a POSIX shell
/// loop that waits for this process to exit, then cleans up).
///
/// The watchdog is double-forked (the shell we start backgrounds a subshell
/// and exits at once), so it is re-parented away from this process and never
/// left as a zombie; it runs in its own process group, with stdin, stdout and
/// stderr null, so a Ctrl-C at the terminal does not kill it before it has
/// cleaned up.
pub(crate) fn spawn_watchdog(script: &str) -> anyhow::Result<()> {
    let wrapper = format!("( {script} ) </dev/null >/dev/null 2>&1 &");
    let status = Command::new("sh")
        .arg("-c")
        .arg(&wrapper)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .status()
        .context("starting a watchdog shell (sh)")?;
    if !status.success() {
        bail!("the watchdog shell failed ({status}): {wrapper}");
    }
    Ok(())
}

/// Makes sure process `pid` (a child this process started) does not
/// outlive this process: a watchdog shell kills it with SIGKILL once this
/// process has exited, however it exits (even by SIGKILL). The watchdog
/// ends by itself, doing nothing, when `pid` exits first.
///
/// # Errors
///
/// When the watchdog shell cannot start.
pub fn kill_when_parent_exits(pid: u32) -> anyhow::Result<()> {
    let parent = std::process::id();
    let script = format!(
        "cd /; \
         while kill -0 {parent} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         if kill -0 {pid} 2>/dev/null; then kill -9 {pid} 2>/dev/null; fi"
    );
    spawn_watchdog(&script)
}

/// A polling deadline for readiness loops.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    end: Instant,
}

impl Deadline {
    /// A deadline `timeout` from now.
    pub(crate) fn after(timeout: Duration) -> Self {
        Self {
            end: Instant::now() + timeout,
        }
    }

    /// Whether the deadline has passed.
    pub(crate) fn passed(self) -> bool {
        Instant::now() >= self.end
    }

    /// Time left, at least zero.
    pub(crate) fn remaining(self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }
}
