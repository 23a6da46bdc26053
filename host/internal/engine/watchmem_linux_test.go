package engine

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A perf event's ring records every page fault of its thread, also in a
// burst far above the kernel's sampling rate limit; a ring that records
// nothing fails the check. Where perf events are refused, faultRingErr says
// so, naming the fix, and threads count faults with getrusage.
func TestFaultRingSeesEveryFault(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ring, err := openFaultRing()
	if err != nil {
		if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) {
			t.Fatalf("perf event refused for another reason than permission: %v", err)
		}
		if err := faultRingErr(); err == nil || !strings.Contains(err.Error(), "CAP_PERFMON") {
			t.Fatalf("perf events refused, but faultRingErr() = %v; want the refusal, naming CAP_PERFMON", err)
		}
		if w := watchFaults(false); !w.rusage {
			t.Fatal("perf events refused, but a thread's fault watch does not use getrusage")
		}
		return
	}
	defer unix.Munmap(ring)
	if err := ringSeesFaults(ring, 4*faultProbePages); err != nil {
		t.Fatal(err)
	}
	if err := faultRingErr(); err != nil {
		t.Fatalf("faultRingErr() = %v with a ring that records every fault", err)
	}
	if w := watchFaults(false); w.rusage {
		t.Fatal("perf events work, but a thread's fault watch uses getrusage")
	}
	// A ring whose head never moves, as a throttled event's would not.
	still := make([]byte, len(ring))
	if err := ringSeesFaults(still, 16); err == nil || !strings.Contains(err.Error(), "fault 1 of a burst of 16") {
		t.Fatalf("a ring that records nothing: %v; want fault 1 of 16 reported missing", err)
	}
}
