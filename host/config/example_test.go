package config_test

import (
	"fmt"

	"github.com/wasmserve/wasmserve/host/config"
)

func ExampleParseDuration() {
	for _, s := range []string{"30 seconds", "100 milliseconds", "1m30s", "10"} {
		d, _ := config.ParseDuration(s)
		fmt.Println(d)
	}
	// Output:
	// 30s
	// 100ms
	// 1m30s
	// 10s
}

func ExampleParse() {
	ini := `[server:main]
factory = http
max_concurency = 64

[app:main]
factory = guest.module
`
	_, err := config.Parse("testdata/app.ini", []byte(ini), config.Options{})
	fmt.Println(err)
	// Output:
	// testdata/app.ini:3: [server:main] unknown key "max_concurency" (did you mean "max_concurrency"?)
}
