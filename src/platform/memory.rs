//! What the process keeps of memory it has freed. glibc's allocator keeps freed memory in
//! its arenas (one per thread that allocated, up to eight per core) for reuse; after
//! start-up, a burst of requests or a large document it stays resident until something asks
//! for it back. These two calls keep an idle server small; both are no-ops off glibc.

use std::time::Duration;

use super::jobs::Job;

/// Large blocks get a mapping of their own, unmapped when freed. glibc raises its mmap
/// threshold each time a large block is freed (up to 32 MiB), after which argon2's 19 MiB
/// working memory of every sign-in, and an image decode's buffers, came from the heap and
/// stayed resident: RSS grew by 20 MiB at the first sign-in. Call before any thread starts.
pub fn map_large_blocks_apart() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; the caller has started no thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Returns the free pages of every arena to the kernel (`malloc_trim`). Measured on an idle
/// all-features server just started: 41.6 → 34.7 MiB RSS, the anonymous part 17 → 8.7 MiB.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes each arena's lock; it is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// `give_back` every ten seconds: so an idle server is small soon after start-up, and returns
/// to it after a burst. A trim of a quiet heap takes microseconds; under load it briefly
/// takes each arena's lock, once per interval.
pub fn trim_job() -> Job {
    Job::new("memory.trim", Duration::from_secs(10), || {
        give_back();
        Box::pin(async { Ok(()) })
    })
}
