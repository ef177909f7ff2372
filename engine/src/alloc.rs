//! Allocator settings for a process that runs the engine (the node binary, engine-bench),
//! which use mimalloc as their global allocator.

/// mimalloc v3's `mi_option_purge_delay` (its position in `mi_option_e`; libmimalloc-sys
/// exports no constant for it) and its default, which confirms the position at run time.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const MI_PURGE_DELAY_DEFAULT_MS: std::os::raw::c_long = 1000;

/// Tells mimalloc never to return freed memory to the OS. A flushed memtable frees tens
/// to hundreds of MiB at once; purged, those pages come back as fresh page faults that
/// the kernel zero-fills (2 MiB at a time with transparent huge pages) and that a virtual
/// machine may have to back again: single inserts spent 8-16 ms of CPU in
/// `clear_page_erms` under one allocation (engine-bench, 1 KB values), and their longest
/// write halved with purging off. Memtable space is bounded by configuration, so keeping
/// the peak costs no more than the memtables already may, as with Scylla, which owns its
/// memory outright. An operator's `MIMALLOC_PURGE_DELAY` is left alone.
#[allow(unsafe_code)]
pub fn keep_freed_memory() {
    // SAFETY: mi_option_get/mi_option_set only read and write mimalloc's option table and
    // may be called at any time, from any thread.
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == MI_PURGE_DELAY_DEFAULT_MS {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        }
    }
}

#[cfg(test)]
mod tests {
    /// The option index is right for the linked mimalloc: its default reads back.
    #[test]
    #[allow(unsafe_code)]
    fn purge_delay_option_is_where_we_think() {
        // SAFETY: as in keep_freed_memory.
        let v = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert!(
            v == super::MI_PURGE_DELAY_DEFAULT_MS || v == -1,
            "mimalloc option {} reads {v}: not purge_delay?",
            super::MI_OPTION_PURGE_DELAY
        );
    }
}
