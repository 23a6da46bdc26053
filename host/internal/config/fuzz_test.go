package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuzzEnv has no value with surrounding space, so that a parsed value
// written back to a file reads the same.
var fuzzEnv = map[string]string{"HOME": "/home/app", "PORT": "8080"}

func lookupFuzzEnv(k string) (string, bool) { v, ok := fuzzEnv[k]; return v, ok }

// FuzzParse checks that Parse never panics, that what it accepts is
// valid, and that the Server it returns, written back as an INI file,
// parses to the same Server.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		ini, _, _ := strings.Cut(string(data), "-- want --\n")
		f.Add(ini)
	}
	f.Add("[server:main]\nfactory = http\n[app:main]\nfactory = testdata/guest.module\n")
	f.Add("[DEFAULT]\na = $HOME ${PORT} $NOPE\n[server:main]\nfactory=thrift\nworkers=3\nmetrics.namespace = x\n  y\n[app:main]\nfactory: testdata/guest.module\n")
	f.Fuzz(func(t *testing.T, ini string) {
		opts := Options{LookupEnv: lookupFuzzEnv}
		c, err := Parse("app.ini", []byte(ini), opts)
		if err != nil {
			if _, ok := err.(*Error); !ok || err.Error() == "" {
				t.Fatalf("error %T %q, want a non-empty *Error", err, err)
			}
			return
		}
		s := c.Server
		switch {
		case s.Factory != "http" && s.Factory != "thrift",
			s.Bind.IsZero(),
			s.Workers < 1 || s.MaxConcurrency < s.Workers,
			s.MaxMemory < wasmPage || s.MaxMemory > maxWasmBytes || s.MaxMemory%wasmPage != 0,
			s.CompilationCache != "" && !filepath.IsAbs(s.CompilationCache),
			!filepath.IsAbs(c.App.Module):
			t.Fatalf("invalid config accepted: %+v, module %q", s, c.App.Module)
		}
		var b strings.Builder
		b.WriteString("[server:main]\n")
		for _, k := range serverKeys {
			b.WriteString(k.Name + " = " + strings.ReplaceAll(k.format(&s), "\n", "\n\t") + "\n")
		}
		b.WriteString("[app:main]\nfactory = " + c.App.Module + "\n")
		again, err := Parse("app.ini", []byte(b.String()), opts)
		if err != nil {
			t.Fatalf("written back:\n%s\nParse: %v", b.String(), err)
		}
		if again.Server != s {
			t.Fatalf("written back:\n%s\nParse = %+v\nwant %+v", b.String(), again.Server, s)
		}
	})
}

// FuzzDuration checks that ParseDuration never returns a negative
// duration and parses the String of what it returns back to it. The name
// leaves "go test -fuzz=FuzzParse" matching FuzzParse alone.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{"30 seconds", "100 milliseconds", "1 day", "5s", "1m30s", "1.5h", "10", "0", "-1", "10 parsecs", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v", s, d)
		}
		if again, err := ParseDuration(d.String()); err != nil || again != d {
			t.Fatalf("ParseDuration(%q) = %v, %v; want %v", d.String(), again, err, d)
		}
	})
}

// FuzzSize checks that ParseSize never returns a negative size and parses
// the decimal form of what it returns back to it.
func FuzzSize(f *testing.F) {
	for _, s := range []string{"64 MiB", "10MB", "1048576", "1 GiB", "512 b", "-1", "1.5 KiB", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %v", s, n)
		}
		if again, err := ParseSize(strconv.FormatInt(n, 10)); err != nil || again != n {
			t.Fatalf("ParseSize(%d) = %v, %v", n, again, err)
		}
	})
}

// FuzzEndpoint checks that ParseEndpoint parses the String of what it
// returns back to it.
func FuzzEndpoint(f *testing.F) {
	for _, s := range []string{"localhost:9090", ":9090", "[::1]:80", "unix:/run/a.sock", "unix:///a", "./a.sock", "fd://3", "9090"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEndpoint(s)
		if err != nil {
			return
		}
		if again, err := ParseEndpoint(e.String()); err != nil || again != e {
			t.Fatalf("ParseEndpoint(%q) = %+v, %v; want %+v", e.String(), again, err, e)
		}
	})
}
