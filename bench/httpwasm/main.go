// Command httpwasm serves an http-wasm guest with http-wasm-host-go, the
// closest wazero-based peer of wasmserve.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"

	wasm "github.com/http-wasm/http-wasm-host-go/handler/nethttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	guest := flag.String("guest", "", "guest module")
	flag.Parse()
	bin, err := os.ReadFile(*guest)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	mw, err := wasm.NewMiddleware(ctx, bin)
	if err != nil {
		log.Fatal(err)
	}
	defer mw.Close(ctx)
	h := mw.NewHandler(ctx, http.NotFoundHandler())
	log.Fatal(http.ListenAndServe(*addr, h))
}
