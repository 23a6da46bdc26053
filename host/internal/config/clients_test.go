package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func parseApp(t *testing.T, app string) (*Config, error) {
	t.Helper()
	return Parse("app.ini", []byte("[server:main]\nfactory = http\n[app:main]\nfactory = testdata/guest.module\n"+app), Options{})
}

func TestClientDefaults(t *testing.T) {
	t.Parallel()
	c, err := parseApp(t, "backend.endpoint = 127.0.0.1:9091\ngreeting = hi\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Clients{
		MaxResponseBody: 10 << 20, MaxOutbound: 64,
		HTTP:   HTTPClient{PoolMaxSize: 10, MaxRetries: 0, Timeout: 10 * time.Second},
		Thrift: []ThriftClient{{Name: "backend", Endpoint: "127.0.0.1:9091", Size: 10, MaxAge: time.Minute, Timeout: time.Second, MaxRetries: 3, Protocol: "header"}},
	}
	if !reflect.DeepEqual(c.App.Clients, want) {
		t.Errorf("Clients = %+v\nwant     %+v", c.App.Clients, want)
	}
	if v, _ := c.App.Get("backend.endpoint"); v != "127.0.0.1:9091" {
		t.Errorf("client keys not passed to the guest: %q", v)
	}
}

func TestClientKeys(t *testing.T) {
	t.Parallel()
	c, err := parseApp(t, `max_response_body = 1 MiB
max_outbound = 8
http.allow = http://127.0.0.1:8000, https://*.example.com
  http://api.internal:*
http.pool_maxsize = 4
http.max_retries = 2
http.timeout = 250 milliseconds
users.endpoint = /run/users.sock
users.size = 3
users.max_age = 30 seconds
users.timeout = 2 seconds
users.max_retries = 1
users.protocol = framed-compact
a.endpoint = localhost:1
`)
	if err != nil {
		t.Fatal(err)
	}
	want := Clients{
		MaxResponseBody: 1 << 20, MaxOutbound: 8,
		HTTP: HTTPClient{Allow: []string{"http://127.0.0.1:8000", "https://*.example.com", "http://api.internal:*"}, PoolMaxSize: 4, MaxRetries: 2, Timeout: 250 * time.Millisecond},
		Thrift: []ThriftClient{
			{Name: "a", Endpoint: "localhost:1", Size: 10, MaxAge: time.Minute, Timeout: time.Second, MaxRetries: 3, Protocol: "header"},
			{Name: "users", Endpoint: "/run/users.sock", Size: 3, MaxAge: 30 * time.Second, Timeout: 2 * time.Second, MaxRetries: 1, Protocol: "framed-compact"},
		},
	}
	if !reflect.DeepEqual(c.App.Clients, want) {
		t.Errorf("Clients = %+v\nwant     %+v", c.App.Clients, want)
	}
}

func TestClientKeyErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ app, want string }{
		{"backend.endpoint = x:1\nbackend.timeot = 1\n", `app.ini:6: [app:main] unknown key "backend.timeot" for the Thrift client "backend" (did you mean "backend.timeout"?)`},
		{"backend.endpoint = x:1\nbackend.pool_size = 1\n", `unknown key "backend.pool_size" for the Thrift client "backend" (did you mean "backend.size"?)`},
		{"http.alow = http://x\n", `unknown key "http.alow" for the HTTP client (did you mean "http.allow"?)`},
		{"http.pool_max_size = 3\n", `(did you mean "http.pool_maxsize"?)`},
		{"http.allow = ftp://x\n", `http.allow = "ftp://x": "ftp://x": want http://HOST[:PORT] or https://HOST[:PORT]`},
		{"http.allow = http://x/path\n", "without a path"},
		{"http.allow = http://a*.x\n", `a host label is a name or exactly "*"`},
		{"backend.endpoint = nowhere\n", "want host:port or a unix socket path"},
		{"backend.endpoint = ${UNSET_FOR_TEST}\n", "want host:port"},
		{"backend.endpoint = x:1\nbackend.protocol = json\n", `want "header", "header-compact", "framed" or "framed-compact"`},
		{"max_outbound = 0\n", "must be between 1 and"},
		{"max_response_body = 0\n", "at least 1 byte"},
		{"http.timeout = 0\n", "must be more than 0"},
	} {
		_, err := parseApp(t, c.app)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.app, err, c.want)
		}
		if strings.Contains(c.want, "unknown key") && !errors.Is(err, ErrUnknownKey) {
			t.Errorf("%q: not ErrUnknownKey: %v", c.app, err)
		}
	}
	// Keys of the guest's own under other prefixes stay free.
	if _, err := parseApp(t, "noodles.blah = 1\nkv.default.backend = memory\n"); err != nil {
		t.Error(err)
	}
}
