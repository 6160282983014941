//! The standard `process_*` metrics, read from the operating system at each render:
//! `process_start_time_seconds`, `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`. On Linux they come
//! from `/proc/self/{stat,status,fd,limits}` and `/proc/stat`; elsewhere only the start time is
//! emitted (the time the first registry of the process was created). A value that cannot be
//! read is left out of that scrape rather than reported as 0.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What one scrape could read; `None` where the platform or `/proc` gave nothing.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct ProcessSample {
    pub start_time_seconds: Option<f64>,
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

/// Registered once per [`super::Metrics`]; samples the process on every encode.
#[derive(Debug)]
pub(super) struct ProcessCollector;

impl ProcessCollector {
    pub(super) fn new() -> ProcessCollector {
        // Fix the fallback start time no later than the first registry's creation.
        first_registry_time();
        ProcessCollector
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = sample();
        if let Some(v) = s.start_time_seconds {
            let m = ConstGauge::new(v);
            let help = "Start time of the process since the Unix epoch in seconds.";
            m.encode(encoder.encode_descriptor(
                "process_start_time_seconds",
                help,
                None,
                m.metric_type(),
            )?)?;
        }
        if let Some(v) = s.cpu_seconds {
            let m = ConstCounter::new(v);
            let help = "Total user and system CPU time spent in seconds.";
            // The encoder appends `_total` to counters.
            m.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                help,
                None,
                m.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                s.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                s.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                s.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors (soft limit).",
                s.max_fds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let m = ConstGauge::new(v);
                m.encode(encoder.encode_descriptor(name, help, None, m.metric_type())?)?;
            }
        }
        Ok(())
    }
}

/// Unix time at which the first registry of this process was created (the start time where
/// the operating system does not tell it).
fn first_registry_time() -> f64 {
    static FIRST: OnceLock<f64> = OnceLock::new();
    *FIRST.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    })
}

#[cfg(target_os = "linux")]
pub(super) fn sample() -> ProcessSample {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let ticks = ticks_per_second();
    let stat = read("/proc/self/stat").and_then(|s| parse_stat(&s));
    let boot_time = read("/proc/stat").and_then(|s| parse_boot_time(&s));
    let start_time_seconds = match (stat, boot_time) {
        (Some(st), Some(boot)) => Some(boot + st.start_ticks as f64 / ticks),
        _ => Some(first_registry_time()),
    };
    ProcessSample {
        start_time_seconds,
        cpu_seconds: stat.map(|st| (st.utime_ticks + st.stime_ticks) as f64 / ticks),
        resident_bytes: read("/proc/self/status")
            .and_then(|s| parse_status_kib(&s, "VmRSS:"))
            .map(|kib| kib * 1024),
        virtual_bytes: stat.map(|st| st.vsize_bytes),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.filter(|e| e.is_ok()).count() as u64),
        max_fds: read("/proc/self/limits").and_then(|s| parse_max_open_files(&s)),
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn sample() -> ProcessSample {
    ProcessSample {
        start_time_seconds: Some(first_registry_time()),
        ..ProcessSample::default()
    }
}

/// Clock ticks per second of the times in `/proc/self/stat`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf takes an integer name and returns an integer; no memory is shared.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as f64
    } else {
        100.0
    }
}

/// Clock ticks per second of the times in `/proc/self/stat`: the kernel's USER_HZ, 100 on
/// every architecture Rust targets with Linux.
#[cfg(all(target_os = "linux", not(target_env = "gnu")))]
fn ticks_per_second() -> f64 {
    100.0
}

/// The fields used from `/proc/self/stat`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Stat {
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub start_ticks: u64,
    pub vsize_bytes: u64,
}

/// Parse `/proc/self/stat` (`proc(5)`): fields 14 utime, 15 stime, 22 starttime (clock ticks
/// after boot), 23 vsize (bytes). The command name (field 2) may hold spaces and parentheses,
/// so counting starts after its last `)`.
pub(super) fn parse_stat(text: &str) -> Option<Stat> {
    let after_comm = &text[text.rfind(')')? + 1..];
    // Index 0 is field 3 (state).
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime_ticks: field(14)?,
        stime_ticks: field(15)?,
        start_ticks: field(22)?,
        vsize_bytes: field(23)?,
    })
}

/// Boot time (`btime` line of `/proc/stat`), Unix seconds.
pub(super) fn parse_boot_time(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|v| v as f64)
}

/// A `kB` line of `/proc/self/status`, e.g. `VmRSS:     1234 kB`.
pub(super) fn parse_status_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Soft limit of the `Max open files` line of `/proc/self/limits` (`None` if unlimited).
pub(super) fn parse_max_open_files(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shaped like proc(5) documents it; the command name holds a space and a parenthesis.
    const STAT: &str = "4242 (smart) export) R 1 4242 4242 0 -1 4194560 1523 0 0 0 \
        250 75 0 0 20 0 9 0 123456 987654321 4321 18446744073709551615 1 1 0 0 0 0 0 0 0 \
        0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        assert_eq!(
            parse_stat(STAT),
            Some(Stat {
                utime_ticks: 250,
                stime_ticks: 75,
                start_ticks: 123456,
                vsize_bytes: 987654321,
            })
        );
        assert_eq!(parse_stat("1 (x) R 1 2"), None);
    }

    #[test]
    fn boot_time_status_and_limits_lines_are_read() {
        let stat = "cpu  1 2 3 4\nintr 5\nbtime 1700000000\nprocesses 9\n";
        assert_eq!(parse_boot_time(stat), Some(1_700_000_000.0));
        let status = "Name:\tx\nVmSize:\t  20000 kB\nVmRSS:\t    5120 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(5120));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
            Max processes             63452                63452                processes\n\
            Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_max_open_files(unlimited), None);
    }
}
