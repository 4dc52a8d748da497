//! Allocator tuning every xnai binary applies at start. Object streams decode into a fresh
//! buffer per 1 MiB chunk; with glibc's defaults each such buffer is mmapped and unmapped (or
//! the heap top trimmed) over and over, so every chunk pays page faults and kernel zeroing
//! again, which costs about a third of a 100 MiB transfer. Keeping buffers up to 32 MiB on the
//! heap and up to 64 MiB of freed heap before trimming lets them be reused; the price is at
//! most that much idle memory per process after a burst.

/// Allocations at or above this size are mmapped on their own.
pub const MMAP_THRESHOLD: i32 = 32 << 20;
/// Freed memory at the heap top kept before it is returned to the OS.
pub const TRIM_THRESHOLD: i32 = 64 << 20;

/// Apply the tuning (glibc on Linux; elsewhere nothing). Call once, first thing in `main`.
pub fn tune_for_object_streams() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
    // exists and has no memory-safety preconditions.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
