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

    note "malloc(1 MiB) is above glibc's 128 KiB mmap threshold: glibc asks for a mapping of its own. The kernel only records a VMA, so PROCESS shows a row of untouched pages and no frame moves."
    app malloc buf 1M

    note "Reading memory nobody wrote maps the shared zero page, read-only (0 in PROCESS). Select one of those pages with the arrow keys: the zero page frame in PHYSICAL lights up with every page that maps it."
    app read buf 0 64K

    note "The first write to an untouched page allocates a zeroed page of its own (do_anonymous_page). Its frame appears in PHYSICAL in app's colour; the cells the step changed are marked in both panes."
    app write buf 128K 64K

    note "Writing a page that maps the zero page is a write-protect fault: wp_page_copy gives it a fresh page."
    app write buf 0 64K

    note "fork: the child shares every anonymous page read-only with the parent (copy-on-write). Select a page of child: its frame and the same page in app light up."
    app fork child

    note "The child writes 8 KiB: two COW faults copy two pages; the parent keeps the originals."
    child write buf 0 8K

    note "Memory pressure: reclaim pushes the oldest anonymous pages to swap (S in PROCESS); their frames go back to the free lists."
    pressure 256K

    note "Touching a swapped page brings it back (do_swap_page) into a new frame."
    app read buf 0 16K

    note "A huge page: a 2 MiB-aligned mapping with MADV_HUGEPAGE gets a whole order-9 block and one PMD on its first write (H in PROCESS)."
    app mmap big 4M hugepage
    app write big 0 2M

    note "The child exits: exit_mmap drops its references; frames only app still maps become exclusive again."
    child exit

    note "A device behind an IOMMU (Intel VT-d: 4K, 2M and 1G IOPTEs). Its I/O page table and IOTLB start empty."
    device gpu iommu=vtd iotlb=16

    note "The driver pins app's buffer (pin_user_pages with FOLL_LONGTERM: P in PROCESS and PHYSICAL) and maps it with iommu_map. Tab to DEVICE and select an IOPTE: its frame and app's page light up."
    gpu map app.buf write

    note "The device reads the buffer. Every IOPTE the IOTLB does not hold costs a page walk; the sparkline counts misses per step."
    gpu dma app.buf read

    note "free() unmaps the buffer, but the pins keep its frames: the device can still reach memory the process no longer maps. Select an IOPTE: no page lights up any more."
    app free buf

    note "The end of the tour. Press : and type a line of your own, e.g. gpu unmap app.buf, or Home to start again."
    app write big 2M 4K
    """
}
