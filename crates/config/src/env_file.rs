//! Layering an optional `.env` file under the process environment.
//!
//! The file only fills gaps: a variable set (non-blank) in the process environment always
//! wins, so a one-off `FOO=x gekko ...` overrides a checked-in `.env`. The file is parsed
//! with `dotenvy` into a map and never written into the process environment, which keeps
//! loading free of global side effects (and lets tests run in parallel).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::problem::ConfigProblem;
use crate::sealed::{self, Key};
use crate::vars::names;
use crate::{ConfigErrors, Loaded};

/// The key `ENCRYPTION_SETTINGS` in `vars` names, for opening a sealed env file: `None`
/// when it names none, `Err` (why, without key material) when it cannot be used (the key
/// file is unreadable or malformed). A malformed `ENCRYPTION_SETTINGS` is reported in full
/// by validation; here it only means "no usable key".
pub fn sealing_key(vars: &BTreeMap<String, String>) -> Option<Result<Key, String>> {
    let (view, _) = crate::vars::Vars::new(vars);
    let mut problems = crate::problem::Problems::default();
    let settings = crate::loader::encryption(&view, &mut problems);
    if problems.into_result(()).is_err() {
        return Some(Err(format!("{} is invalid", names::ENCRYPTION_SETTINGS)));
    }
    Key::from_settings(&settings)
        .map_err(|e| e.to_string())
        .transpose()
}

/// Reads the env file at `path` (sealed or plain) into a map of its variables, without
/// the process environment and without validating them. `key` opens a sealed file.
///
/// # Errors
/// Every problem with the file, under the variable `label`: unreadable, a line that does
/// not parse, a sealed file with no key or one that cannot be opened.
pub fn read_env_file(
    path: &Path,
    label: &str,
    key: Option<&Key>,
) -> Result<BTreeMap<String, String>, ConfigErrors> {
    let mut vars = BTreeMap::new();
    let problems = merge_env_file(path, label, &mut vars, key.map(Ok));
    if problems.is_empty() {
        Ok(vars)
    } else {
        Err(ConfigErrors { problems })
    }
}

const FILE_FORM: &str = "a readable .env file of KEY=value lines";

/// Adds the variables of the `.env` file at `path` to `vars` where `vars` has no non-blank
/// value. `label` names the source in problems (`GEKKO_ENV_FILE` or `.env`).
///
/// A line that does not parse is reported by number only, since it may hold a secret.
///
/// A sealed file ([`crate::sealed`]) is opened with `key` first; when there is no key, or
/// it cannot be opened (wrong key, tampered, truncated), that is the one problem and no
/// variable of the file is used: nothing runs with part of its secrets.
pub(crate) fn merge_env_file(
    path: &Path,
    label: &str,
    vars: &mut BTreeMap<String, String>,
    key: Option<Result<&Key, &str>>,
) -> Vec<ConfigProblem> {
    let content = match std::fs::read_to_string(path) {
        Ok(content) => content,
        Err(e) => {
            return vec![ConfigProblem::new(
                label,
                format!("{} could not be read: {e}", path.display()),
                FILE_FORM,
            )];
        }
    };
    let content = if sealed::is_sealed(&content) {
        let opened = match key {
            None => Err(format!(
                "{} is sealed, but {} names no key",
                path.display(),
                names::ENCRYPTION_SETTINGS
            )),
            Some(Err(why)) => Err(format!(
                "{} is sealed, but its key is unusable: {why}",
                path.display()
            )),
            Some(Ok(key)) => sealed::unseal(&content, key)
                .map_err(|e| format!("{} cannot be unsealed: {e}", path.display())),
        };
        match opened {
            Ok(plain) => Zeroizing::new(plain),
            Err(why) => {
                return vec![ConfigProblem::new(
                    label,
                    why,
                    "a sealed file (`gekko secrets seal`) opened by ENCRYPTION_SETTINGS key= or key_file=",
                )];
            }
        }
    } else {
        Zeroizing::new(content)
    };
    let mut problems = Vec::new();
    for item in dotenvy::from_read_iter(content.as_bytes()) {
        match item {
            Ok((key, value)) => {
                let unset = vars.get(&key).is_none_or(|v| v.trim().is_empty());
                if unset {
                    vars.insert(key, value);
                }
            }
            Err(dotenvy::Error::LineParse(line, _)) => {
                let line = line.trim_end_matches(['\r', '\n']);
                let at = content
                    .lines()
                    .position(|l| l == line)
                    .map_or_else(|| "a line".to_owned(), |i| format!("line {}", i + 1));
                problems.push(ConfigProblem::new(
                    label,
                    format!(
                        "{}: {at} could not be parsed (not shown: it may hold a secret)",
                        path.display()
                    ),
                    FILE_FORM,
                ));
            }
            Err(e) => {
                problems.push(ConfigProblem::new(
                    label,
                    format!("{} could not be read: {e}", path.display()),
                    FILE_FORM,
                ));
                break;
            }
        }
    }
    problems
}

/// Layers the `.env` file (named by `GEKKO_ENV_FILE` in `vars`, else `default_file` if it
/// exists) under `vars`, then validates. `early` holds problems found while collecting
/// `vars`; they are reported first, together with everything validation finds.
#[cfg(test)]
pub(crate) fn load_layered(
    vars: BTreeMap<String, String>,
    early: Vec<ConfigProblem>,
    default_file: &Path,
) -> Result<Loaded, ConfigErrors> {
    load_layered_with(vars, early, default_file, &BTreeMap::new())
}

/// [`load_layered`], then `served` (variables from configd, `CONFIG_SERVICE`) layered on
/// top. A served variable that is already set here to a different value is a problem:
/// which one would win is not obvious, so neither does.
pub(crate) fn load_layered_with(
    mut vars: BTreeMap<String, String>,
    early: Vec<ConfigProblem>,
    default_file: &Path,
    served: &BTreeMap<String, String>,
) -> Result<Loaded, ConfigErrors> {
    let mut problems = early;
    let named = vars
        .get(names::GEKKO_ENV_FILE)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    match named {
        Some(path) if !path.is_file() => problems.push(ConfigProblem::new(
            names::GEKKO_ENV_FILE,
            format!("{} does not exist or is not a file", path.display()),
            "the path of an existing .env file, or unset",
        )),
        Some(path) => {
            let key = sealing_key(&vars);
            let key = key.as_ref().map(|k| k.as_ref().map_err(String::as_str));
            problems.extend(merge_env_file(&path, names::GEKKO_ENV_FILE, &mut vars, key));
        }
        None if default_file.is_file() => {
            let key = sealing_key(&vars);
            let key = key.as_ref().map(|k| k.as_ref().map_err(String::as_str));
            problems.extend(merge_env_file(default_file, ".env", &mut vars, key));
        }
        None => {}
    }
    for (name, value) in served {
        let own = vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        if own.is_some_and(|v| v != value.trim()) {
            problems.push(ConfigProblem::new(
                name.clone(),
                "is set in this service's environment to another value than configd serves \
                 (CONFIG_SERVICE)",
                "one source for each credential: remove it from this service's environment",
            ));
        } else {
            vars.insert(name.clone(), value.clone());
        }
    }
    match crate::from_vars(&vars) {
        Ok(loaded) if problems.is_empty() => Ok(loaded),
        Ok(_) => Err(ConfigErrors { problems }),
        Err(more) => {
            problems.extend(more.problems);
            Err(ConfigErrors { problems })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A file under the temp dir with a name unique to this process and call.
    fn temp_file(contents: &str) -> PathBuf {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "gekko-config-test-{}-{}.env",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).expect("temp dir is writable");
        path
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn env_file_fills_gaps_and_process_env_wins() {
        let path = temp_file(
            "# comment\nREDIS_URL=redis://from-file:6379\nSUPPORTED_TRADING_PAIRS=\"BTC-USD,EUR-USD\"\nPOSITION_LIMITS=EUR-USD=1000\n",
        );
        let base = map(&[
            ("GEKKO_ENV_FILE", path.to_str().expect("utf-8 temp path")),
            ("REDIS_URL", "redis://from-process:6379"),
        ]);
        let loaded = load_layered(base, Vec::new(), Path::new("/nonexistent/.env"));
        std::fs::remove_file(&path).ok();
        let config = loaded.expect("valid").config;
        assert_eq!(
            config.redis_url.as_deref(),
            Some("redis://from-process:6379")
        );
        assert_eq!(config.supported_trading_pairs.len(), 2);
        assert_eq!(config.position_limits.len(), 1);
    }

    #[test]
    fn default_file_is_used_when_present() {
        let path = temp_file("REDIS_URL=redis://default-file\n");
        let loaded = load_layered(BTreeMap::new(), Vec::new(), &path);
        std::fs::remove_file(&path).ok();
        assert_eq!(
            loaded.expect("valid").config.redis_url.as_deref(),
            Some("redis://default-file")
        );
    }

    #[test]
    fn missing_named_file_is_a_problem_alongside_others() {
        let base = map(&[
            ("GEKKO_ENV_FILE", "/nonexistent/gekko-test.env"),
            ("REDIS_URL", "http://nope"),
        ]);
        let err = load_layered(base, Vec::new(), Path::new("/nonexistent/.env"))
            .expect_err("two problems");
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(err.mentions("GEKKO_ENV_FILE") && err.mentions("REDIS_URL"));
    }

    #[test]
    fn a_sealed_env_file_is_opened_with_the_configured_key_or_refused_whole() {
        let key = Key::generate();
        let path = temp_file(&sealed::seal(
            "REDIS_URL=redis://sealed:6379\nPOSITION_LIMITS=BTC-USD=1\n",
            &key,
        ));
        let file = path.to_str().expect("utf-8 temp path");
        let with_key = map(&[
            ("GEKKO_ENV_FILE", file),
            (
                "ENCRYPTION_SETTINGS",
                &format!("key={}", key.to_hex().as_str()),
            ),
        ]);
        let loaded = load_layered(with_key, Vec::new(), Path::new("/nonexistent/.env"));
        let other = Key::generate();
        let wrong = map(&[
            ("GEKKO_ENV_FILE", file),
            (
                "ENCRYPTION_SETTINGS",
                &format!("key={}", other.to_hex().as_str()),
            ),
        ]);
        let refused = load_layered(wrong, Vec::new(), Path::new("/nonexistent/.env"));
        let no_key = load_layered(
            map(&[("GEKKO_ENV_FILE", file)]),
            Vec::new(),
            Path::new("/x"),
        );
        std::fs::remove_file(&path).ok();
        let config = loaded.expect("opens").config;
        assert_eq!(config.redis_url.as_deref(), Some("redis://sealed:6379"));
        // The file is refused whole: one problem, naming the cause.
        let e = refused.expect_err("wrong key");
        assert_eq!(e.problems.len(), 1, "{e}");
        assert!(e.to_string().contains("wrong key"), "{e}");
        let e = no_key.expect_err("no key");
        assert!(e.to_string().contains("names no key"), "{e}");
    }

    #[test]
    fn bad_lines_are_reported_without_their_content() {
        let path = temp_file("GOOD=1\nBAD LINE hunter2\n");
        let base = map(&[("GEKKO_ENV_FILE", path.to_str().expect("utf-8 temp path"))]);
        let err =
            load_layered(base, Vec::new(), Path::new("/nonexistent/.env")).expect_err("bad line");
        std::fs::remove_file(&path).ok();
        let text = err.to_string();
        assert!(
            text.contains("line 2") && !text.contains("hunter2"),
            "{text}"
        );
    }
}
