//! Process exit codes, after `sysexits.h`.

/// How `gekko` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything went as asked.
    Ok,
    /// `check` found at least one failing check.
    CheckFailed,
    /// Invalid configuration (EX_USAGE).
    Config,
    /// A required resource is unavailable, e.g. a port is taken (EX_UNAVAILABLE).
    Unavailable,
    /// An internal error (EX_SOFTWARE).
    Internal,
    /// The server refused the credentials (EX_NOPERM).
    NoPermission,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(match e {
            Exit::Ok => 0,
            Exit::CheckFailed => 1,
            Exit::Config => 64,
            Exit::Unavailable => 69,
            Exit::Internal => 70,
            Exit::NoPermission => 77,
        })
    }
}

impl From<gekko_runtime::Exit> for Exit {
    fn from(e: gekko_runtime::Exit) -> Self {
        match e {
            gekko_runtime::Exit::Ok => Self::Ok,
            gekko_runtime::Exit::Config => Self::Config,
            gekko_runtime::Exit::Unavailable => Self::Unavailable,
            gekko_runtime::Exit::Internal => Self::Internal,
        }
    }
}
