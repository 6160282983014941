//! Who holds a lease, as far as this process can tell: our [`Identity`] (host, pid, boot id,
//! PID namespace) and the [`Liveness`] of a holder (alive, gone, or not visible from here), plus
//! the ids of the leases this very process holds.

use super::Holder;

/// Who is asking for a lease: this host and process ([`Identity::current`]). The boot id and
/// PID namespace tell whether a holder's pid can be looked up in our `/proc` (see [`liveness`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub host: String,
    pub pid: u32,
    /// `None` when unreadable (not Linux).
    pub boot_id: Option<String>,
    /// `None` when unreadable (not Linux).
    pub pid_ns: Option<String>,
}

impl Identity {
    /// This host, boot, PID namespace and process.
    pub fn current() -> Identity {
        Identity {
            host: host_name(),
            pid: std::process::id(),
            boot_id: boot_id(),
            pid_ns: pid_namespace(),
        }
    }
}

/// This machine's host name (for messages naming a holder).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_string())
}

/// This boot of the kernel (random per boot, shared by all containers of the machine).
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Our PID namespace as the kernel names it, e.g. `pid:[4026531836]`.
fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    link.to_str().map(str::to_string)
}

/// What this process can know about a holder of an unexpired lease (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Liveness {
    /// Certainly running: refuse.
    Alive,
    /// Certainly not running: take over.
    Gone,
    /// Not visible from here: watch for a renewal.
    Unknown,
}

/// Ids of the leases this process holds: a holder with our pid is one of ours only if listed.
static OURS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

pub(super) fn ours() -> std::sync::MutexGuard<'static, Vec<String>> {
    // A panic while holding this lock cannot leave the list inconsistent (push/retain only).
    OURS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`Liveness`] of `holder` as seen by `me`.
pub(super) fn liveness(holder: &Holder, me: &Identity) -> Liveness {
    if !same_pid_namespace(holder, me) {
        return Liveness::Unknown;
    }
    if holder.pid == me.pid {
        // We hold that pid: the holder is a previous process, or a lease of ours.
        return match ours().contains(&holder.id) {
            true => Liveness::Alive,
            false => Liveness::Gone,
        };
    }
    match pid_exists(holder.pid) {
        true => Liveness::Alive,
        false => Liveness::Gone,
    }
}

/// Whether the holder's pid means the same process in our `/proc`: same host name, and boot id
/// and PID namespace both known and equal to ours. Should the kernel have reused the inode of
/// the holder's destroyed namespace for ours, every process of that namespace is dead, so
/// treating the holder as gone is still right.
fn same_pid_namespace(holder: &Holder, me: &Identity) -> bool {
    let known_equal =
        |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a == b);
    holder.host == me.host
        && known_equal(&holder.boot_id, &me.boot_id)
        && known_equal(&holder.pid_ns, &me.pid_ns)
}

/// Whether a process with this pid exists in our PID namespace (a zombie counts as existing).
/// `kill(pid, 0)` sends nothing; only ESRCH means no such process (EPERM: another user's).
pub(super) fn pid_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 performs only the existence and permission checks.
    let answer = unsafe { libc::kill(pid, 0) };
    answer == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Records `id` as a lease id of this process.
pub(super) fn remember(id: &str) {
    ours().push(id.to_string());
}

/// Forgets the lease id `id` of this process.
pub(super) fn forget(id: &str) {
    ours().retain(|o| o != id);
}
