//! configd's own flat settings, `CONFIGD_*`, read with `envy`.
//!
//! `envy` stops at the first error it meets, while gekko reports every problem at once. So
//! envy only collects the variables into `Option<String>` fields (that cannot fail for a
//! UTF-8 environment), and [`ConfigdSettings::from_raw`] validates every field, listing
//! every problem.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The default debounce of the env file watcher.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(300);

/// `CONFIGD_*` as envy reads them: every field a string, so envy itself never fails on a
/// value.
#[derive(Debug, Default, Deserialize)]
pub struct RawSettings {
    /// `CONFIGD_ENV_FILE`: the env file configd serves and watches.
    pub env_file: Option<String>,
    /// `CONFIGD_DEBOUNCE_MS`: how long the file must be quiet before a reload.
    pub debounce_ms: Option<String>,
}

/// configd's validated settings.
#[derive(Debug, Clone)]
pub struct ConfigdSettings {
    /// The env file (plain or sealed) that is the configuration's source.
    pub env_file: PathBuf,
    /// The watcher's debounce.
    pub debounce: Duration,
}

impl ConfigdSettings {
    /// Reads `CONFIGD_*` from the process environment.
    ///
    /// # Errors
    /// Every problem, one line each, naming the variable.
    pub fn from_env() -> Result<Self, Vec<String>> {
        match envy::prefixed("CONFIGD_").from_env::<RawSettings>() {
            Ok(raw) => Self::from_raw(raw),
            Err(e) => Err(vec![format!("CONFIGD_*: {e}")]),
        }
    }

    /// Validates the raw fields.
    ///
    /// # Errors
    /// Every problem, one line each, naming the variable.
    pub fn from_raw(raw: RawSettings) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let env_file = match raw.env_file.as_deref().map(str::trim) {
            Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
            _ => {
                problems.push(
                    "CONFIGD_ENV_FILE: is not set (expected the path of the env file configd serves, plain or sealed)"
                        .to_owned(),
                );
                None
            }
        };
        let debounce = match raw.debounce_ms.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_DEBOUNCE,
            Some(v) => match v.parse::<u64>() {
                Ok(ms) if (10..=60_000).contains(&ms) => Duration::from_millis(ms),
                _ => {
                    problems.push(format!(
                        "CONFIGD_DEBOUNCE_MS: `{}` is not a number of milliseconds from 10 to 60000",
                        v.chars().take(40).collect::<String>()
                    ));
                    DEFAULT_DEBOUNCE
                }
            },
        };
        match env_file {
            Some(env_file) if problems.is_empty() => Ok(Self { env_file, debounce }),
            _ => Err(problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported() {
        let err = ConfigdSettings::from_raw(RawSettings {
            env_file: None,
            debounce_ms: Some("soon".to_owned()),
        })
        .expect_err("two problems");
        assert_eq!(err.len(), 2, "{err:?}");
        assert!(
            err[0].starts_with("CONFIGD_ENV_FILE") && err[1].starts_with("CONFIGD_DEBOUNCE_MS")
        );
        let ok = ConfigdSettings::from_raw(RawSettings {
            env_file: Some("/etc/gekko.env".to_owned()),
            debounce_ms: None,
        })
        .expect("valid");
        assert_eq!(ok.debounce, DEFAULT_DEBOUNCE);
    }
}
