package config

import (
	"strings"
	"testing"
	"time"
)

func TestInitTimeout(t *testing.T) {
	t.Parallel()
	opts := Options{LookupEnv: lookupTestEnv}
	if got := parseServer(t, "", opts).InitTimeout; got != 30*time.Second {
		t.Errorf("default init_timeout = %v, want 30s", got)
	}
	if got := parseServer(t, "init_timeout = 2 seconds", opts).InitTimeout; got != 2*time.Second {
		t.Errorf("init_timeout = 2 seconds gives %v", got)
	}
	if got := parseServer(t, "init_timeout = 0", opts).InitTimeout; got != 0 {
		t.Errorf("init_timeout = 0 gives %v", got)
	}
	_, err := Parse("app.ini", []byte("[server:main]\nfactory = http\ninit_timout = 1s\n[app:main]\nfactory = testdata/guest.module\n"), opts)
	if err == nil || !strings.Contains(err.Error(), "init_timeout") {
		t.Errorf("misspelt init_timeout: error %v, want a suggestion of init_timeout", err)
	}
}
