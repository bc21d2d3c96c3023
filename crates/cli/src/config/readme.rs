//! The README's settings table, rendered from the command's arguments and
//! the defaults (`make settings` writes it; a test holds the README to it).

use clap::Command;

use super::{default_text, defaults, setting_keys};

/// One row per variable for the README: the variable, its TOML key, its
/// default and what it does.
fn table_rows(command: &Command) -> Vec<[String; 4]> {
    let defaults = defaults();
    let keys = setting_keys();
    let is_setting = |arg: &&clap::Arg| keys.contains(arg.get_id().as_str());
    let others = command.get_arguments().filter(|arg| !is_setting(arg));
    let serve_args = command
        .find_subcommand("serve")
        .into_iter()
        .flat_map(Command::get_arguments);
    let settings = command.get_arguments().filter(is_setting);
    others
        .chain(serve_args)
        .chain(settings)
        .filter_map(|arg| {
            let env = arg.get_env()?.to_string_lossy().into_owned();
            let setting = is_setting(&arg);
            let key = if setting {
                format!("`{}`", arg.get_id())
            } else {
                "—".to_owned()
            };
            let default = if setting {
                default_text(&defaults, arg.get_id().as_str())
            } else {
                arg.get_default_values()
                    .first()
                    .map(|value| value.to_string_lossy().into_owned())
            };
            let default = default.map_or_else(|| "none".to_owned(), |value| format!("`{value}`"));
            let mut meaning = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .map(|value| format!("`{}`", value.get_name()))
                .collect();
            if !values.is_empty() {
                meaning = format!("{meaning} ({})", values.join(", "));
            }
            Some([format!("`{env}`"), key, default, meaning])
        })
        .collect()
}

/// Where the table starts and ends in the README.
const BEGIN: &str = "<!-- settings table: `make settings` writes it from crates/cli/src/config/settings.rs and the defaults in crates/cli/src/options.rs -->\n";
const END: &str = "<!-- end of settings table -->\n";

/// The settings table, as Markdown.
pub(super) fn table(command: &Command) -> String {
    let mut table =
        String::from("| variable | TOML key | default | meaning |\n| --- | --- | --- | --- |\n");
    for row in table_rows(command) {
        let cells: Vec<String> = row.iter().map(|cell| cell.replace('|', "\\|")).collect();
        table.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    table
}

/// `readme` with `table` between the markers; `None` without them.
pub(super) fn with_table(readme: &str, table: &str) -> Option<String> {
    let (before, rest) = readme.split_once(BEGIN)?;
    let (_, after) = rest.split_once(END)?;
    Some(format!("{before}{BEGIN}{table}{END}{after}"))
}
