//! Configuration: defaults, then an optional TOML file, then `PANORAMA_*`
//! environment variables, then command-line flags; later layers win.
//!
//! [`panorama::Options`] is the one nested structure: its `Default` impls
//! hold every default and serde reads it (refusing unknown keys). Each
//! setting also has a flag and a variable, declared in `settings` with its
//! description; clap reads both (a flag beats its variable, and parse errors
//! are clap's), and what they give is layered over the TOML file with
//! figment. `--help` and the README's settings table show each setting's
//! default, rendered from `Options::default()`.

#[cfg(test)]
mod readme;
mod settings;
#[cfg(test)]
mod tests;
mod webhooks;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::Path;

use anyhow::Context as _;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command};
use figment::providers::{Format as _, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

pub(crate) use settings::Settings;

/// The prefix of every setting's environment variable.
const ENV_PREFIX: &str = "PANORAMA_";

/// The keys of the settings (as opposed to `--config`, `--role`, ...): the
/// ids of the arguments [`Settings`] declares.
fn setting_keys() -> BTreeSet<String> {
    Settings::augment_args(Command::new("settings"))
        .get_arguments()
        .map(|arg| arg.get_id().to_string())
        .collect()
}

/// The settings' defaults, as written in TOML: `Options::default()`
/// serialised.
fn defaults() -> Dict {
    Figment::from(Serialized::defaults(panorama::Options::default()))
        .data()
        .ok()
        .and_then(|mut profiles| profiles.remove(&Profile::Default))
        .unwrap_or_default()
}

/// A setting's default as a person writes it; `None` when it is unset.
fn default_text(defaults: &Dict, key: &str) -> Option<String> {
    let mut parts = key.split('.');
    let first = parts.next()?;
    let mut value = defaults.get(first)?;
    for part in parts {
        value = value.as_dict()?.get(part)?;
    }
    match value {
        Value::String(_, text) if text.is_empty() => None,
        Value::String(_, text) => Some(text.clone()),
        Value::Char(_, c) => Some(c.to_string()),
        Value::Bool(_, flag) => Some(flag.to_string()),
        Value::Num(_, number) => number
            .to_u128()
            .map(|whole| whole.to_string())
            .or_else(|| number.to_i128().map(|whole| whole.to_string()))
            .or_else(|| number.to_f64().map(|real| real.to_string())),
        Value::Array(_, items) if items.is_empty() => None,
        Value::Array(_, items) => Some(
            items
                .iter()
                .filter_map(|item| item.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        Value::Empty(..) | Value::Dict(..) => None,
    }
}

/// The command with every setting's `--help` showing its default, and its
/// value named as its variable without the prefix (`<HTTP_ADDR>`), as the
/// flags always spelled it.
pub(crate) fn annotate(command: Command) -> Command {
    let defaults = defaults();
    let keys = setting_keys();
    command.mut_args(|arg| {
        if !keys.contains(arg.get_id().as_str()) {
            return arg;
        }
        let value_name = arg
            .get_env()
            .and_then(OsStr::to_str)
            .and_then(|env| env.strip_prefix(ENV_PREFIX))
            .map(str::to_owned);
        let arg = match value_name {
            Some(name) => arg.value_name(name),
            None => arg,
        };
        match default_text(&defaults, arg.get_id().as_str()) {
            Some(default) => {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!("{help} [default: {default}]"))
            }
            None => arg,
        }
    })
}

/// The name of the layer flags and variables form.
const ARGS_LAYER: &str = "flags and variables";
/// The name of the config file's layer.
const FILE_LAYER: &str = "config file";

/// A provider under a name of ours, so an error can say which layer gave
/// the value it refuses.
struct Layer<P> {
    name: &'static str,
    provider: P,
}

impl<P: Provider> Provider for Layer<P> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.provider.data()
    }
}

/// The options: the defaults, then `file`, then the variables and flags
/// clap read into `settings` (`matches` tells which of the two gave a
/// value, `command` their names, for errors).
pub(crate) fn load(
    file: Option<&Path>,
    settings: &Settings,
    command: &Command,
    matches: &ArgMatches,
) -> anyhow::Result<panorama::Options> {
    // No layer holds the defaults: serde takes each key no layer gives from
    // the `Default` of its section.
    let mut figment = Figment::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        figment = figment.merge(Layer {
            name: FILE_LAYER,
            provider: Toml::string(&text),
        });
    }
    figment = figment.merge(Layer {
        name: ARGS_LAYER,
        provider: Serialized::defaults(settings),
    });
    figment
        .extract()
        .map_err(|errors| explain(errors, file, command, matches))
}

/// Says which setting is wrong, where its value came from (the file, the
/// flag or the variable), and why.
fn explain(
    errors: figment::Error,
    file: Option<&Path>,
    command: &Command,
    matches: &ArgMatches,
) -> anyhow::Error {
    let file = file.map_or_else(String::new, |path| path.display().to_string());
    let lines: Vec<String> = errors
        .into_iter()
        .map(|error| {
            let mut key = error.path.join(".");
            let why = match &error.kind {
                figment::error::Kind::UnknownField(field, known) => {
                    // The path may or may not end with the unknown key.
                    if error.path.last() != Some(field) {
                        key = error
                            .path
                            .iter()
                            .chain([field])
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(".");
                    }
                    format!("unknown key (known here: {})", known.join(", "))
                }
                figment::error::Kind::UnknownVariant(found, expected) => {
                    format!(
                        "unknown value {found:?}, expected one of {}",
                        expected.join(", ")
                    )
                }
                kind => kind.to_string(),
            };
            let layer = error.metadata.as_ref().map(|metadata| &*metadata.name);
            let arg = command
                .get_arguments()
                .find(|arg| arg.get_id().as_str() == key);
            let source = matches
                .try_contains_id(&key)
                .ok()
                .filter(|given| *given)
                .and_then(|_| matches.value_source(&key));
            match (layer, arg, source) {
                (Some(ARGS_LAYER), Some(arg), Some(ValueSource::EnvVariable)) => format!(
                    "{} ({key}): {why}",
                    arg.get_env().unwrap_or_default().to_string_lossy()
                ),
                (Some(ARGS_LAYER), Some(arg), _) => {
                    format!("--{} ({key}): {why}", arg.get_long().unwrap_or_default())
                }
                (Some(FILE_LAYER), _, _) if key.is_empty() => {
                    format!("invalid config file {file}: {why}")
                }
                (Some(FILE_LAYER), _, _) => {
                    format!("invalid config file {file}: {key}: {why}")
                }
                _ if key.is_empty() => why,
                _ => format!("{key}: {why}"),
            }
        })
        .collect();
    anyhow::anyhow!(lines.join("\n"))
}

/// The options as a TOML file that reads back to them, secrets (the
/// settings whose variables `--help` hides) masked.
pub(crate) fn render(options: &panorama::Options) -> anyhow::Result<String> {
    let mut table = toml::Table::try_from(options).context("cannot render the settings")?;
    let settings = Settings::augment_args(Command::new("settings"));
    for arg in settings
        .get_arguments()
        .filter(|arg| arg.is_hide_env_values_set())
    {
        let key = arg.get_id().as_str();
        let (holder, name) = match key.split_once('.') {
            Some((section, name)) => (
                table.get_mut(section).and_then(toml::Value::as_table_mut),
                name,
            ),
            None => (Some(&mut table), key),
        };
        let Some(value) = holder.and_then(|holder| holder.get_mut(name)) else {
            continue;
        };
        let set = match value {
            toml::Value::String(text) => !text.is_empty(),
            toml::Value::Array(items) => !items.is_empty(),
            _ => true,
        };
        if set {
            *value = toml::Value::String("********".into());
        }
    }
    toml::to_string(&table).context("cannot render the settings")
}
