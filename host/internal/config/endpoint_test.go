package config

import "testing"

func TestParseEndpoint(t *testing.T) {
	t.Parallel()
	good := []struct {
		in   string
		want Endpoint
		str  string
	}{
		{"localhost:9090", Endpoint{"tcp", "localhost:9090"}, "localhost:9090"},
		{"127.0.0.1:80", Endpoint{"tcp", "127.0.0.1:80"}, "127.0.0.1:80"},
		{":9090", Endpoint{"tcp", ":9090"}, ":9090"},
		{"0.0.0.0:0", Endpoint{"tcp", "0.0.0.0:0"}, "0.0.0.0:0"},
		{"[::1]:9090", Endpoint{"tcp", "[::1]:9090"}, "[::1]:9090"},
		{"[::]:65535", Endpoint{"tcp", "[::]:65535"}, "[::]:65535"},
		{" :80 ", Endpoint{"tcp", ":80"}, ":80"},
		{"unix:/run/app.sock", Endpoint{"unix", "/run/app.sock"}, "unix:/run/app.sock"},
		{"unix:///run/app.sock", Endpoint{"unix", "/run/app.sock"}, "unix:/run/app.sock"},
		{"unix:app.sock", Endpoint{"unix", "app.sock"}, "unix:app.sock"},
		{"/run/app.sock", Endpoint{"unix", "/run/app.sock"}, "unix:/run/app.sock"},
		{"./app.sock", Endpoint{"unix", "./app.sock"}, "unix:./app.sock"},
		{"run/app.sock", Endpoint{"unix", "run/app.sock"}, "unix:run/app.sock"},
		{"fd://3", Endpoint{"fd", "3"}, "fd://3"},
		{"fd://0", Endpoint{"fd", "0"}, "fd://0"},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseEndpoint(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseEndpoint(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
			if again, err := ParseEndpoint(got.String()); err != nil || again != got {
				t.Errorf("ParseEndpoint(String()) = %+v, %v; want %+v", again, err, got)
			}
		})
	}
	bad := []struct{ in, err string }{
		{"", "empty address"},
		{"9090", "missing port in address (want host:port, :port, [v6]:port, unix:PATH, a socket path or fd://N)"},
		{"localhost", "missing port in address (want host:port, :port, [v6]:port, unix:PATH, a socket path or fd://N)"},
		{"::1:9090", "too many colons in address (want host:port, :port, [v6]:port, unix:PATH, a socket path or fd://N)"},
		{"host:http", `bad port "http"`},
		{"host:65536", `bad port "65536"`},
		{"host:-1", `bad port "-1"`},
		{"host:+80", `bad port "+80"`},
		{"host:", `bad port ""`},
		{"my host:80", `bad host "my host"`},
		{"unix:", "empty unix socket path"},
		{"fd://", `bad file descriptor ""`},
		{"fd://x", `bad file descriptor "x"`},
		{"fd://-1", `bad file descriptor "-1"`},
	}
	for _, tt := range bad {
		if got, err := ParseEndpoint(tt.in); err == nil || err.Error() != tt.err {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want error %q", tt.in, got, err, tt.err)
		}
	}
}

func TestEndpointZero(t *testing.T) {
	t.Parallel()
	var e Endpoint
	if !e.IsZero() || e.String() != "" {
		t.Errorf("zero Endpoint: IsZero %v, String %q", e.IsZero(), e.String())
	}
	if (Endpoint{"tcp", ":1"}).IsZero() {
		t.Error("non-zero Endpoint reports IsZero")
	}
}
