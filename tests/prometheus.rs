//! A small parser for the Prometheus text format, for tests that read
//! `/metrics`: families with their type, samples with labels and values.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Series name (with `_bucket`, `_sum`, `_count` for histograms).
    pub name: String,
    /// Label pairs.
    pub labels: BTreeMap<String, String>,
    /// Value (NaN and ±Inf included).
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    /// Family name → type (`counter`, `gauge`, `histogram`, ...).
    pub families: BTreeMap<String, String>,
    /// Every sample, in order.
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// The value of the first sample of series `name` carrying every label
    /// of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|sample| {
                sample.name == name
                    && labels.iter().all(|(key, value)| {
                        sample.labels.get(*key).map(String::as_str) == Some(*value)
                    })
            })
            .map(|sample| sample.value)
    }

    /// Parses the text format; `Err` names the first line that is not valid.
    pub fn parse(text: &str) -> Result<Exposition, String> {
        let mut exposition = Exposition::default();
        for (number, line) in text.lines().enumerate() {
            let fail = |why: &str| format!("line {}: {why}: {line:?}", number + 1);
            if line.trim().is_empty() || line.starts_with("# HELP ") {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or_else(|| fail("bad TYPE"))?;
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                    return Err(fail("unknown type"));
                }
                exposition.families.insert(name.into(), kind.into());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').ok_or_else(|| fail("no value"))?;
            let value: f64 = match value {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                other => other.parse().map_err(|_| fail("bad value"))?,
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest
                        .strip_suffix('}')
                        .ok_or_else(|| fail("unclosed labels"))?;
                    (
                        name.to_owned(),
                        parse_labels(body).ok_or_else(|| fail("bad labels"))?,
                    )
                }
            };
            let valid_name = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.is_empty();
            if !valid_name {
                return Err(fail("bad metric name"));
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| exposition.families.contains_key(*base))
                .unwrap_or(&name);
            if !exposition.families.contains_key(family) {
                return Err(fail("sample without a TYPE line"));
            }
            exposition.samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        Ok(exposition)
    }

    /// Samples of series `name` whose labels include every pair of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|sample| {
                sample.name == name
                    && labels.iter().all(|(key, value)| {
                        sample.labels.get(*key).map(String::as_str) == Some(*value)
                    })
            })
            .collect()
    }

    /// The sum of the values of [`Exposition::find`].
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels)
            .iter()
            .map(|sample| sample.value)
            .sum()
    }
}

fn parse_labels(body: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (index, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break index,
                other => value.push(other),
            }
        };
        labels.insert(key.trim().to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(labels)
}

/// The metric families the README documents: every `panorama_*` name in
/// the table between the `metrics-table` markers.
pub fn documented_metrics(readme: &str) -> Vec<String> {
    let start = readme.find("<!-- metrics-table -->").unwrap_or(0);
    let end = readme[start..]
        .find("<!-- /metrics-table -->")
        .map_or(readme.len(), |end| start + end);
    metric_names(&readme[start..end])
}

/// Every `panorama_*` identifier in `text`, without histogram suffixes,
/// sorted and deduplicated.
pub fn metric_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("panorama_") && word.len() > "panorama_".len())
        .map(|word| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| word.strip_suffix(suffix))
                .unwrap_or(word)
                .to_owned()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}
