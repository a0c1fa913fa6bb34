//! `gekko token new`: makes an API token, prints it once, and prints the `tokens=` entry
//! that configures it (its SHA-256, never the token itself).

use clap::{Args, Subcommand, ValueEnum};
use gekko_security::Role;
use secrecy::ExposeSecret as _;

use crate::exit::Exit;

/// `gekko token …`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a fresh random token; it is shown once and never stored.
    New {
        /// What the token may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Its name in config, audit records and `allowed_clients` (default: the role).
        #[arg(long)]
        name: Option<String>,
        /// Also make a TOTP secret: admin actions then need a code from an authenticator.
        #[arg(long)]
        totp: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Viewer,
    Trader,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Viewer => Self::Viewer,
            RoleArg::Trader => Self::Trader,
            RoleArg::Admin => Self::Admin,
        }
    }
}

/// Runs `gekko token …`.
pub(crate) fn run(args: &TokenArgs) -> Exit {
    let TokenCommand::New { role, name, totp } = &args.command;
    let role = Role::from(*role);
    let name = name.clone().unwrap_or_else(|| role.to_string());
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        eprintln!("gekko: --name must be letters, digits, `_`, `-` and `.`");
        return Exit::Config;
    }
    let new = gekko_security::generate_token(&name, role, *totp);
    println!("token (shown once; store it now, gekko keeps only its hash):");
    println!("  {}", new.token.expose_secret());
    println!();
    println!("add this entry to ACCESS_CONTROL_CONFIG tokens= (entries are `;`-separated):");
    println!("  tokens={}", new.config_entry());
    if let Some(secret) = &new.totp_secret {
        println!();
        println!("TOTP secret (import it into an authenticator app):");
        println!("  {}", secret.expose_secret());
        println!(
            "  {}",
            gekko_security::totp::otpauth_uri("gekko", &name, secret.expose_secret())
        );
        println!("admin actions then need the current code in the x-gekko-totp header.");
    }
    Exit::Ok
}
