//! CPU time and peak memory of processes, read from /proc: `utime` +
//! `stime` of `/proc/PID/stat`, `VmHWM` of `/proc/PID/status`.

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;
use std::time::Instant;

/// The fields of `/proc/PID/stat` the benchmark reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// The parent's pid.
    pub(crate) ppid: u32,
    /// CPU time in user mode, clock ticks.
    pub(crate) utime: u64,
    /// CPU time in kernel mode, clock ticks.
    pub(crate) stime: u64,
    /// CPU time of children that exited and were waited for, clock ticks.
    pub(crate) children: u64,
}

impl Stat {
    /// The process's own CPU time, clock ticks.
    pub(crate) fn own(&self) -> u64 {
        self.utime + self.stime
    }
}

/// Parses one `/proc/PID/stat` line. The command name sits in parentheses
/// and may itself hold spaces and parentheses, so fields are counted from
/// the last `)`.
pub(crate) fn parse_stat(line: &str) -> Option<Stat> {
    let (_, rest) = line.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(Stat {
        ppid: u32::try_from(field(4)?).ok()?,
        utime: field(14)?,
        stime: field(15)?,
        children: field(16)? + field(17)?,
    })
}

/// `VmHWM` (peak resident set) of a `/proc/PID/status` text, in kB.
pub(crate) fn parse_vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

/// The stat of a running process.
pub(crate) fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Peak resident set of a running process, in kB.
pub(crate) fn peak_rss_kb(pid: u32) -> Option<u64> {
    parse_vm_hwm_kb(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// Every running process, with its stat.
fn all() -> Vec<(u32, Stat)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .collect()
}

/// CPU ticks of a process tree one level deep, as PostgreSQL's is: the
/// postmaster's own time, its exited children's (backends that ended were
/// waited for by it) and its running children's own time.
pub(crate) fn tree_ticks(parent: u32) -> Option<u64> {
    let root = stat(parent)?;
    let running: u64 = all()
        .iter()
        .filter(|(_, stat)| stat.ppid == parent)
        .map(|(_, stat)| stat.own())
        .sum();
    Some(root.own() + root.children + running)
}

/// The pid of the running process whose program's file name is `program`
/// and whose command line holds `needle`.
pub(crate) fn find_process(program: &str, needle: &str) -> Option<u32> {
    let entries = fs::read_dir("/proc").ok()?;
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let words: Vec<String> = raw
                .split(|byte| *byte == 0)
                .map(|word| String::from_utf8_lossy(word).into_owned())
                .collect();
            let named = words
                .first()
                .is_some_and(|first| first.rsplit('/').next() == Some(program));
            named && words.iter().any(|word| word.contains(needle))
        })
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when unknown).
pub(crate) fn ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// What to measure: a name and how to find its ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    /// One process (all its threads).
    Process(u32),
    /// A postmaster and its backends.
    Tree(u32),
}

impl Probe {
    fn ticks(&self) -> Option<u64> {
        match self {
            Probe::Process(pid) => stat(*pid).map(|stat| stat.own()),
            Probe::Tree(pid) => tree_ticks(*pid),
        }
    }
}

/// CPU ticks of named processes at one moment.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// When it was taken.
    pub(crate) at: Instant,
    /// Ticks by process name.
    pub(crate) ticks: BTreeMap<String, u64>,
}

impl Snapshot {
    /// Reads the ticks of every probe that is running now.
    pub(crate) fn take(probes: &[(String, Probe)]) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            ticks: probes
                .iter()
                .filter_map(|(name, probe)| Some((name.clone(), probe.ticks()?)))
                .collect(),
        }
    }

    /// CPU seconds each process used from `earlier` to this one; a process
    /// started in between counts from zero.
    pub(crate) fn cpu_seconds_since(&self, earlier: &Snapshot, hz: u64) -> BTreeMap<String, f64> {
        self.ticks
            .iter()
            .map(|(name, ticks)| {
                let before = earlier.ticks.get(name).copied().unwrap_or(0);
                (
                    name.clone(),
                    ticks.saturating_sub(before) as f64 / hz.max(1) as f64,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "4242 (tokio (worker) 1) S 17 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 75 12 3 20 0 9 0 12345 1000000 500 18446744073709551615";
        let stat = parse_stat(line).expect("parses");
        assert_eq!(stat.ppid, 17);
        assert_eq!((stat.utime, stat.stime), (250, 75));
        assert_eq!(stat.children, 15);
        assert_eq!(stat.own(), 325);
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S"), None);
    }

    #[test]
    fn peak_rss_is_read_from_vm_hwm() {
        let status =
            "Name:\tpanorama\nVmPeak:\t  900000 kB\nVmHWM:\t   41236 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(parse_vm_hwm_kb(status), Some(41_236));
        assert_eq!(parse_vm_hwm_kb("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_is_measured() {
        let me = std::process::id();
        assert!(stat(me).is_some());
        assert!(peak_rss_kb(me).is_some_and(|kb| kb > 0));
        let probes = vec![("me".to_owned(), Probe::Process(me))];
        let first = Snapshot::take(&probes);
        let mut spin = 0u64;
        while first.at.elapsed().as_millis() < 60 {
            spin = spin.wrapping_add(1);
        }
        let second = Snapshot::take(&probes);
        let used = second.cpu_seconds_since(&first, ticks_per_second());
        assert!(used["me"] > 0.0, "spun {spin} times without a tick");
    }
}
