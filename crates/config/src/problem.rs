//! What validation hands back: problems that stop startup, and warnings that do not.
//!
//! A problem always names the variable, says what is wrong and says what would have been
//! accepted, so an operator can fix every mistake in one edit instead of one restart per
//! mistake. Problem text never repeats a secret value; at most it says how long it was.

use std::fmt;

/// One thing wrong with the configuration.
///
/// Displays as `{variable}: {problem} (expected {expected})`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem} (expected {expected})")]
pub struct ConfigProblem {
    /// The environment variable at fault, as the operator spelled it (a deprecated name
    /// if that is the one that was set).
    pub variable: String,
    /// What is wrong. For keyed variables this starts with the key, e.g. `window: ...`.
    pub problem: String,
    /// What would have been accepted.
    pub expected: String,
}

impl ConfigProblem {
    /// Builds a problem from anything string-like.
    pub fn new(
        variable: impl Into<String>,
        problem: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        Self {
            variable: variable.into(),
            problem: problem.into(),
            expected: expected.into(),
        }
    }
}

/// Every problem found in one validation pass. Never empty when returned as an error.
///
/// Displays as one line per problem, in the order the variables are documented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The problems, one per mistake.
    pub problems: Vec<ConfigProblem>,
}

impl ConfigErrors {
    /// The process exit status gekko binaries use for bad configuration: `EX_USAGE` (64)
    /// from `sysexits.h`.
    pub const EXIT_CODE: u8 = 64;

    /// The report a binary prints on stderr before exiting 64: a header naming the
    /// program and the count, then one indented line per problem.
    #[must_use]
    pub fn render(&self, program: &str) -> String {
        let mut out = format!(
            "{program}: invalid configuration ({} problems):\n",
            self.problems.len()
        );
        for p in &self.problems {
            out.push_str(&format!("  - {p}\n"));
        }
        out
    }

    /// Whether a problem names `variable`.
    #[must_use]
    pub fn mentions(&self, variable: &str) -> bool {
        self.problems.iter().any(|p| p.variable == variable)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Something that did not stop the load but that the operator should fix, such as a
/// deprecated variable name.
///
/// Displays as `{variable}: {message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The variable the warning is about.
    pub variable: String,
    /// What to do about it.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

/// Collects problems during one pass; turned into [`ConfigErrors`] at the end.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<ConfigProblem>,
}

impl Problems {
    /// Records a problem.
    pub(crate) fn push(
        &mut self,
        variable: &str,
        problem: impl Into<String>,
        expected: impl Into<String>,
    ) {
        self.list
            .push(ConfigProblem::new(variable, problem, expected));
    }

    /// How many problems so far; used to tell whether a step added any.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// `Ok(value)` if nothing was recorded, otherwise every problem.
    pub(crate) fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.list.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors {
                problems: self.list,
            })
        }
    }
}
