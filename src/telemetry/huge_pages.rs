//! Whether the heap can be backed by huge pages, said once at start.
//!
//! The state is a few hundred megabytes read at random (a dossier, a slot of the dedupe
//! memory per event). With 4 KiB pages nearly every such read also misses the TLB, and on a
//! virtual machine a TLB miss walks two sets of page tables; with 2 MiB pages the whole state
//! fits the TLB. On Linux's usual setting (`madvise`) glibc's allocator asks for huge pages
//! only when `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` is set, as `config/iocd.service` does
//! (measured in docs/performance.md). An operator reads from the start line which case holds.

/// Where the kernel's transparent huge page mode is shown.
pub const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";

/// What the start line says of huge pages, from this process's environment.
#[must_use]
pub fn status() -> String {
    let thp = std::fs::read_to_string(THP_ENABLED).ok();
    let tunables = std::env::var("GLIBC_TUNABLES").ok();
    describe(thp.as_deref(), tunables.as_deref())
}

/// What the start line says, from the contents of [`THP_ENABLED`] (`always [madvise] never`:
/// the bracketed word is the mode) and of `GLIBC_TUNABLES` (`name=value` pairs joined by
/// colons), either absent.
#[must_use]
pub fn describe(thp_enabled: Option<&str>, glibc_tunables: Option<&str>) -> String {
    let mode = thp_enabled.and_then(|text| {
        text.split_whitespace()
            .find_map(|word| word.strip_prefix('[')?.strip_suffix(']'))
    });
    let hugetlb = glibc_tunables
        .into_iter()
        .flat_map(|t| t.split(':'))
        .filter_map(|pair| pair.strip_prefix("glibc.malloc.hugetlb="))
        .next_back();
    match (mode, hugetlb) {
        (_, Some("2")) => "on (glibc.malloc.hugetlb=2: the kernel's reserved huge pages)".into(),
        (Some("always"), _) => "on (transparent huge pages: always)".into(),
        (Some("madvise"), Some("1")) => {
            "on (transparent huge pages: madvise; glibc.malloc.hugetlb=1)".into()
        }
        (Some("madvise"), _) => "off: the kernel gives huge pages on request (madvise), and \
             GLIBC_TUNABLES=glibc.malloc.hugetlb=1 makes the allocator ask (config/iocd.service \
             sets it; docs/performance.md)"
            .into(),
        (Some(mode), _) => format!("off (transparent huge pages: {mode})"),
        (None, _) => format!("unknown (no {THP_ENABLED})"),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn the_start_line_says_whether_the_heap_gets_huge_pages() {
        let madvise = Some("always [madvise] never\n");
        let on = |text: &str| text.starts_with("on");
        assert!(on(&describe(Some("[always] madvise never\n"), None)));
        assert!(on(&describe(madvise, Some("glibc.malloc.hugetlb=1"))));
        assert!(on(&describe(
            madvise,
            Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1")
        )));
        assert!(on(&describe(None, Some("glibc.malloc.hugetlb=2"))));
        // The last setting of a tunable wins, as glibc reads them.
        assert!(!on(&describe(
            madvise,
            Some("glibc.malloc.hugetlb=1:glibc.malloc.hugetlb=0")
        )));
        let hint = describe(madvise, None);
        assert!(
            hint.starts_with("off") && hint.contains("GLIBC_TUNABLES=glibc.malloc.hugetlb=1"),
            "{hint}"
        );
        assert!(describe(madvise, Some("glibc.malloc.hugetlb=0")).starts_with("off"));
        assert_eq!(
            describe(
                Some("always madvise [never]"),
                Some("glibc.malloc.hugetlb=1")
            ),
            "off (transparent huge pages: never)"
        );
        assert!(describe(None, None).starts_with("unknown"));
        assert!(describe(Some(""), None).starts_with("unknown"));
    }
}
