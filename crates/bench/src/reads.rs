//! R: the read routes under `wrk` (another process, 8 connections)
//! against pgbench running the SQL each route ran (captured from the server
//! log), on a dataset the real gateway and projector built.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio_postgres::Client;

use crate::loadgen::unix_now;
use crate::phases::post_workload;
use crate::sqlcapture::{pgbench_statement, statements_between};
use crate::stack::{Role, Stack};
use crate::workload::{Workload, phone_of};

/// Connections of both load generators.
const CONNECTIONS: u32 = 8;

/// Customers whose ids the load generators rotate over.
const SAMPLE: i64 = 10_000;

/// The routes measured.
const ROUTES: [&str; 3] = ["profile", "timeline", "lookup"];

/// One route's figures.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteFigure {
    /// `profile`, `timeline` or `lookup`.
    pub(crate) route: String,
    /// wrk requests/s.
    pub(crate) api_rps: f64,
    /// wrk latency p50 and p99, ms.
    pub(crate) api_ms: (f64, f64),
    /// Answers other than 2xx/3xx.
    pub(crate) api_errors: u64,
    /// pgbench transactions/s (one transaction = every statement of the route).
    pub(crate) pg_tps: f64,
    /// pgbench average latency, ms.
    pub(crate) pg_ms: f64,
    /// Statements the route ran.
    pub(crate) statements: usize,
    /// The start of each, whitespace collapsed.
    pub(crate) statement_heads: Vec<String>,
    /// What went wrong, if something did.
    pub(crate) error: Option<String>,
}

/// The read phase's figures.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reads {
    /// Events posted for the dataset.
    pub(crate) events: u64,
    /// Events in the database when the reads ran.
    pub(crate) events_total: i64,
    /// Customers in the database.
    pub(crate) customers_total: i64,
    /// Events of the busiest customer.
    pub(crate) busiest: i64,
    /// End to end rate of the dataset's fill, events/s.
    pub(crate) fill_events_per_s: f64,
    /// Seconds per load run.
    pub(crate) seconds: u64,
    /// Customers the load generators rotate over.
    pub(crate) sampled: usize,
    /// Per route.
    pub(crate) routes: Vec<RouteFigure>,
}

impl Reads {
    /// Renders the read section.
    pub(crate) fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "### Reads: {} events of {} customers in the database (busiest customer: {} events; this phase posted {} at {:.0} events/s end to end)\n",
            self.events_total,
            self.customers_total,
            self.busiest,
            self.events,
            self.fill_events_per_s
        );
        let _ = writeln!(
            out,
            "`wrk -t2 -c{CONNECTIONS} -d{}s` rotating over {} customers (the busiest included) against \
             `pgbench -n -M prepared -c {CONNECTIONS} -j 2 -T {}` running every statement the route ran (taken from the server \
             log with log_statement=all, the customer's id and phone as variables), after a lookup of a random \
             customer in a bench table (`\\gset`, one more primary-key probe per pgbench transaction).\n",
            self.seconds, self.sampled, self.seconds
        );
        let _ = writeln!(
            out,
            "| route | API req/s | API p50 ms | API p99 ms | pgbench tps | pgbench avg ms | statements | **API / pgbench** |"
        );
        let _ = writeln!(
            out,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for route in &self.routes {
            let ratio = if route.pg_tps > 0.0 {
                format!("{:.3}", route.api_rps / route.pg_tps)
            } else {
                "n/a".to_owned()
            };
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {} | **{ratio}** |",
                route.route,
                route.api_rps,
                route.api_ms.0,
                route.api_ms.1,
                route.pg_tps,
                route.pg_ms,
                route.statements
            );
        }
        for route in &self.routes {
            let _ = writeln!(out, "\n`{}` ran:\n", route.route);
            for head in &route.statement_heads {
                let left_out = if head.contains("INSERT INTO audit_log") {
                    " (the request's audit entry, committed with those of concurrent requests \
                     before the answer leaves: left out of pgbench)"
                } else {
                    ""
                };
                let _ = writeln!(out, "- `{head}…`{left_out}");
            }
        }
        for route in &self.routes {
            if route.api_errors > 0 {
                let _ = writeln!(
                    out,
                    "\n{}: {} answers were not 2xx/3xx.",
                    route.route, route.api_errors
                );
            }
            if let Some(error) = &route.error {
                let _ = writeln!(out, "\n{}: {error}", route.route);
            }
        }
        let _ = writeln!(out);
    }
}

/// Builds the dataset through the gateway and projector, then measures.
pub(crate) async fn run(
    stack: &Stack,
    client: &Client,
    workload: Workload,
    clients: usize,
    seconds: u64,
    tools: (&Path, &Path),
) -> anyhow::Result<Reads> {
    let (wrk_bin, pgbench) = tools;
    let mut reads = Reads {
        events: workload.count,
        seconds,
        ..Reads::default()
    };
    let load = post_workload(stack, workload, clients).await?;
    let end = stack.log_end().await?;
    loop {
        let row = client
            .query_one(
                "SELECT coalesce(sum(next_offset), 0)::int8 FROM consumer_offsets WHERE topic = $1",
                &[&crate::stack::TOPIC],
            )
            .await?;
        if row.get::<_, i64>(0) >= end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reads.fill_events_per_s = workload.count as f64 / (unix_now() - load.started_unix).max(1e-6);
    client.batch_execute("VACUUM ANALYZE").await?;
    let totals = client
        .query_one(
            "SELECT (SELECT reltuples::int8 FROM pg_class WHERE relname = 'events'),
                    (SELECT reltuples::int8 FROM pg_class WHERE relname = 'customers')",
            &[],
        )
        .await?;
    reads.events_total = totals.get(0);
    reads.customers_total = totals.get(1);

    // The customers to read: a random sample and the heavy ones.
    let heavy: Vec<String> = (0..workload.heavy)
        .map(|which| phone_of(workload.heavy_customer(which)))
        .collect();
    client
        .batch_execute(
            "DROP TABLE IF EXISTS bench_ids;
             CREATE TABLE bench_ids (n int PRIMARY KEY, cid uuid NOT NULL, phone text NOT NULL)",
        )
        .await?;
    client
        .execute(
            "INSERT INTO bench_ids
             SELECT (row_number() OVER ()) - 1, customer_id, value FROM (
                 (SELECT customer_id, value FROM identifiers WHERE kind = 'phone' AND value = ANY($1))
                 UNION
                 (SELECT customer_id, value FROM identifiers WHERE kind = 'phone' ORDER BY random() LIMIT $2)
             ) AS s",
            &[&heavy, &SAMPLE],
        )
        .await?;
    client.batch_execute("ANALYZE bench_ids").await?;
    let rows = client
        .query("SELECT cid, phone FROM bench_ids ORDER BY n", &[])
        .await?;
    let ids: Vec<(uuid::Uuid, String)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    reads.sampled = ids.len();
    let Some((first_id, first_phone)) = ids.first().cloned() else {
        bail!("the dataset has no customers with a phone number");
    };
    if let Some(busiest) = heavy.first() {
        let row = client
            .query_one(
                "SELECT count(*) FROM events WHERE customer_id = (SELECT customer_id FROM identifiers WHERE kind = 'phone' AND value = $1)",
                &[busiest],
            )
            .await?;
        reads.busiest = row.get(0);
    }
    let id_file = stack.run_dir().join("customers.txt");
    let mut lines = String::new();
    for (id, phone) in &ids {
        let _ = writeln!(lines, "{id} {}", phone.replace('+', "%2B"));
    }
    std::fs::write(&id_file, lines)?;

    let statements = capture(stack, client, first_id, &first_phone).await?;
    for (route, executed) in ROUTES.iter().zip(statements) {
        let mut figure = RouteFigure {
            route: (*route).to_owned(),
            statements: executed.len(),
            statement_heads: executed
                .iter()
                .map(|statement| {
                    let flat = statement
                        .sql
                        .lines()
                        .filter(|line| !line.trim_start().starts_with("--"))
                        .flat_map(str::split_whitespace)
                        .collect::<Vec<_>>()
                        .join(" ");
                    flat.chars().take(90).collect()
                })
                .collect(),
            ..RouteFigure::default()
        };
        match wrk(stack, wrk_bin, route, &id_file, seconds).await {
            Ok((rps, p50, p99, errors)) => {
                figure.api_rps = rps;
                figure.api_ms = (p50, p99);
                figure.api_errors = errors;
            }
            Err(error) => figure.error = Some(format!("wrk: {error:#}")),
        }
        let mut script = format!(
            "\\set n random(0, {})\nSELECT cid, phone FROM bench_ids WHERE n = :n \\gset\n",
            ids.len() - 1
        );
        // The API queues audit entries and writes them in batches in the
        // background; one per pgbench transaction would be a durable commit
        // the route does not wait for.
        for statement in executed
            .iter()
            .filter(|statement| !statement.sql.contains("INSERT INTO audit_log"))
        {
            script.push_str(&pgbench_statement(
                statement,
                &first_id.to_string(),
                &first_phone,
            ));
            script.push('\n');
        }
        let script_path = stack.run_dir().join(format!("{route}.sql"));
        std::fs::write(&script_path, &script)?;
        match run_pgbench(stack, pgbench, &script_path, seconds).await {
            Ok((tps, ms)) => {
                figure.pg_tps = tps;
                figure.pg_ms = ms;
            }
            Err(error) => {
                let message = format!("pgbench: {error:#}");
                figure.error = Some(
                    figure
                        .error
                        .map_or(message.clone(), |before| format!("{before}; {message}")),
                );
            }
        }
        reads.routes.push(figure);
    }
    Ok(reads)
}

/// The path of each route for customer `id` with phone `phone`.
fn route_path(route: &str, id: uuid::Uuid, phone: &str) -> String {
    match route {
        "profile" => format!("/v1/customers/{id}"),
        "timeline" => format!("/v1/customers/{id}/timeline"),
        _ => format!("/v1/customers/lookup?phone={}", phone.replace('+', "%2B")),
    }
}

/// Runs each route once with every statement logged, and returns the
/// statements of each, in [`ROUTES`] order.
async fn capture(
    stack: &Stack,
    client: &Client,
    id: uuid::Uuid,
    phone: &str,
) -> anyhow::Result<Vec<Vec<crate::sqlcapture::Executed>>> {
    let http = reqwest::Client::new();
    let authorization = format!("Bearer {}", stack.token);
    // Warm the API's connections and token cache, so what is captured is a
    // steady-state request.
    for route in ROUTES {
        let _ = http
            .get(format!(
                "{}{}",
                stack.url(Role::Api),
                route_path(route, id, phone)
            ))
            .header("authorization", &authorization)
            .send()
            .await?;
    }
    let log_path = stack.pg.log_path().to_path_buf();
    let log_start = std::fs::metadata(&log_path).map_or(0, |meta| meta.len());
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    client
        .batch_execute("ALTER SYSTEM SET log_statement = 'all'")
        .await?;
    client.batch_execute("SELECT pg_reload_conf()").await?;
    let reloaded = Instant::now();
    loop {
        let probe = stack.connect().await?;
        let setting: String = probe.query_one("SHOW log_statement", &[]).await?.get(0);
        if setting == "all" {
            break;
        }
        if reloaded.elapsed() > Duration::from_secs(10) {
            bail!("log_statement did not turn to all");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The API's pooled backends take the new setting at their next command.
    for route in ROUTES {
        client
            .batch_execute(&format!("SELECT 'bench-begin-{route}'"))
            .await?;
        let response = http
            .get(format!(
                "{}{}",
                stack.url(Role::Api),
                route_path(route, id, phone)
            ))
            .header("authorization", &authorization)
            .send()
            .await?;
        let status = response.status();
        let _ = response.bytes().await;
        client
            .batch_execute(&format!("SELECT 'bench-end-{route}'"))
            .await?;
        if !status.is_success() {
            eprintln!("panorama-bench: {route} answered {status} while its SQL was captured");
        }
    }
    client
        .batch_execute("ALTER SYSTEM RESET log_statement")
        .await?;
    client.batch_execute("SELECT pg_reload_conf()").await?;
    let log = std::fs::read(&log_path)?;
    let log =
        String::from_utf8_lossy(&log[usize::try_from(log_start).unwrap_or(0).min(log.len())..])
            .into_owned();
    Ok(ROUTES
        .iter()
        .map(|route| {
            statements_between(
                &log,
                &format!("'bench-begin-{route}'"),
                &format!("'bench-end-{route}'"),
                u32::try_from(pid).unwrap_or(0),
            )
        })
        .collect())
}

/// Runs wrk against one route: (requests/s, p50 ms, p99 ms, non-2xx/3xx).
async fn wrk(
    stack: &Stack,
    wrk_bin: &Path,
    route: &str,
    ids: &Path,
    seconds: u64,
) -> anyhow::Result<(f64, f64, f64, u64)> {
    let script = format!(
        r#"local ids, phones = {{}}, {{}}
for line in io.lines("{ids}") do
  local id, phone = line:match("(%S+) (%S+)")
  ids[#ids + 1] = id
  phones[#phones + 1] = phone
end
local i = 0
function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
  i = math.random(#ids)
end
function request()
  i = i % #ids + 1
  local path
  if "{route}" == "profile" then
    path = "/v1/customers/" .. ids[i]
  elseif "{route}" == "timeline" then
    path = "/v1/customers/" .. ids[i] .. "/timeline"
  else
    path = "/v1/customers/lookup?phone=" .. phones[i]
  end
  return wrk.format("GET", path, {{["Authorization"] = "Bearer {token}"}})
end
"#,
        ids = ids.display(),
        token = stack.token,
    );
    let script_path = stack.run_dir().join(format!("{route}.lua"));
    std::fs::write(&script_path, script)?;
    let mut command = Command::new(wrk_bin);
    command
        .args([
            "-t2",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script_path)
        .arg(stack.url(Role::Api))
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("running wrk (make bench installs it)")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_wrk(&text).with_context(|| format!("reading wrk's output: {text}"))
}

/// A wrk duration ("1.23ms", "850.00us", "1.02s") in ms.
fn wrk_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return None;
    };
    Some(number.parse::<f64>().ok()? * factor)
}

/// (requests/s, p50 ms, p99 ms, non-2xx/3xx) of wrk's `--latency` output.
pub(crate) fn parse_wrk(text: &str) -> Option<(f64, f64, f64, u64)> {
    let mut rps = None;
    let (mut p50, mut p99) = (None, None);
    let mut errors = 0;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", value] => rps = value.parse().ok(),
            ["50%", value] => p50 = wrk_ms(value),
            ["99%", value] => p99 = wrk_ms(value),
            ["Non-2xx", "or", "3xx", "responses:", value] => errors = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    Some((rps?, p50?, p99?, errors))
}

/// Runs pgbench with `script`: (tps, average latency ms).
async fn run_pgbench(
    stack: &Stack,
    pgbench: &Path,
    script: &Path,
    seconds: u64,
) -> anyhow::Result<(f64, f64)> {
    let mut command = Command::new(pgbench);
    command
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            &CONNECTIONS.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(script)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &stack.pg.port().to_string(),
            "-U",
            "postgres",
        ])
        .arg(&stack.database.name)
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("running pgbench")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(
            "pgbench failed ({}): {}",
            output.status,
            stderr.lines().take(5).collect::<Vec<_>>().join(" / ")
        );
    }
    parse_pgbench(&text).with_context(|| format!("reading pgbench's output: {text}"))
}

/// (tps, average latency ms) of pgbench's summary.
pub(crate) fn parse_pgbench(text: &str) -> Option<(f64, f64)> {
    let mut tps = None;
    let mut latency = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("tps = ") {
            tps = rest
                .split_whitespace()
                .next()
                .and_then(|value| value.parse().ok());
        }
        if let Some(rest) = line.strip_prefix("latency average = ") {
            latency = rest
                .split_whitespace()
                .next()
                .and_then(|value| value.parse().ok());
        }
    }
    Some((tps?, latency?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 10s test @ http://127.0.0.1:1\n  2 threads and 8 connections\n  Latency Distribution\n     50%    4.50ms\n     75%    6.00ms\n     90%   10.00ms\n     99%  145.20ms\n  15000 requests in 10.00s, 3.00MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:   1500.25\nTransfer/sec:    300.00KB\n";
        assert_eq!(parse_wrk(text), Some((1500.25, 4.5, 145.2, 3)));
        assert_eq!(wrk_ms("850.00us"), Some(0.85));
        assert_eq!(wrk_ms("1.02s"), Some(1020.0));
        assert_eq!(parse_wrk("nothing"), None);
    }

    #[test]
    fn pgbench_output_is_read() {
        let text = "number of transactions actually processed: 100000\nlatency average = 0.812 ms\ninitial connection time = 5.000 ms\ntps = 9852.123456 (without initial connection time)\n";
        assert_eq!(parse_pgbench(text), Some((9852.123456, 0.812)));
        assert_eq!(parse_pgbench("error"), None);
    }
}
