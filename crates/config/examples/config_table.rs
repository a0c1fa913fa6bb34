//! Prints the variable table that `docs/configuration.md` embeds.
//!
//! Regenerate the docs after changing a variable: run
//! `cargo run -p gekko-config --example config_table` and paste the output over the table.

fn main() {
    print!("{}", gekko_config::markdown_table());
}
