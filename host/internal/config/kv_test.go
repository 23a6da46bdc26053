package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parseKV(t *testing.T, app string) ([]KVStore, error) {
	t.Helper()
	src := "[server:main]\nfactory = http\n[app:main]\nfactory = testdata/guest.module\n" + app
	c, err := Parse("app.ini", []byte(src), Options{LookupEnv: lookupTestEnv})
	if err != nil {
		return nil, err
	}
	return c.App.KV, nil
}

func TestKVDefaults(t *testing.T) {
	t.Parallel()
	stores, err := parseKV(t, "kv.default.backend = embedded\nkv.cache.backend = memory\n")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	want := KVStore{Name: "default", Backend: "embedded", Path: filepath.Join(wd, "kv-default.db"), PoolSize: 10,
		Timeout: time.Second, ConnectTimeout: time.Second, MaxValueSize: 1 << 20, MaxKeySize: 1024}
	if len(stores) != 2 || stores[0] != want || stores[1].Name != "cache" || stores[1].Backend != "memory" {
		t.Fatalf("stores = %+v\nwant [%+v, cache memory]", stores, want)
	}
	// Every key of the table has a default or is documented as computed.
	for _, k := range KVKeys() {
		if k.Doc == "" {
			t.Errorf("kv.NAME.%s has no doc", k.Name)
		}
	}
}

func TestKVEveryKey(t *testing.T) {
	t.Parallel()
	stores, err := parseKV(t, `kv.r.backend = Redis
kv.r.url = redis://:secret@127.0.0.1:6380/2
kv.r.pool_size = 4
kv.r.timeout = 250ms
kv.r.connect_timeout = 2 seconds
kv.r.max_value_size = 64 KiB
kv.r.max_key_size = 100
kv.r.prefix = app:
kv.e.path = data/x.db
`)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	want := KVStore{Name: "r", Backend: "redis", URL: "redis://:secret@127.0.0.1:6380/2", PoolSize: 4,
		Timeout: 250 * time.Millisecond, ConnectTimeout: 2 * time.Second, MaxValueSize: 64 << 10, MaxKeySize: 100, Prefix: "app:"}
	if stores[0] != want {
		t.Fatalf("store r = %+v\nwant %+v", stores[0], want)
	}
	if e := stores[1]; e.Backend != "embedded" || e.Path != filepath.Join(wd, "data", "x.db") {
		t.Fatalf("store e = %+v; want embedded at data/x.db under the INI's directory", e)
	}
}

func TestKVErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ app, want string }{
		{"kv.default.backen = redis\n", `unknown key "kv.default.backen" (did you mean "kv.default.backend"?)`},
		{"kv.default.max_value = 1\n", `unknown key "kv.default.max_value" (did you mean "kv.default.max_value_size"?)`},
		{"kv.default = x\n", `unknown key "kv.default": key-value store keys are kv.NAME.KEY`},
		{"kv.a/b.backend = memory\n", `unknown key "kv.a/b.backend"`},
		{"kv.default.backend = sqlite\n", `want "embedded", "redis" or "memory"`},
		{"kv.default.backend = redis\n", `missing required key "kv.default.url"`},
		{"kv.default.url = http://x\n", `want a redis://, rediss:// or unix:// URL`},
		{"kv.default.max_value_size = 2 GiB\n", `must be from 1 byte to 1 GiB`},
		{"kv.default.timeout = 0\n", `must be positive`},
		{"kv.default.pool_size = 0\n", `kv.default.pool_size`},
	} {
		_, err := parseKV(t, c.app)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v; want an *Error containing %q", c.app, err, c.want)
		}
	}
}

func TestExpandDefault(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"${KV_PATH:-counter.db}": "counter.db",
		"${APP_PORT:-1}":         "8080",
		"${EMPTY:-fallback}":     "fallback",
		"a/${NOPE:-}/b":          "a//b",
		"${NOPE}":                "${NOPE}",
	} {
		if got := expandEnv(in, lookupTestEnv); got != want {
			t.Errorf("expandEnv(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestREADMEDocumentsKVKeys(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range KVKeys() {
		if !strings.Contains(string(readme), "| `kv.NAME."+k.Name+"` |") {
			t.Errorf("README's configuration reference lacks a row for kv.NAME.%s", k.Name)
		}
	}
}
