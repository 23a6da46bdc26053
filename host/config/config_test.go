package config_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/host/config"
)

var update = flag.Bool("update", false, "rewrite the golden files with the current output")

var env = map[string]string{"HOME_DIR": "/home/app", "PORT": "8080"}

func lookup(k string) (string, bool) { v, ok := env[k]; return v, ok }

// dump renders the parts of a Config that do not depend on the machine.
func dump(c *config.Config) string {
	s := c.Server
	var b strings.Builder
	fmt.Fprintf(&b, "factory=%s bind=%s/%s workers=%d max_concurrency=%d\n", s.Factory, s.Bind.Network, s.Bind.Address, s.Workers, s.MaxConcurrency)
	fmt.Fprintf(&b, "request_timeout=%s max_memory=%d isolation=%s max_requests=%d+%d\n", s.RequestTimeout, s.MaxMemory, s.Isolation, s.MaxRequests, s.MaxRequestsJitter)
	fmt.Fprintf(&b, "drain_time=%s stop_timeout=%s keepalive=%s access_log=%v\n", s.DrainTime, s.StopTimeout, s.Keepalive, s.AccessLog)
	fmt.Fprintf(&b, "admin=%s metrics=%q/%q monitoring=%+v log=%s\n", s.Admin.Bind, s.Metrics.Endpoint, s.Metrics.Namespace, s.Monitoring, s.Log.Format)
	fmt.Fprintf(&b, "module=%s\n", filepath.Base(c.App.Module))
	for _, kv := range c.App.Values {
		fmt.Fprintf(&b, "app %s=%q\n", kv.Key, kv.Value)
	}
	return strings.TrimSpace(b.String())
}

// TestGolden runs testdata/*.txt: an INI, a line "-- want --", then the
// expected error or dump. A first line "# bind: ADDR" sets --bind.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ini, want, ok := strings.Cut(string(data), "-- want --\n")
			if !ok {
				t.Fatal("no -- want -- line")
			}
			opts := config.Options{LookupEnv: lookup}
			if first, _, _ := strings.Cut(ini, "\n"); strings.HasPrefix(first, "# bind: ") {
				opts.Bind = strings.TrimPrefix(first, "# bind: ")
			}
			c, err := config.Parse("testdata/app.ini", []byte(ini), opts)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = dump(c)
			}
			wd, _ := os.Getwd()
			got = strings.ReplaceAll(got, wd, "REPLACEME")
			if *update {
				os.WriteFile(f, []byte(ini+"-- want --\n"+got+"\n"), 0o644)
				return
			}
			if got != strings.TrimSpace(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, strings.TrimSpace(want))
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	good := map[string]time.Duration{
		"30 seconds": 30 * time.Second, "1 second": time.Second, "100 milliseconds": 100 * time.Millisecond,
		"2 minutes": 2 * time.Minute, "1 hour": time.Hour, "3 days": 72 * time.Hour, "10": 10 * time.Second,
		"0": 0, "30s": 30 * time.Second, "1m30s": 90 * time.Second, "250ms": 250 * time.Millisecond, "5 s": 5 * time.Second,
	}
	for in, want := range good {
		if got, err := config.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "-5s", "10 parsecs", "seconds", "1.5 seconds", "ten seconds", "99999999999999999999"} {
		if got, err := config.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	good := map[string]int64{
		"0": 0, "1048576": 1 << 20, "64 MiB": 64 << 20, "64MiB": 64 << 20, "10 MB": 10e6, "1 kib": 1024,
		"2 GiB": 2 << 30, "512 B": 512, "3k": 3 << 10,
	}
	for in, want := range good {
		if got, err := config.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5 MiB", "10 parsecs", "MiB", "99999999999 GiB"} {
		if got, err := config.ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	t.Parallel()
	good := map[string]config.Endpoint{
		"127.0.0.1:9090":     {Network: "tcp", Address: "127.0.0.1:9090"},
		":9090":              {Network: "tcp", Address: ":9090"},
		"[::1]:9090":         {Network: "tcp", Address: "[::1]:9090"},
		"localhost:80":       {Network: "tcp", Address: "localhost:80"},
		"unix:/run/app.sock": {Network: "unix", Address: "/run/app.sock"},
		"/run/app.sock":      {Network: "unix", Address: "/run/app.sock"},
		"./app.sock":         {Network: "unix", Address: "./app.sock"},
		"fd://3":             {Network: "fd", Address: "3"},
	}
	for in, want := range good {
		got, err := config.ParseEndpoint(in)
		if err != nil || got != want {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if again, err := config.ParseEndpoint(got.String()); err != nil || again != got {
			t.Errorf("ParseEndpoint(%q.String()) = %+v, %v", in, again, err)
		}
	}
	for _, in := range []string{"", "9090", "host", "host:port", "host:99999", "unix:", "fd://x"} {
		if got, err := config.ParseEndpoint(in); err == nil {
			t.Errorf("ParseEndpoint(%q) = %+v, want an error", in, got)
		}
	}
}

func TestParseBool(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{"true": true, "Yes": true, "on": true, "1": true, "false": false, "NO": false, "off": false, "0": false} {
		if got, err := config.ParseBool(in); err != nil || got != want {
			t.Errorf("ParseBool(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := config.ParseBool("maybe"); err == nil {
		t.Error("ParseBool(maybe) succeeded")
	}
}

func TestRestartKeys(t *testing.T) {
	t.Parallel()
	parse := func(extra string) config.Server {
		c, err := config.Parse("testdata/app.ini", []byte("[server:main]\nfactory = http\nworkers = 2\n"+extra+"[app:main]\nfactory = guest.module\n"), config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Server
	}
	a, b := parse(""), parse("bind = :8000\nadmin.pprof = true\n")
	got := a.RestartKeys(b)
	if strings.Join(got, ",") != "admin.pprof,bind" {
		t.Errorf("RestartKeys = %v, want [admin.pprof bind]", got)
	}
	if got := a.RestartKeys(a); len(got) != 0 {
		t.Errorf("RestartKeys(same) = %v", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"[server:main]\nfactory = http\n[app:main]\nfactory = guest.module\n",
		"[DEFAULT]\na = $HOME\n[server:main]\nfactory=thrift\nworkers=3\n",
		"[server:main\n", "x", "[server:main]\nrequest_timeout = 10 parsecs\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := config.Parse("testdata/app.ini", []byte(s), config.Options{LookupEnv: lookup})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if c.Server.Workers < 1 || c.Server.MaxConcurrency < c.Server.Workers || c.Server.MaxMemory%65536 != 0 {
			t.Fatalf("invalid config accepted: %+v", c.Server)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30 seconds", "1m30s", "10", "100 milliseconds", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := config.ParseDuration(s); err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v", s, d)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64 MiB", "10MB", "1048576", "1 GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := config.ParseSize(s); err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %v", s, n)
		}
	})
}
