package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one server under test.
type server struct {
	name string
	cmd  *exec.Cmd
	addr string
	log  string
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs argv (with PORT replaced by a free port) and waits until GET
// / answers 200.
func start(o *options, name string, argv ...string) (*server, error) {
	port := strconv.Itoa(freePort())
	for i := range argv {
		argv[i] = strings.ReplaceAll(argv[i], "PORT", port)
	}
	s := &server{name: name, addr: "127.0.0.1:" + port, log: filepath.Join(o.work, slug(name)+".log")}
	if err := s.launch(o, argv); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + s.addr + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	b, _ := os.ReadFile(s.log)
	return nil, fmt.Errorf("%s did not answer on %s within 60s:\n%s", name, s.addr, b)
}

// serverCPU and loadCPU are the CPUs servers and load generators are
// pinned to when options.pin is set.
const (
	serverCPU = "0"
	loadCPU   = "1"
)

// pinned returns argv run on cpu with taskset when o.pin is set.
func pinned(o *options, cpu string, argv ...string) []string {
	if !o.pin {
		return argv
	}
	return append([]string{"taskset", "-c", cpu}, argv...)
}

// launch starts argv in its own process group, logging to s.log.
func (s *server) launch(o *options, argv []string) error {
	f, err := os.Create(s.log)
	if err != nil {
		return err
	}
	defer f.Close()
	argv = pinned(o, serverCPU, argv...)
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = f, f
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	return nil
}

func (s *server) stop() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
}

// tree returns the pid of the server and of all its descendants.
func (s *server) tree() []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			parent[pid] = pp
		}
	}
	root := s.cmd.Process.Pid
	out := []int{root}
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if contains(out, pp) && !contains(out, pid) {
				out = append(out, pid)
				changed = true
			}
		}
	}
	return out
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// cpu returns the user+system CPU time of the server's process tree.
func (s *server) cpu() time.Duration {
	var ticks int64
	for _, pid := range s.tree() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * time.Second / 100
}

// rss returns the resident memory of the server's process tree in bytes.
func (s *server) rss() int64 {
	var total int64
	for _, pid := range s.tree() {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "VmRSS:") {
				kb, _ := strconv.ParseInt(strings.Fields(sc.Text())[1], 10, 64)
				total += kb << 10
			}
		}
		f.Close()
	}
	return total
}

// wasmserveINI writes an INI for module and returns its path.
func wasmserveINI(o *options, name, factory, module, extra string) string {
	p := filepath.Join(o.work, name+".ini")
	// extra's keys replace the defaults: a key may appear only once.
	server := []string{"factory = " + factory, "workers = 2", "access_log = false", "request_timeout = 0",
		"compilation_cache = " + filepath.Join(o.work, "cache"), "drain_time = 0"}
	for _, line := range strings.Split(extra, "\n") {
		key, _, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key = strings.TrimSpace(key)
		for i, d := range server {
			if strings.TrimSpace(strings.SplitN(d, "=", 2)[0]) == key {
				server = append(server[:i], server[i+1:]...)
				break
			}
		}
		server = append(server, strings.TrimSpace(line))
	}
	ini := fmt.Sprintf("[server:main]\n%s\n[app:main]\nfactory = %s\ngreeting = hello, world\n", strings.Join(server, "\n"), module)
	os.WriteFile(p, []byte(ini), 0o644)
	return p
}
