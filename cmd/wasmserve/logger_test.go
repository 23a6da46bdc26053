package main

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"
)

func TestJSONDurationsAreStrings(t *testing.T) {
	var b bytes.Buffer
	newLogger(&b, "json", false).Info("x", "elapsed", 1500*time.Microsecond)
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["elapsed"] != "1.5ms" {
		t.Errorf("elapsed = %#v, want \"1.5ms\"", rec["elapsed"])
	}
}

func TestReloadImpliesNoDrain(t *testing.T) {
	f, _, err := parseFlags([]string{"--reload", "--workers", "3", "--access-log=false", "--log-format", "json", "app.ini"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	opts := f.configOptions()
	if opts.Defaults["drain_time"] != "0" || opts.Set["workers"] != "3" || opts.Set["access_log"] != "false" || opts.Set["log.format"] != "json" {
		t.Errorf("config options = %+v", opts)
	}
	f, _, _ = parseFlags([]string{"app.ini"}, io.Discard, io.Discard)
	if opts := f.configOptions(); len(opts.Set) != 0 || opts.Defaults != nil {
		t.Errorf("no flags: config options = %+v", opts)
	}
}
