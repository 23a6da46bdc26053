// Package reload watches files for the changes that deployments make —
// writes in place, rename over, delete and re-create, and the Kubernetes
// ConfigMap "..data" symlink swap — and reports each settled change once.
package reload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// signature identifies the contents a path resolves to. The zero value
// stands for a path that does not resolve to a file.
type signature struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

// stat returns the signature of the file path resolves to, following
// symlinks, and false when there is none.
func stat(path string) (signature, bool) {
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() {
		return signature{}, false
	}
	sig := signature{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		sig.dev, sig.ino = uint64(st.Dev), st.Ino
	}
	return sig, true
}

// maxHops bounds symlink resolution, as the kernel's ELOOP does.
const maxHops = 40

// lookupDirs returns the directories whose entries decide what path
// resolves to: the directory holding each symlink met while resolving it
// (a ConfigMap's "app.ini" and "..data", a release's "current"), and the
// directory holding the file itself, or, when the path does not resolve,
// the deepest directory reached. path must be absolute and clean.
func lookupDirs(path string) []string {
	var dirs []string
	todo := split(path)
	cur := "/"
	for hops := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		if name == ".." {
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if err != nil {
			return append(dirs, cur)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			dirs = append(dirs, cur)
			target, err := os.Readlink(next)
			if hops++; err != nil || hops > maxHops {
				return dirs
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			todo = append(split(target), todo...)
			continue
		}
		if len(todo) == 0 {
			return append(dirs, cur)
		}
		cur = next
	}
	return dirs
}

// split returns path's components, without empty ones and ".".
func split(path string) []string {
	var out []string
	for _, c := range strings.Split(path, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// Watch watches paths until ctx ends. When what a path resolves to changes
// and then stays unchanged for quiet, Watch calls changed once with the
// paths that changed, in the order given. A path that disappears is not a
// change; its return is. changed runs on Watch's goroutine, so changes
// made while it runs are reported after it returns. When ready is not nil,
// Watch closes it once the watches are in place.
//
// Directories, not files, are watched: the directory of each path and of
// each symlink on the way to its file, so that writes in place, a file
// renamed over the path, delete and re-create, and a swapped symlink (a
// Kubernetes ConfigMap's "..data", a release's "current") are all seen.
// Events that leave every path resolving to the same file, size and
// modification time are ignored and do not delay a pending report.
//
// Watch returns nil when ctx ends, and an error when watching cannot start
// or fails; a queue overflow counts as a possible change, not a failure.
func Watch(ctx context.Context, paths []string, quiet time.Duration, changed func(paths []string), ready chan<- struct{}) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer w.Close()
	abs := make([]string, len(paths))
	reported := make([]signature, len(paths)) // as last reported, or at start
	seen := make([]signature, len(paths))     // as last observed
	for i, p := range paths {
		if abs[i], err = filepath.Abs(p); err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		reported[i], _ = stat(abs[i])
		seen[i] = reported[i]
	}
	watched := map[string]bool{}
	// rewatch watches the directories paths resolve through now, and
	// drops those no longer involved.
	rewatch := func() error {
		want := map[string]bool{}
		for _, p := range abs {
			for _, d := range lookupDirs(p) {
				want[d] = true
			}
		}
		var errs []error
		for d := range want {
			if watched[d] {
				continue
			}
			if err := w.Add(d); err != nil {
				errs = append(errs, fmt.Errorf("watch directory[%s]: %w", d, err))
				delete(want, d)
			}
		}
		for d := range watched {
			if !want[d] {
				w.Remove(d) // gone with its directory, or no longer involved
			}
		}
		watched = want
		if len(watched) == 0 {
			return errors.Join(errs...)
		}
		return nil
	}
	if err := rewatch(); err != nil {
		return err
	}
	if ready != nil {
		close(ready)
	}
	timer := time.NewTimer(quiet)
	timer.Stop()
	// observe compares every path with what was last seen and, when one
	// differs, restarts the quiet period.
	observe := func(force bool) {
		moved := force
		for i, p := range abs {
			sig, _ := stat(p)
			if sig != seen[i] {
				seen[i] = sig
				moved = true
			}
		}
		if moved {
			timer.Reset(quiet)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				observe(true)
				continue
			}
			return fmt.Errorf("watch: %w", err)
		case _, ok := <-w.Events:
			if !ok {
				return nil
			}
			observe(false)
		case <-timer.C:
			var out []string
			for i, p := range abs {
				sig, ok := stat(p)
				seen[i] = sig
				if !ok || sig == reported[i] {
					continue
				}
				reported[i] = sig
				out = append(out, p)
			}
			if err := rewatch(); err != nil {
				return err
			}
			if len(out) > 0 {
				changed(out)
			}
		}
	}
}

// Dirs returns the directories Watch would watch for paths now, sorted;
// for diagnostics.
func Dirs(paths []string) []string {
	set := map[string]bool{}
	for _, p := range paths {
		if a, err := filepath.Abs(p); err == nil {
			for _, d := range lookupDirs(a) {
				set[d] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}
