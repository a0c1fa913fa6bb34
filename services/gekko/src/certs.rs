//! `gekko certs dev`: a local CA plus server and client certificates for compose and
//! tests, with the config entries that use them.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::exit::Exit;

/// `gekko certs …`.
#[derive(Debug, Args)]
pub(crate) struct CertsArgs {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Make a development CA, a server certificate for localhost and every compose
    /// service, and a client certificate (keys written 0600).
    Dev {
        /// The directory to write them to (created if missing).
        #[arg(long, default_value = "certs")]
        out: PathBuf,
    },
}

/// Runs `gekko certs …`.
pub(crate) fn run(args: &CertsArgs) -> Exit {
    let CertsCommand::Dev { out } = &args.command;
    match gekko_security::certs::dev_certs(out) {
        Ok(files) => {
            println!("wrote {}:", out.display());
            for (what, path) in [
                ("CA certificate", &files.ca_cert),
                ("CA key (0600)", &files.ca_key),
                ("server certificate", &files.server_cert),
                ("server key (0600)", &files.server_key),
                ("client certificate", &files.client_cert),
                ("client key (0600)", &files.client_key),
            ] {
                println!("  {what:<20} {}", path.display());
            }
            println!();
            println!(
                "server names: {}",
                gekko_security::certs::SERVER_NAMES.join(", ")
            );
            println!();
            println!("TLS with client certificates (mTLS), in ACCESS_CONTROL_CONFIG:");
            println!("  {}", files.config_entries());
            println!(
                "TLS only: drop tls_client_ca. Clients trust {}.",
                files.ca_cert.display()
            );
            Exit::Ok
        }
        Err(e) => {
            eprintln!("gekko: certs dev: {e}");
            Exit::Unavailable
        }
    }
}
