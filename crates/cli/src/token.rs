//! `panorama token create|revoke|list`: API tokens for the HTTP API.

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};
use panorama_core::Role;
use panorama_store::Store;

/// What `panorama token` does.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token and print its secret once, on stdout.
    Create {
        /// What the token may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A name to revoke it by later (one live token per name), e.g. desk-12.
        #[arg(long)]
        name: String,
        /// For a channel token: the source its events carry (they may also
        /// use sources under it, `crm.billing`); default: its name.
        #[arg(long)]
        source: Option<String>,
    },
    /// Revoke the live token with this name; fails when there is none.
    Revoke {
        /// The token's name.
        #[arg(long)]
        name: String,
    },
    /// List the live tokens: name, role, source, created, last used (never
    /// secrets).
    List,
}

/// A token role on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum RoleArg {
    /// Customer reads (agent desktops).
    Agent,
    /// Posting events (channel systems).
    Channel,
    /// Everything.
    Admin,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Agent => Role::Agent,
            RoleArg::Channel => Role::Channel,
            RoleArg::Admin => Role::Admin,
        }
    }
}

const SCHEMA_HINT: &str = "is the database reachable and migrated (`panorama migrate`)?";

pub(crate) async fn run(command: TokenCommand, database_url: &str) -> anyhow::Result<()> {
    let store = Store::connect(database_url, 1)?;
    match command {
        TokenCommand::Create { role, name, source } => {
            let created = store
                .create_token_with_source(&name, role.into(), source.as_deref())
                .await;
            let (info, secret) = match created {
                Ok(created) => created,
                Err(
                    error @ (panorama_store::Error::TokenNameTaken(_)
                    | panorama_store::Error::InvalidTokenName(_)
                    | panorama_store::Error::InvalidTokenSource(_)),
                ) => bail!(error),
                Err(error) => return Err(error).context(SCHEMA_HINT),
            };
            println!("{}", secret.expose());
            eprintln!(
                "created {} token \"{}\": the line above is its secret, shown only this once; send it as `Authorization: Bearer <secret>`",
                info.role, info.name
            );
            if let Some(source) = &info.source {
                eprintln!(
                    "its events carry the source \"{source}\" (or one under it, \"{source}.<name>\")"
                );
            }
        }
        TokenCommand::Revoke { name } => {
            if !store.revoke_token(&name).await.context(SCHEMA_HINT)? {
                bail!("no live token named \"{name}\"");
            }
            eprintln!("revoked token \"{name}\"");
        }
        TokenCommand::List => {
            let tokens = store.list_tokens().await.context(SCHEMA_HINT)?;
            let rows: Vec<[String; 5]> = tokens
                .iter()
                .map(|token| {
                    [
                        token.name.clone(),
                        token.role.to_string(),
                        token.source.clone().unwrap_or_else(|| "-".to_owned()),
                        token.created_at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
                        token.last_used_at.map_or_else(
                            || "never".to_owned(),
                            |at| at.format("%Y-%m-%d %H:%MZ").to_string(),
                        ),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(["NAME", "ROLE", "SOURCE", "CREATED", "LAST USED"], &rows)
            );
        }
    }
    Ok(())
}

/// Left-aligned columns, two spaces apart.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; N]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in rows {
        line(row.each_ref().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let rows = [[
            "desk-12".to_owned(),
            "agent".to_owned(),
            "2026-01-01 10:00:00Z".to_owned(),
            "never".to_owned(),
        ]];
        let text = table(["NAME", "ROLE", "CREATED", "LAST USED"], &rows);
        assert_eq!(
            text,
            "NAME     ROLE   CREATED               LAST USED\n\
             desk-12  agent  2026-01-01 10:00:00Z  never\n"
        );
    }
}
