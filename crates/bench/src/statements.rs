//! Where PostgreSQL's time goes during P: with `--pg-statements` the
//! bench's server loads `pg_stat_statements`, its counters are reset
//! right before each P phase's projector starts and read when its offsets
//! reach the log end, and the report lists the statements by their share
//! of the execution time, per projected event.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use tokio_postgres::Client;

/// The setting that loads the extension (it needs a server restart).
pub(crate) const PRELOAD: (&str, &str) = ("shared_preload_libraries", "pg_stat_statements");

/// How many statements the report lists; the rest are summed in one row.
const SHOWN: usize = 15;

/// Statements of the bench itself (completion polls, the lock sampler),
/// left out of the profile.
const OWN: [&str; 2] = [
    "FROM consumer_offsets WHERE consumer_group",
    "pg_stat_activity",
];

/// One statement's counters, summed over the P phases.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Counters {
    /// Executions.
    pub(crate) calls: i64,
    /// Rows returned or affected.
    pub(crate) rows: i64,
    /// Execution time, ms (wall time inside the executor: CPU, I/O and
    /// waits).
    pub(crate) exec_ms: f64,
}

/// Row writes to one table over the whole run (`pg_stat_user_tables`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TableWrites {
    /// The table.
    pub(crate) table: String,
    /// Rows inserted.
    pub(crate) inserted: i64,
    /// Rows updated.
    pub(crate) updated: i64,
    /// Of those, heap-only updates (no index entries written).
    pub(crate) hot: i64,
    /// Rows deleted.
    pub(crate) deleted: i64,
}

/// The statements of the P phases, by normalised text, and the row writes
/// of the whole run.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Profile {
    /// Events the P phases projected.
    pub(crate) events: u64,
    /// Counters by statement text (whitespace collapsed).
    pub(crate) statements: BTreeMap<String, Counters>,
    /// Row writes by table since the server started, most written first.
    pub(crate) tables: Vec<TableWrites>,
}

/// Creates the extension (the server must have loaded it) and resets it.
pub(crate) async fn prepare(client: &Client) -> anyhow::Result<()> {
    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await?;
    reset(client).await
}

/// Zeroes the counters: called right before the projector starts.
pub(crate) async fn reset(client: &Client) -> anyhow::Result<()> {
    client
        .execute("SELECT pg_stat_statements_reset()", &[])
        .await?;
    Ok(())
}

/// One line of text with runs of whitespace made one space.
fn one_line(query: &str) -> String {
    query.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Profile {
    /// Adds what the server counted since the last [`reset`] for a phase
    /// that projected `events`.
    pub(crate) async fn add_phase(&mut self, client: &Client, events: u64) -> anyhow::Result<()> {
        let rows = client
            .query(
                "SELECT query, calls, rows, total_exec_time FROM pg_stat_statements",
                &[],
            )
            .await?;
        self.events += events;
        for row in rows {
            let query = one_line(row.get(0));
            if OWN.iter().any(|own| query.contains(own)) || query.contains("pg_stat_statements") {
                continue;
            }
            self.add(query, row.get(1), row.get(2), row.get(3));
        }
        Ok(())
    }

    /// Reads the row writes of every table since the server started
    /// (every phase, not only P: what matters is the share of updates that
    /// were heap-only).
    pub(crate) async fn read_tables(&mut self, client: &Client) -> anyhow::Result<()> {
        let rows = client
            .query(
                "SELECT relname::text, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del
                 FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0
                 ORDER BY n_tup_ins + n_tup_upd + n_tup_del DESC, relname",
                &[],
            )
            .await?;
        self.tables = rows
            .iter()
            .map(|row| TableWrites {
                table: row.get(0),
                inserted: row.get(1),
                updated: row.get(2),
                hot: row.get(3),
                deleted: row.get(4),
            })
            .collect();
        Ok(())
    }

    fn add(&mut self, query: String, calls: i64, rows: i64, exec_ms: f64) {
        let counters = self.statements.entry(query).or_default();
        counters.calls += calls;
        counters.rows += rows;
        counters.exec_ms += exec_ms;
    }

    /// The report's table: the statements with the largest share first.
    pub(crate) fn render(&self, out: &mut String) {
        let total_ms: f64 = self.statements.values().map(|c| c.exec_ms).sum();
        if self.events == 0 || total_ms <= 0.0 {
            return;
        }
        let per_event = |ms: f64| ms * 1000.0 / self.events as f64;
        let mut ranked: Vec<(&String, &Counters)> = self.statements.iter().collect();
        ranked.sort_by(|a, b| b.1.exec_ms.total_cmp(&a.1.exec_ms));
        let _ = writeln!(
            out,
            "PostgreSQL's execution time during P (`--pg-statements`: `pg_stat_statements`, reset before each P, \
             {} events; execution time is wall time in the executor, waits included; the extension's own cost \
             makes this run's throughput not comparable with a run without it):\n",
            self.events
        );
        let _ = writeln!(
            out,
            "| statement | calls | rows / call | µs / event | share |"
        );
        let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: |");
        let row = |out: &mut String, label: &str, c: &Counters| {
            let _ = writeln!(
                out,
                "| {label} | {} | {:.1} | {:.1} | {:.1}% |",
                c.calls,
                c.rows as f64 / c.calls.max(1) as f64,
                per_event(c.exec_ms),
                c.exec_ms / total_ms * 100.0
            );
        };
        for (query, counters) in ranked.iter().take(SHOWN) {
            row(out, &format!("`{}`", cell(query)), counters);
        }
        let mut rest = Counters::default();
        for (_, counters) in ranked.iter().skip(SHOWN) {
            rest.calls += counters.calls;
            rest.rows += counters.rows;
            rest.exec_ms += counters.exec_ms;
        }
        if rest.calls > 0 {
            row(
                out,
                &format!("{} other statements", ranked.len() - SHOWN),
                &rest,
            );
        }
        let _ = writeln!(
            out,
            "| **all** | | | **{:.1}** | 100% |\n",
            per_event(total_ms)
        );
        if self.tables.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "Row writes by table over the whole run, every phase (`pg_stat_user_tables`; an update is heap-only, \
             HOT, when it changed no indexed column and found room on its page: it writes no index entries):\n"
        );
        let _ = writeln!(out, "| table | inserted | updated | HOT | deleted |");
        let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: |");
        for t in &self.tables {
            let hot = if t.updated > 0 {
                format!("{:.0}%", t.hot as f64 / t.updated as f64 * 100.0)
            } else {
                "–".to_owned()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {hot} | {} |",
                t.table, t.inserted, t.updated, t.deleted
            );
        }
        let _ = writeln!(out);
    }
}

/// A statement for a Markdown table cell: at most 110 characters, no `|`
/// or backticks.
fn cell(query: &str) -> String {
    let clean: String = query
        .chars()
        .map(|c| if c == '|' || c == '`' { '¦' } else { c })
        .collect();
    if clean.chars().count() > 110 {
        let cut: String = clean.chars().take(109).collect();
        format!("{cut}…")
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_add_up_by_statement_and_the_table_ranks_by_time() {
        let mut profile = Profile {
            events: 1000,
            ..Profile::default()
        };
        profile.add("INSERT INTO a".to_owned(), 10, 1000, 30.0);
        profile.add("UPDATE b".to_owned(), 10, 10, 10.0);
        profile.add("INSERT INTO a".to_owned(), 10, 1000, 30.0);
        assert_eq!(profile.statements["INSERT INTO a"].calls, 20);
        let mut out = String::new();
        profile.render(&mut out);
        let insert = out
            .find("`INSERT INTO a` | 20 | 100.0 | 60.0 | 85.7% |")
            .unwrap();
        let update = out.find("`UPDATE b` | 10 | 1.0 | 10.0 | 14.3% |").unwrap();
        assert!(insert < update, "{out}");
        assert!(out.contains("| **all** | | | **70.0** | 100% |"), "{out}");
        assert!(!out.contains("Row writes"), "{out}");
        profile.tables.push(TableWrites {
            table: "cases".to_owned(),
            inserted: 5,
            updated: 4,
            hot: 1,
            deleted: 0,
        });
        let mut out = String::new();
        profile.render(&mut out);
        assert!(out.contains("| cases | 5 | 4 | 25% | 0 |"), "{out}");
    }

    #[test]
    fn cells_are_one_short_line_without_table_syntax() {
        assert_eq!(one_line("SELECT  a,\n\t b"), "SELECT a, b");
        assert_eq!(cell("a | b `c`"), "a ¦ b ¦c¦");
        let long = "x".repeat(300);
        assert_eq!(cell(&long).chars().count(), 110);
        assert!(cell("é".repeat(200).as_str()).ends_with('…'));
    }

    #[test]
    fn an_empty_profile_renders_nothing() {
        let mut out = String::new();
        Profile::default().render(&mut out);
        assert!(out.is_empty());
    }
}
