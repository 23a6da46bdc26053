package listen_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/wasmserve/wasmserve/host/internal/listen"
)

// Open takes the listeners a supervisor passed (Einhorn, Server::Starter,
// systemd), or binds the Spec's address when there are none. The caller
// logs which source they came from.
func ExampleOpen() {
	lns, src, err := listen.Open(listen.Spec{
		Network: "tcp",
		Address: "127.0.0.1:0", // e.g. "localhost:9090", "[::1]:9090", ":9090"
		Backlog: 128,
	}, listen.OSEnv())
	if err != nil {
		log.Fatal(err) // e.g. listen: bind tcp 127.0.0.1:9090: address already in use
	}
	for _, ln := range lns {
		defer ln.Close()
		fmt.Println("listening", ln.Addr().Network(), "source", src)
	}
	// Output: listening tcp source bind
}

// A server serves on a Drainable listener; at shutdown Drain makes the
// server's own Accept loop take every connection already queued, then the
// loop gets an error wrapping net.ErrClosed and new connects are refused.
func ExampleDrainable() {
	lns, _, err := listen.Open(listen.Spec{Network: "tcp", Address: "127.0.0.1:0"}, listen.OSEnv())
	if err != nil {
		log.Fatal(err)
	}
	ln := listen.Drainable(lns[0])
	srv := &http.Server{Handler: http.NotFoundHandler()}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ln.Drain(ctx); err != nil { // step 1 and 2 of a graceful stop
		log.Fatal(err)
	}
	fmt.Println("serve loop stopped:", errors.Is(<-served, net.ErrClosed))
	_, err = net.Dial("tcp", ln.Addr().String())
	fmt.Println("new connects refused:", err != nil)
	srv.Shutdown(ctx) // then wait for the connections being served
	// Output:
	// serve loop stopped: true
	// new connects refused: true
}
