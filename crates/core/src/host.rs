//! This machine's host name, for identities that other processes resolve or read (a
//! gateway replica's advertised address, a replica's audit stream).

/// The host name: `/proc/sys/kernel/hostname`, else `HOSTNAME`, trimmed; `None` when
/// neither names one. In a container it is what compose's DNS resolves the container by.
#[must_use]
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}
