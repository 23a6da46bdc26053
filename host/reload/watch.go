// Package reload watches files for the changes that deployments make —
// writes in place, rename over, delete and re-create, and the Kubernetes
// ConfigMap "..data" symlink swap — and reports each settled change once.
package reload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// signature identifies the contents a path resolves to.
type signature struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

func stat(path string) (signature, bool) {
	fi, err := os.Stat(path) // follows symlinks
	if err != nil {
		return signature{}, false
	}
	sig := signature{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		sig.dev, sig.ino = uint64(st.Dev), st.Ino
	}
	return sig, true
}

// Watch watches paths until ctx ends. When a path's resolved file changes
// and then stays unchanged for quiet, it calls changed once with the paths
// that changed. A path that disappears is not a change; its return is.
// Directories, not files, are watched, so replacing a file or a symlink in
// its directory is seen. changed runs on Watch's goroutine.
func Watch(ctx context.Context, paths []string, quiet time.Duration, changed func(paths []string), ready chan<- struct{}) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer w.Close()
	sigs := map[string]signature{}
	dirs := map[string]bool{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		sigs[abs], _ = stat(abs)
		dir := filepath.Dir(abs)
		if !dirs[dir] {
			if err := w.Add(dir); err != nil {
				return fmt.Errorf("watch %s: %w", dir, err)
			}
			dirs[dir] = true
		}
	}
	if ready != nil {
		close(ready)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	pending := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			return fmt.Errorf("watch: %w", err)
		case _, ok := <-w.Events:
			if !ok {
				return nil
			}
			// Any event in a watched directory may change what a path
			// resolves to; settle, then compare.
			timer.Reset(quiet)
			pending = true
		case <-timer.C:
			if !pending {
				continue
			}
			pending = false
			var out []string
			for p, old := range sigs {
				sig, ok := stat(p)
				if !ok || sig == old {
					continue
				}
				sigs[p] = sig
				out = append(out, p)
			}
			if len(out) > 0 {
				changed(out)
			}
		}
	}
}
