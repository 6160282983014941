//! Process-wide memory behaviour: the allocator settings that keep the resident set of a long
//! backfill as flat as its heap. Call [`tune_allocator`] once, first thing in `main`.
//!
//! glibc's malloc raises its mmap threshold each time a large block is freed (up to 32 MiB), so
//! after the first multi-megabyte response body, later bodies and Arrow buffers are carved from
//! the heap arenas instead of being mapped and unmapped; freed holes then stay resident, and each
//! worker thread may get its own arena. Over a 90-day backfill that added tens of megabytes of
//! RSS with an unchanged heap. A fixed threshold (large blocks always come from `mmap` and go
//! back to the kernel on free) and a single arena remove that growth: measured with
//! `benches/run.sh`, the 90-day peak went from 1.2-1.25x to 1.15x the 1-day peak. Other
//! allocators (musl, macOS) are left alone.

/// Blocks at least this large are always `mmap`ped (and returned to the kernel on free).
pub const MMAP_THRESHOLD_BYTES: i32 = 128 * 1024;
/// Upper bound on glibc malloc arenas. One: every thread reuses the same freed blocks, so a
/// 90-day UserStatus backfill peaks within 1.2x of one day (two or four arenas: 1.36x). The
/// price is lock contention while the blocking pool decodes and the workers encode: 15% of a
/// Call Details backfill's profile samples; `MALLOC_ARENA_MAX=4` cuts its CPU by about a third
/// on two cores for a few MB (measured in docs/performance.md, "One malloc arena").
pub const MAX_ARENAS: i32 = 1;

/// Apply the settings above, unless the operator set them through glibc's own environment
/// variables (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_ARENA_MAX`), which then win.
/// Returns `false` if glibc refused a setting (the process then runs with its defaults).
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut accepted = true;
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: mallopt only adjusts allocator parameters (it returns 0 on a rejected
            // value and changes nothing); the values are within glibc's documented ranges.
            accepted &= unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) } == 1;
        }
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: as above.
            accepted &= unsafe { libc::mallopt(libc::M_ARENA_MAX, MAX_ARENAS) } == 1;
        }
        accepted
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_settings() {
        // mallopt returns 0 for a parameter or value it rejects; this fails if either is refused.
        assert!(super::tune_allocator());
    }
}
