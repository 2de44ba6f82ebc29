// The built-in tour: what `umptui` with no file opens. Kept identical to demos/tour.ump by a test,
// embedded here so that it works from any directory.

enum Tour {
    static let fileName = "tour"

    static let source = """
    # The UMPTUI tour: one page followed from malloc to a frame, through fork and swap, to a device.
    # Space steps, b steps back, Tab moves between panes, Enter inspects, ? shows every key.
    machine ram=64M thp=madvise swap=16M seed=1

    note "Welcome. Three panes: PROCESS (address spaces), PHYSICAL (every frame of RAM) and DEVICE (IOMMU page tables). Space runs a step, b undoes it. A new process: the kernel gives it a page-global directory, its first page-table page (T in PHYSICAL)."
    process app

    note "malloc({=1 MiB}) is above glibc's {=128 KiB} mmap threshold: glibc asks for a mapping of its own. The kernel only records a VMA, so PROCESS shows untouched pages and no frame moves."
    app malloc buf 1M

    note "Reading memory nobody wrote maps the shared zero page, read-only: {do_anonymous_page:zero} pages show {=0} in PROCESS, and rss stays {app.rss}. Select one with the arrow keys: the zero page frame in PHYSICAL lights up with every page that maps it."
    app read buf 0 64K

    note "The first write to an untouched page allocates a zeroed page of its own (do_anonymous_page): {do_anonymous_page} frames appear in PHYSICAL in app's colour; the cells the step changed are marked in both panes."
    app write buf 128K 64K

    note "Writing a page that maps the zero page is a write-protect fault: wp_page_copy gives each of the {wp_page_copy:zero} pages a fresh zeroed page of its own."
    app write buf 0 64K

    note "fork: the child shares every anonymous page read-only with the parent (copy-on-write): {copy_present_ptes} pages, nothing copied. Select a page of child: its frame and the same page in app light up."
    quiz "app forks. What does child get for the 34 pages of buf that app has touched?" a="copies of all 34 pages, made by fork" b="the same frames, read-only in both processes (copy-on-write)" c="nothing yet: fork copies no page tables, and the child faults the pages in itself" answer=b explain="dup_mmap calls copy_page_range for a VMA with an anon_vma; copy_present_ptes write-protects each PTE in both processes and takes a reference (refcount and mapcount +1, AnonExclusive cleared). Nothing is copied until someone writes (do_wp_page)."
    app fork child
    expect child.buf shared=34 writable=0
    expect app.buf shared=34 writable=0

    note "The child writes {=8 KiB} from the malloc pointer, which sits {=16} bytes into a page, so the write spans {wp_page_copy} pages: each COW fault copies one (wp_page_copy). The parent keeps the originals."
    child write buf 0 8K

    note "Memory pressure: reclaim pushes the oldest anonymous pages to swap (S in PROCESS) and their frames go back to the free lists. Here it takes every one it finds: {machine.swap_used} swap slots in use."
    pressure 256K

    note "Touching a swapped page brings it back: do_swap_page reads each of the {do_swap_page} pages into a new frame."
    quiz "app reads 16 KiB of buf, which reclaim has pushed to swap. What does the kernel do?" a="do_swap_page reads each page back from swap into a new frame" b="it maps the zero page: the data went to swap and the page starts again empty" c="SIGBUS: the page is not in memory" answer=a explain="The PTE holds a swap entry, not a frame: the fault goes to do_swap_page, which allocates a frame, reads the page back and maps it in place of the swap entry."
    app read buf 0 16K
    expect app.buf present=5 swapped=29

    note "A huge page: an mmap whose length is a multiple of {=2 MiB} is aligned to {=2 MiB} (__thp_get_unmapped_area), and MADV_HUGEPAGE makes it THP-eligible. Still only a VMA."
    app mmap big 4M hugepage

    note "The first write fault maps a whole THP: one order-9 block and one PMD (do_huge_pmd_anonymous_page), H in PROCESS. The other {mapped} pages of the write find it already mapped."
    app write big 0 2M

    note "The child exits: exit_mmap drops its references. All its pages were in swap, so {zap:swap} swap entries go, and what app shared with it is app's alone again."
    child exit

    note "A device behind an IOMMU (Intel VT-d: {=4K}, {=2M} and {=1G} IOPTEs). Its I/O page table and IOTLB start empty."
    device gpu iommu=vtd iotlb=16

    note "The driver pins app's buffer (pin_user_pages with FOLL_LONGTERM: P in PROCESS and PHYSICAL) and maps it with iommu_map: {ioptes.4K} IOPTEs of {=4 KiB}. Pinning faults in what was missing: {do_anonymous_page} new pages, {do_swap_page} from swap. Tab to DEVICE and select an IOPTE: its frame and app's page light up."
    gpu map app.buf write

    note "The device reads the buffer. Every IOPTE the IOTLB does not hold costs a page walk: {misses} misses, {stall} of stall; the sparkline counts misses per step."
    gpu dma app.buf read
    expect machine free_frames=14070

    note "free() unmaps the buffer, but the device still pins its frames: {zap:kept} pages leave app's page table and none is freed. The device can still reach memory the process no longer maps. Select an IOPTE: no page lights up any more."
    quiz "app frees buf while gpu still has it mapped (pinned). What happens to the buffer's frames?" a="they go back to the buddy allocator, and the IOPTEs now point at free memory" b="they stay allocated: the pins hold them, though no page of app maps them any more" c="free fails: glibc cannot unmap memory a device has pinned" answer=b explain="munmap_chunk unmaps the chunk; zap_pte_range drops the process's references, but each frame keeps the pin taken by pin_user_pages (FOLL_PIN), so it is not freed. The IOPTEs still reach it until the driver unmaps and unpins."
    app free buf
    expect last hazards=1
    expect gpu mappings=257
    expect machine free_frames=14071

    note "Another write to big takes a second THP. The end of the tour. Press : and type a line of your own, e.g. gpu unmap app.buf, or Home to start again."
    app write big 2M 4K
    """
}
