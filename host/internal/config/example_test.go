package config_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/wasmserve/wasmserve/host/internal/config"
)

func ExampleLoad() {
	dir, err := os.MkdirTemp("", "wasmserve-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "app.wasm"), nil, 0o644); err != nil {
		log.Fatal(err)
	}
	ini := `[DEFAULT]
greeting = hello ; not a comment

[server:main]
factory = http
bind = :8080
workers = 4
request_timeout = 500 milliseconds
max_memory = 16 MiB

[app:main]
factory = app.wasm
metrics.namespace = myapp
`
	path := filepath.Join(dir, "app.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		log.Fatal(err)
	}

	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		log.Fatal(err)
	}
	s := cfg.Server
	fmt.Println(s.Factory, s.Bind, s.Workers, s.MaxConcurrency, s.RequestTimeout, s.MaxMemory)
	fmt.Println(filepath.Base(cfg.App.Module), s.Metrics.Namespace)
	greeting, _ := cfg.App.Get("greeting")
	fmt.Println(greeting)
	// Output:
	// http :8080 4 100 500ms 16777216
	// app.wasm myapp
	// hello ; not a comment
}

func ExampleParse_error() {
	ini := `[server:main]
factory = http
max_concurency = 64

[app:main]
factory = testdata/guest.module
`
	_, err := config.Parse("app.ini", []byte(ini), config.Options{})
	fmt.Println(err)
	// Output:
	// app.ini:3: [server:main] unknown key "max_concurency" (did you mean "max_concurrency"?)
}

func ExampleParseDuration() {
	for _, s := range []string{"30 seconds", "100 milliseconds", "2 days", "1m30s", "10"} {
		d, err := config.ParseDuration(s)
		fmt.Println(d, err)
	}
	_, err := config.ParseDuration("10 parsecs")
	fmt.Println(err)
	// Output:
	// 30s <nil>
	// 100ms <nil>
	// 48h0m0s <nil>
	// 1m30s <nil>
	// 10s <nil>
	// unknown unit "parsecs" (want milliseconds, seconds, minutes, hours or days, or a Go duration such as 10s)
}

func ExampleParseEndpoint() {
	for _, s := range []string{"localhost:9090", ":9090", "[::1]:9090", "unix:/run/app.sock", "/run/app.sock", "fd://3"} {
		e, _ := config.ParseEndpoint(s)
		fmt.Printf("%s %s\n", e.Network, e.Address)
	}
	// Output:
	// tcp localhost:9090
	// tcp :9090
	// tcp [::1]:9090
	// unix /run/app.sock
	// unix /run/app.sock
	// fd 3
}
