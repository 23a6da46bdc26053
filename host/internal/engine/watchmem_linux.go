//go:build linux

package engine

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tetratelabs/wazero/experimental"
)

// watchedMemory is the linear memory of an instance that Reset restores,
// with the writes since the snapshot tracked by the kernel: a mapping of
// the memory's maximum size, reserved (not committed) at instantiation and
// write-protected with userfaultfd in asynchronous mode once the snapshot
// is taken. A write to a protected page is let through by the kernel,
// which records that the page was written; Reset asks for the written
// pages (ioctl PAGEMAP_SCAN on /proc/self/pagemap), copies the snapshot's
// bytes back into them and protects them again.
// Its cost follows the pages a request wrote, not the memory's size.
// It needs Linux 6.7 or later; elsewhere Reset compares blocks. Where
// userfaultfd is refused, touched tells Reset which pages to compare.
type watchedMemory struct {
	buf     []byte // the whole reservation
	size    uint64 // bytes in use
	snap    []byte // the memory at the snapshot; nil before it
	regions [64]pageRegion
	// Pages written at two resets in a row are hot: they stay unprotected
	// (the scan reports them as written every time) and are copied back at
	// every reset, which costs less than a page fault and a protection per
	// request. Every hotRelearn resets they are protected again, so that
	// pages no longer written stop being copied.
	hot, last, now []uint64 // bit sets, one bit per page
	resets         int
	relearn        int // hotRelearn; tests make it shorter
	promoted       int // pages made hot, for tests
	fast           int // resets that copied the hot pages only, for tests
}

// hotRelearn is how many resets a page stays hot before it is protected
// again.
const hotRelearn = 256

// pageShift is log2 of the system's page size, the unit the kernel
// reports and protects.
var pageShift = func() int {
	n := 0
	for 1<<n < os.Getpagesize() {
		n++
	}
	return n
}()

func setBit(s []uint64, i int) []uint64 {
	for i>>6 >= len(s) {
		s = append(s, 0)
	}
	s[i>>6] |= 1 << (i & 63)
	return s
}

func hasBit(s []uint64, i int) bool { return i>>6 < len(s) && s[i>>6]&(1<<(i&63)) != 0 }

// Kernel interface (include/uapi/linux/userfaultfd.h, include/uapi/linux/fs.h).
const (
	uffdUserModeOnly         = 1
	uffdAPI                  = 0xAA
	uffdioAPI                = 0xC018AA3F // _IOWR(0xAA, 0x3F, struct uffdio_api)
	uffdioRegister           = 0xC020AA00 // _IOWR(0xAA, 0x00, struct uffdio_register)
	uffdioWriteprotect       = 0xC018AA06 // _IOWR(0xAA, 0x06, struct uffdio_writeprotect)
	uffdFeatureWPUnpopulated = 1 << 13
	uffdFeatureWPAsync       = 1 << 15
	uffdioRegisterModeWP     = 1 << 1
	uffdioWriteprotectModeWP = 1 << 0
	pagemapScan              = 0xC0606610 // _IOWR('f', 16, struct pm_scan_arg)
	pmScanWPMatching         = 1 << 0
	pmScanCheckWPAsync       = 1 << 1
	pageIsWritten            = 1 << 1
	pageIsPresent            = 1 << 3
	pageIsSwapped            = 1 << 4
	pageIsPFNZero            = 1 << 5
)

type uffdioAPIArg struct{ api, features, ioctls uint64 }

type uffdioRange struct{ start, len uint64 }

type uffdioRegisterArg struct {
	rng         uffdioRange
	mode, ioctl uint64
}

type uffdioWriteprotectArg struct {
	rng  uffdioRange
	mode uint64
}

type pmScanArg struct {
	size, flags, start, end, walkEnd, vec, vecLen, maxPages       uint64
	categoryInverted, categoryMask, categoryAnyofMask, returnMask uint64
}

type pageRegion struct{ start, end, categories uint64 }

// pagemap is /proc/self/pagemap, opened once; uffd the process's
// userfaultfd, opened at the first snapshot that tracks writes.
var (
	pagemap struct {
		once sync.Once
		f    *os.File
		fd   uintptr
		err  error
	}
	uffd struct {
		once sync.Once
		fd   uintptr
		err  error
	}
)

func openPagemap() error {
	pagemap.once.Do(func() {
		f, err := os.Open("/proc/self/pagemap")
		if err != nil {
			pagemap.err = err
			return
		}
		pagemap.f, pagemap.fd = f, f.Fd() // open for the process's life
	})
	return pagemap.err
}

func openUffd() error {
	if err := openPagemap(); err != nil {
		return err
	}
	uffd.once.Do(func() {
		fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|uffdUserModeOnly, 0, 0)
		if errno != 0 {
			uffd.err = fmt.Errorf("userfaultfd: %w", errno)
			return
		}
		api := uffdioAPIArg{api: uffdAPI, features: uffdFeatureWPAsync | uffdFeatureWPUnpopulated}
		if err := ioctl(fd, uffdioAPI, unsafe.Pointer(&api)); err != nil {
			unix.Close(int(fd))
			uffd.err = fmt.Errorf("userfaultfd asynchronous write protection (Linux 6.7 or later): %w", err)
			return
		}
		uffd.fd = fd
	})
	return uffd.err
}

func ioctl(fd, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// watchAllocator returns the allocator instantiation uses when the
// instance is to be reset, recording the memory in *mem. When the
// reservation cannot be made it leaves *mem nil and gives wazero a heap
// memory, and Reset compares blocks instead.
func watchAllocator(mem **watchedMemory) experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
		if max == 0 || max > 1<<32 {
			return &heapMemory{max: max}
		}
		buf, err := unix.Mmap(-1, 0, int(max), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
		if err != nil {
			return &heapMemory{max: max}
		}
		// 4 KiB pages: a huge page would make one write cost 2 MiB of
		// compare or copy at the next reset.
		_ = unix.Madvise(buf, unix.MADV_NOHUGEPAGE) // only a cost if refused
		*mem = &watchedMemory{buf: buf, relearn: hotRelearn}
		return *mem
	})
}

// Reallocate implements experimental.LinearMemory; the memory never moves.
// Memory grown after the snapshot is not watched: a request that grows
// memory ends its instance (Instance.Reset refuses).
func (m *watchedMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	m.size = size
	return m.buf[:size:size]
}

// Free implements experimental.LinearMemory.
func (m *watchedMemory) Free() {
	if m.buf != nil {
		_ = unix.Munmap(m.buf) // nothing is left to tell: the instance is gone
		m.buf = nil
	}
}

func (m *watchedMemory) protect(from, to uint64) error {
	base := uint64(uintptr(unsafe.Pointer(&m.buf[0])))
	wp := uffdioWriteprotectArg{rng: uffdioRange{base + from, to - from}, mode: uffdioWriteprotectModeWP}
	if err := ioctl(uffd.fd, uffdioWriteprotect, unsafe.Pointer(&wp)); err != nil {
		return fmt.Errorf("write-protect memory [%#x, %#x): %w", from, to, err)
	}
	return nil
}

// snapshot records the memory in use and starts watching writes to it;
// an error means the platform cannot watch (the caller compares blocks).
func (m *watchedMemory) snapshot() error {
	if err := openUffd(); err != nil {
		return err
	}
	if m.size == 0 {
		return nil
	}
	base := uint64(uintptr(unsafe.Pointer(&m.buf[0])))
	reg := uffdioRegisterArg{rng: uffdioRange{base, uint64(len(m.buf))}, mode: uffdioRegisterModeWP}
	if err := ioctl(uffd.fd, uffdioRegister, unsafe.Pointer(&reg)); err != nil {
		return fmt.Errorf("userfaultfd register: %w", err)
	}
	if err := m.protect(0, m.size); err != nil {
		return err
	}
	m.snap = bytes.Clone(m.buf[:m.size])
	return nil
}

// reset copies the snapshot back into every page written since the last
// reset, protects them again and returns the bytes copied. With onlyHot, nothing but the hot pages can have been written
// (see Instance.callGuest): they are copied back without asking the kernel.
func (m *watchedMemory) reset(onlyHot bool) (int, error) {
	if m.snap == nil {
		return 0, nil
	}
	if onlyHot && (m.resets+1)%m.relearn != 0 {
		m.resets++
		copied := 0
		clear(m.now)
		for w, set := range m.hot {
			for ; set != 0; set &= set - 1 {
				p := w<<6 + bits.TrailingZeros64(set)
				from, to := p<<pageShift, min((p+1)<<pageShift, int(m.size))
				copied += m.restore(from, to)
				m.now = setBit(m.now, p)
			}
		}
		m.fast++
		m.last, m.now = m.now, m.last
		return copied, nil
	}
	base := uint64(uintptr(unsafe.Pointer(&m.buf[0])))
	copied := 0
	clear(m.now)
	for start, end := base, base+m.size; start < end; {
		arg := pmScanArg{size: uint64(unsafe.Sizeof(pmScanArg{})), flags: pmScanCheckWPAsync, start: start, end: end,
			vec: uint64(uintptr(unsafe.Pointer(&m.regions[0]))), vecLen: uint64(len(m.regions)),
			categoryMask: pageIsWritten, returnMask: pageIsWritten}
		n, _, errno := unix.Syscall(unix.SYS_IOCTL, pagemap.fd, pagemapScan, uintptr(unsafe.Pointer(&arg)))
		if errno != 0 {
			return copied, fmt.Errorf("pagemap scan: %w", errno)
		}
		for _, r := range m.regions[:n] {
			from, to := int(r.start-base), int(r.end-base)
			copied += m.restore(from, to)
			for p := from >> pageShift; p < to>>pageShift; p++ {
				m.now = setBit(m.now, p)
			}
		}
		if arg.walkEnd <= start {
			return copied, fmt.Errorf("pagemap scan made no progress at %#x", start-base)
		}
		start = arg.walkEnd
	}
	m.resets++
	if m.resets%m.relearn == 0 {
		// Protect every written page again, the hot ones included; those
		// still written become hot again two resets later.
		clear(m.hot)
		clear(m.last)
	}
	// Protect again each written page that is not hot, in runs; a page
	// written at the previous reset too becomes hot instead.
	run := -1
	for p := 0; p <= int(m.size>>pageShift); p++ {
		protect := false
		if p < int(m.size>>pageShift) && hasBit(m.now, p) && !hasBit(m.hot, p) {
			if hasBit(m.last, p) {
				m.hot = setBit(m.hot, p)
				m.promoted++
			} else {
				protect = true
			}
		}
		switch {
		case protect && run < 0:
			run = p
		case !protect && run >= 0:
			if err := m.protect(uint64(run)<<pageShift, uint64(p)<<pageShift); err != nil {
				return copied, err
			}
			run = -1
		}
	}
	m.last, m.now = m.now, m.last
	return copied, nil
}

// restore copies the snapshot back into m.buf[from:to] and returns the
// bytes written (the memory is the snapshot's size: Instance.Reset refuses
// a grown one).
func (m *watchedMemory) restore(from, to int) int {
	return copy(m.buf[from:to], m.snap[from:])
}

// touched calls fn with each range of the first size bytes whose pages
// were written since the mapping was made or last dropped (present or
// swapped, and not the shared zero page), in order; every other page reads
// 0. It fails when the kernel cannot say (before Linux 6.7).
func (m *watchedMemory) touched(size int, fn func(from, to int)) error {
	if err := openPagemap(); err != nil {
		return err
	}
	if size == 0 {
		return nil
	}
	base := uint64(uintptr(unsafe.Pointer(&m.buf[0])))
	for start, end := base, base+uint64(size); start < end; {
		arg := pmScanArg{size: uint64(unsafe.Sizeof(pmScanArg{})), start: start, end: end,
			vec: uint64(uintptr(unsafe.Pointer(&m.regions[0]))), vecLen: uint64(len(m.regions)),
			categoryAnyofMask: pageIsPresent | pageIsSwapped, returnMask: pageIsPresent | pageIsSwapped | pageIsPFNZero}
		n, _, errno := unix.Syscall(unix.SYS_IOCTL, pagemap.fd, pagemapScan, uintptr(unsafe.Pointer(&arg)))
		if errno != 0 {
			return fmt.Errorf("pagemap scan: %w", errno)
		}
		for _, r := range m.regions[:n] {
			if r.categories&pageIsPFNZero != 0 && r.categories&pageIsSwapped == 0 {
				continue // mapped to the zero page: only read
			}
			fn(int(r.start-base), int(r.end-base))
		}
		if arg.walkEnd <= start {
			return fmt.Errorf("pagemap scan made no progress at %#x", start-base)
		}
		start = arg.walkEnd
	}
	return nil
}

// heapMemory is a linear memory on the Go heap, as wazero's own.
type heapMemory struct {
	buf []byte
	max uint64
}

func (m *heapMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if size > uint64(cap(m.buf)) {
		m.buf = append(m.buf[:cap(m.buf)], make([]byte, size-uint64(cap(m.buf)))...)
	}
	m.buf = m.buf[:size]
	return m.buf
}

func (m *heapMemory) Free() { m.buf = nil }

// kernelSupport reports what the kernel offers Reset: tracking written
// pages (userfaultfd and PAGEMAP_SCAN), finding touched pages
// (PAGEMAP_SCAN), and a perf event recording the calling thread's page
// faults.
func kernelSupport() (tracking, touched, perf bool) {
	var m *watchedMemory
	if _, ok := watchAllocator(&m).Allocate(0, 1<<16).(*watchedMemory); !ok {
		return false, false, false
	}
	defer m.Free()
	m.Reallocate(1 << 16)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return openUffd() == nil, m.touched(1<<16, func(int, int) {}) == nil, !watchFaults(false).rusage
}

// threadFaults is how many page faults the calling thread has taken, or
// -1 when the kernel does not say.
func threadFaults() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return -1
	}
	return ru.Minflt + ru.Majflt
}

// runtimeGetm returns the runtime's record of the calling thread (an M),
// which lives as long as the thread. The runtime keeps it reachable by
// linkname (go.dev/issue/67401).
//
//go:linkname runtimeGetm runtime.getm
func runtimeGetm() uintptr

// A threadWatch is what a thread keeps to tell whether it took a page
// fault during a guest call. Where the kernel allows (perf_event_paranoid
// at most 1, or CAP_PERFMON), the thread has a perf event that writes a
// record to a ring buffer at each of its page faults, user or kernel mode
// (a system call writing into guest memory faults in the kernel); the
// ring's head, read from memory, moves on every fault, so a call costs no
// system call. Elsewhere the thread's fault count from getrusage is
// compared with the count at the end of its previous guest call: one
// system call per call. Either way a fault outside the call only makes it
// look unclean, which costs the kernel call at Reset.
type threadWatch struct {
	ring []byte       // the perf event's mapping; nil when refused
	last atomic.Int64 // getrusage's count at the end of the last call
}

// threadWatches holds each thread's threadWatch, keyed by its M. (A
// thread ends, and its M could be reused by a new thread, only when a
// goroutine exits locked to it, which nothing in the server does.)
var threadWatches sync.Map // uintptr -> *threadWatch

// perfRefused is set once the kernel refused a perf event; every thread
// then counts faults with getrusage.
var perfRefused atomic.Bool

// perfHead is the offset of data_head in struct perf_event_mmap_page.
const perfHead = 1024

func newThreadWatch() *threadWatch {
	w := &threadWatch{}
	w.last.Store(threadFaults())
	if perfRefused.Load() || faultRingErr() != nil {
		return w
	}
	ring, err := openFaultRing()
	if err != nil {
		perfRefused.Store(true)
		return w
	}
	w.ring = ring
	return w
}

// openFaultRing opens a perf event recording each page fault of the
// calling thread and maps its ring buffer.
func openFaultRing() ([]byte, error) {
	attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_PAGE_FAULTS,
		Sample: 1, Bits: unix.PerfBitExcludeHv} // a record (8 bytes, no fields) per fault
	attr.Size = uint32(unsafe.Sizeof(attr))
	fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		return nil, fmt.Errorf("perf_event_open: %w (allow it with CAP_PERFMON or sysctl kernel.perf_event_paranoid=1)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("perf_event_open: %w", err)
	}
	// Mapped read-only, the ring is overwritten when full: the head keeps
	// moving however many faults go unread.
	ring, err := unix.Mmap(fd, 0, 2*os.Getpagesize(), unix.PROT_READ, unix.MAP_SHARED)
	unix.Close(fd) // the mapping keeps the event
	if err != nil {
		return nil, fmt.Errorf("map perf ring: %w", err)
	}
	return ring, nil
}

// ringHead is where the kernel will write the next record in ring.
func ringHead(ring []byte) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&ring[perfHead])))
}

// faultProbePages is how many page faults faultRingErr takes in a burst:
// several times what the kernel lets a sampling event record in one tick
// at its default rate limit (kernel.perf_event_max_sample_rate).
const faultProbePages = 2048

// ringSeesFaults takes pages page faults in a row on the calling thread,
// whose perf event maps ring, and says which one the ring did not record.
// A kernel that throttled or dropped the records would let a page written
// during a guest call go unnoticed at Reset.
func ringSeesFaults(ring []byte, pages int) error {
	ps := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, pages*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("map %d pages to probe the perf ring: %w", pages, err)
	}
	defer unix.Munmap(mem)
	for i := 0; i < pages; i++ {
		before := ringHead(ring)
		mem[i*ps] = 1 // the page's first touch: a fault
		if ringHead(ring) == before {
			return fmt.Errorf("the perf event recorded no page fault for fault %d of a burst of %d", i+1, pages)
		}
	}
	return nil
}

// faultRingErr says why threads cannot watch their faults through a perf
// event, or nil when they can: the kernel allows the event, and its ring
// records every fault of a burst.
var faultRingErr = sync.OnceValue(func() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ring, err := openFaultRing()
	if err != nil {
		return err
	}
	defer unix.Munmap(ring)
	return ringSeesFaults(ring, faultProbePages)
})

// faultWatch tells whether the calling thread takes a page fault between
// watchFaults and clean; the goroutine stays locked to its thread in
// between.
type faultWatch struct {
	t      *threadWatch
	head   uint64
	rusage bool
}

// watchFaults starts a watch on the calling thread; rusage makes it count
// faults with getrusage even where a perf event is allowed (for tests).
func watchFaults(rusage bool) faultWatch {
	m := runtimeGetm()
	v, ok := threadWatches.Load(m)
	if !ok {
		v = newThreadWatch()
		threadWatches.Store(m, v)
	}
	w := faultWatch{t: v.(*threadWatch), rusage: rusage || v.(*threadWatch).ring == nil}
	if !w.rusage {
		w.head = ringHead(w.t.ring)
	}
	return w
}

// clean reports whether the thread took no page fault since watchFaults
// (with getrusage: since the end of its previous guest call).
func (w faultWatch) clean() bool {
	if !w.rusage {
		return ringHead(w.t.ring) == w.head
	}
	n := threadFaults()
	was := w.t.last.Swap(n)
	return n >= 0 && n == was
}
