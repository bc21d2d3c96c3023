//! The SQL a route runs, taken from the server log while
//! `log_statement = 'all'` (PostgreSQL logs each executed statement with its
//! parameters), and turned into a pgbench script: the customer's id and
//! phone become pgbench variables, fresh ids of inserted rows become
//! `gen_random_uuid()`, every other parameter stays the literal the route
//! sent.

/// One executed statement and its parameters (`None` for NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Executed {
    /// The backend's pid.
    pub(crate) pid: u32,
    /// The statement's text.
    pub(crate) sql: String,
    /// `$1`, `$2`, ... in order.
    pub(crate) params: Vec<Option<String>>,
}

/// The pid in a log line starting `%m [%p] `.
fn line_pid(line: &str) -> Option<u32> {
    let start = line.find(" [")? + 2;
    let end = start + line[start..].find(']')?;
    line[start..end].parse().ok()
}

/// Parses `$1 = 'a''b', $2 = NULL` into values.
pub(crate) fn parse_params(text: &str) -> Vec<Option<String>> {
    let mut params = Vec::new();
    let mut rest = text.trim();
    while let Some(after_dollar) = rest.strip_prefix('$') {
        let Some((_, value)) = after_dollar.split_once(" = ") else {
            break;
        };
        if let Some(after) = value.strip_prefix("NULL") {
            params.push(None);
            rest = after.trim_start_matches(", ").trim_start();
            continue;
        }
        let Some(quoted) = value.strip_prefix('\'') else {
            break;
        };
        let mut literal = String::new();
        let mut chars = quoted.char_indices().peekable();
        let mut end = quoted.len();
        while let Some((index, ch)) = chars.next() {
            if ch == '\'' {
                if chars.peek().map(|(_, next)| *next) == Some('\'') {
                    literal.push('\'');
                    chars.next();
                    continue;
                }
                end = index + 1;
                break;
            }
            literal.push(ch);
        }
        params.push(Some(literal));
        rest = quoted[end.min(quoted.len())..]
            .trim_start_matches(", ")
            .trim_start();
    }
    params
}

/// The statements executed between the log lines holding `begin` and
/// `end`, leaving out backend `skip_pid` (the benchmark's own).
pub(crate) fn statements_between(
    log: &str,
    begin: &str,
    end: &str,
    skip_pid: u32,
) -> Vec<Executed> {
    let mut found = Vec::new();
    let mut inside = false;
    let mut current: Option<Executed> = None;
    for line in log.lines() {
        if line.contains(begin) {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        if line.contains(end) {
            break;
        }
        if let Some(continued) = line.strip_prefix('\t') {
            if let Some(statement) = current.as_mut() {
                statement.sql.push('\n');
                statement.sql.push_str(continued);
            }
            continue;
        }
        let pid = line_pid(line);
        if let Some(detail) = line
            .split_once("DETAIL:  parameters: ")
            .map(|(_, rest)| rest)
        {
            if let Some(statement) = current
                .as_mut()
                .filter(|statement| Some(statement.pid) == pid)
            {
                statement.params = parse_params(detail);
            }
            continue;
        }
        let text = line
            .split_once("LOG:  execute ")
            .and_then(|(_, rest)| rest.split_once(": ").map(|(_, sql)| sql))
            .or_else(|| line.split_once("LOG:  statement: ").map(|(_, sql)| sql));
        if let Some(statement) = current.take() {
            found.push(statement);
        }
        if let (Some(sql), Some(pid)) = (text, pid) {
            if pid != skip_pid {
                current = Some(Executed {
                    pid,
                    sql: sql.to_owned(),
                    params: Vec::new(),
                });
            }
        }
    }
    if let Some(statement) = current {
        found.push(statement);
    }
    found
        .into_iter()
        .filter(|statement| !statement.sql.trim().is_empty() && statement.sql.trim() != ";")
        .collect()
}

fn is_uuid_array(value: &str) -> bool {
    value
        .strip_prefix('{')
        .and_then(|inner| inner.strip_suffix('}'))
        .is_some_and(|inner| {
            inner
                .split(',')
                .all(|item| uuid::Uuid::parse_str(item).is_ok())
        })
}

/// The statement with its parameters written in, as pgbench runs it:
/// `customer` becomes the variable `:cid`, `phone` `:phone` (a parameter
/// under `pgbench -M prepared`); other values are literals.
pub(crate) fn pgbench_statement(statement: &Executed, customer: &str, phone: &str) -> String {
    let inserts = statement.sql.to_ascii_uppercase().contains("INSERT ");
    let literal = |value: &Option<String>| -> String {
        let Some(value) = value else {
            return "NULL".to_owned();
        };
        if inserts && is_uuid_array(value) && !value.contains(customer) {
            return "(ARRAY[gen_random_uuid()])".to_owned();
        }
        // Bare, so that pgbench -M prepared sends them as parameters, as the
        // route does.
        if value == customer {
            return ":cid".to_owned();
        }
        if value == phone {
            return ":phone".to_owned();
        }
        let value = value.replace(customer, ":cid").replace(phone, ":phone");
        format!("'{}'", value.replace('\'', "''"))
    };
    let sql = &statement.sql;
    let mut out = String::with_capacity(sql.len());
    let bytes = sql.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'$' {
            let digits = bytes[index + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits > 0 {
                let number: usize = sql[index + 1..index + 1 + digits].parse().unwrap_or(0);
                if let Some(value) = number.checked_sub(1).and_then(|n| statement.params.get(n)) {
                    out.push_str(&literal(value));
                    index += 1 + digits;
                    continue;
                }
            }
        }
        let ch = sql[index..].chars().next().unwrap_or(' ');
        out.push(ch);
        index += ch.len_utf8();
    }
    let trimmed = out.trim_end().trim_end_matches(';').to_owned();
    format!("{trimmed};")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "0190a0b0-0000-7000-8000-000000000001";

    #[test]
    fn parameters_are_read_with_quotes_and_nulls() {
        assert_eq!(
            parse_params("$1 = 'it''s', $2 = NULL, $3 = '51'"),
            vec![Some("it's".to_owned()), None, Some("51".to_owned())]
        );
        assert_eq!(parse_params(""), Vec::<Option<String>>::new());
    }

    #[test]
    fn statements_are_taken_between_markers_without_our_own() {
        let log = format!(
            "2026-01-01 00:00:00.000 UTC [10] LOG:  statement: SELECT 'begin-x'\n\
             2026-01-01 00:00:00.001 UTC [20] LOG:  execute s1: SELECT *\n\
             \tFROM events WHERE customer_id = $1 LIMIT $2\n\
             2026-01-01 00:00:00.001 UTC [20] DETAIL:  parameters: $1 = '{CID}', $2 = '51'\n\
             2026-01-01 00:00:00.002 UTC [10] LOG:  statement: SELECT 1\n\
             2026-01-01 00:00:00.003 UTC [20] LOG:  statement: COMMIT\n\
             2026-01-01 00:00:00.004 UTC [10] LOG:  statement: SELECT 'end-x'\n\
             2026-01-01 00:00:00.005 UTC [20] LOG:  statement: SELECT 'after'\n"
        );
        let found = statements_between(&log, "begin-x", "end-x", 10);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            found[0].sql,
            "SELECT *\nFROM events WHERE customer_id = $1 LIMIT $2"
        );
        assert_eq!(found[0].params.len(), 2);
        assert_eq!(found[1].sql, "COMMIT");
    }

    #[test]
    fn parameters_become_literals_and_variables() {
        let statement = Executed {
            pid: 1,
            sql: "SELECT * FROM t WHERE id = $1 AND phone = $2 AND x = $10 AND y IS $3".to_owned(),
            params: vec![
                Some(CID.to_owned()),
                Some("+31610000001".to_owned()),
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                Some("a'b".to_owned()),
            ],
        };
        assert_eq!(
            pgbench_statement(&statement, CID, "+31610000001"),
            "SELECT * FROM t WHERE id = :cid AND phone = :phone AND x = 'a''b' AND y IS NULL;"
        );
        let insert = Executed {
            pid: 1,
            sql: "INSERT INTO audit_log SELECT * FROM unnest($1::uuid[], $2::uuid[])".to_owned(),
            params: vec![
                Some("{0190a0b0-0000-7000-8000-00000000abcd}".to_owned()),
                Some(format!("{{{CID}}}")),
            ],
        };
        assert_eq!(
            pgbench_statement(&insert, CID, "+31610000001"),
            "INSERT INTO audit_log SELECT * FROM unnest((ARRAY[gen_random_uuid()])::uuid[], '{:cid}'::uuid[]);"
        );
    }
}
