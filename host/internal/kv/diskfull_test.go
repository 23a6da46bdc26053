package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// diskFullEnv names the store file when the test binary runs as the
// child of TestEmbeddedDiskFull.
const diskFullEnv = "WASMSERVE_KV_DISKFULL_CHILD"

// diskFullChild runs in a child process whose files may not grow past
// 256 KiB (RLIMIT_FSIZE: writes past it fail with EFBIG, as on a full
// disk). It writes 16 KiB values until a write fails and prints how many
// succeeded and the error.
func diskFullChild(path string) {
	signal.Ignore(syscall.SIGXFSZ)
	lim := syscall.Rlimit{Cur: 256 << 10, Max: 256 << 10}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(2)
	}
	e, err := OpenEmbedded(path, EmbeddedOptions{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	for i := 0; i < 1000; i++ {
		if err := e.Set(context.Background(), fmt.Sprintf("k%03d", i), diskFullValue(i), 0); err != nil {
			unavailable := errors.Is(err, ErrUnavailable)
			fmt.Printf("ok %d\nunavailable %v\nerr %v\n", i, unavailable, err)
			// A later write fails the same way and reads still work.
			if err := e.Set(context.Background(), "later", diskFullValue(0), 0); err == nil {
				fmt.Println("later write succeeded")
			}
			if _, ok, err := e.Get(context.Background(), "k000"); !ok || err != nil {
				fmt.Println("read after failure:", ok, err)
			}
			os.Exit(0)
		}
	}
	fmt.Println("no write failed")
	os.Exit(0)
}

func diskFullValue(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 16<<10) }

func TestEmbeddedDiskFull(t *testing.T) {
	if p := os.Getenv(diskFullEnv); p != "" {
		diskFullChild(p)
		return
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "kv.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestEmbeddedDiskFull$")
	cmd.Env = append(os.Environ(), diskFullEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	text := string(out)
	var n int
	for _, line := range strings.Split(text, "\n") {
		if s, ok := strings.CutPrefix(line, "ok "); ok {
			n, _ = strconv.Atoi(s)
		}
	}
	if n == 0 || !strings.Contains(text, "unavailable true") || !strings.Contains(text, path) ||
		strings.Contains(text, "later write succeeded") || strings.Contains(text, "read after failure") {
		t.Fatalf("a full disk: want some writes to succeed, then an unavailable error naming %s, reads still working:\n%s", path, text)
	}
	// Reopened without the limit: every write that succeeded is there
	// whole, the one that failed left nothing, and the file checks clean.
	e, err := OpenEmbedded(path, EmbeddedOptions{})
	if err != nil {
		t.Fatalf("reopen after a full disk: %v", err)
	}
	defer e.Close()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		v, ok, err := e.Get(ctx, fmt.Sprintf("k%03d", i))
		if !ok || err != nil || !bytes.Equal(v, diskFullValue(i)) {
			t.Fatalf("k%03d after the failure: %d bytes, %v, %v", i, len(v), ok, err)
		}
	}
	if ok, _ := e.Exists(ctx, fmt.Sprintf("k%03d", n)); ok {
		t.Fatalf("the failed write k%03d is in the file", n)
	}
	if err := e.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("consistency check after a full disk: %v", err)
	}
	if err := e.Set(ctx, "after", []byte("space again"), 0); err != nil {
		t.Fatalf("write once space is back: %v", err)
	}
}
