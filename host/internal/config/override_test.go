package config

import (
	"slices"
	"testing"
)

func TestEnvAndFlagNames(t *testing.T) {
	t.Parallel()
	for key, want := range map[string][2]string{
		"workers":             {"WASMSERVE_WORKERS", "--workers"},
		"log.format":          {"WASMSERVE_LOG_FORMAT", "--log-format"},
		"access_log":          {"WASMSERVE_ACCESS_LOG", "--access-log"},
		"monitoring.gc.stats": {"WASMSERVE_MONITORING_GC_STATS", "--monitoring-gc-stats"},
	} {
		if got := [2]string{EnvName(key), FlagName(key)}; got != want {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
}

func TestMisspelledEnv(t *testing.T) {
	t.Parallel()
	got := MisspelledEnv([]string{"WASMSERVE_WORKER=2", "WASMSERVE_WORKERS=3", "WASMSERVE_TEST_CACHE=/x", "WASMSERVE_LOG_FORMT=json", "HOME=/root", "WASMSERVE_BND=:1"})
	want := [][2]string{{"WASMSERVE_WORKER", "WASMSERVE_WORKERS"}, {"WASMSERVE_LOG_FORMT", "WASMSERVE_LOG_FORMAT"}, {"WASMSERVE_BND", "WASMSERVE_BIND"}}
	if !slices.Equal(got, want) {
		t.Errorf("MisspelledEnv = %q, want %q", got, want)
	}
}

func TestOrigin(t *testing.T) {
	t.Parallel()
	env := map[string]string{"WASMSERVE_WORKERS": "3"}
	c, err := Parse("app.ini", []byte("[server:main]\nfactory = http\nmax_concurrency = 9\n[app:main]\nfactory = testdata/guest.module\n"),
		Options{Set: map[string]string{"access_log": "false"}, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"factory": "app.ini:2", "max_concurrency": "app.ini:3", "workers": "WASMSERVE_WORKERS", "access_log": "--access-log", "keepalive": "default"} {
		if got := c.Origin(key); got != want {
			t.Errorf("Origin(%q) = %q, want %q", key, got, want)
		}
	}
	if _, err := Parse("app.ini", []byte("[server:main]\nfactory = http\n[app:main]\nfactory = testdata/guest.module\n"), Options{Set: map[string]string{"wrokers": "1"}}); err == nil {
		t.Error("Parse accepted Options.Set for an unknown key")
	}
}
