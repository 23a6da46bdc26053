package thriftfront_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/baseplate"
	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/example"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

type logBuffer = testguest.Buffer

// serve runs the thrift-go example with the real binary on 127.0.0.1 and
// returns its address and log. extra holds server-section lines; workers
// (2) and request_timeout (2 seconds) default unless extra sets them.
func serve(t testing.TB, extra string) (string, *logBuffer) {
	t.Helper()
	addr, log, _ := serveCmd(t, extra)
	return addr, log
}

// proc is a running server process; done is closed when it has exited.
type proc struct {
	*exec.Cmd
	done chan struct{}
}

func serveCmd(t testing.TB, extra string) (string, *logBuffer, *proc) {
	t.Helper()
	dir := t.TempDir()
	ini := filepath.Join(dir, "app.ini")
	server := extra
	for _, kv := range []string{"workers = 2", "request_timeout = 2 seconds"} {
		if key, _, _ := strings.Cut(kv, " "); !strings.Contains(extra, key+" ") {
			server += "\n" + kv
		}
	}
	os.WriteFile(ini, []byte(fmt.Sprintf("[server:main]\nfactory = thrift\ncompilation_cache = %s\n%s\n[app:main]\nfactory = %s\ngreeting = from config\n",
		testguest.CacheDir(), server, testguest.Module(t, "thrift-go", "thrift.wasm"))), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	log := &logBuffer{}
	cmd := exec.Command(testguest.Binary(t), "--bind", addr, ini)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("server log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(log.String(), "msg=serving") {
		select {
		case <-done:
			t.Fatalf("server exited:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not serving:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, log, &proc{cmd, done}
}

// clientKind builds one of the standard Thrift client types.
type clientKind struct {
	name  string
	trans func(thrift.TTransport, *thrift.TConfiguration) thrift.TTransport
	proto func(thrift.TTransport, *thrift.TConfiguration) thrift.TProtocol
}

var (
	binaryProto = func(t thrift.TTransport, c *thrift.TConfiguration) thrift.TProtocol {
		return thrift.NewTBinaryProtocolConf(t, c)
	}
	compactProto = func(t thrift.TTransport, c *thrift.TConfiguration) thrift.TProtocol {
		return thrift.NewTCompactProtocolConf(t, c)
	}
	unframed = func(t thrift.TTransport, _ *thrift.TConfiguration) thrift.TTransport { return t }
	framed   = func(t thrift.TTransport, c *thrift.TConfiguration) thrift.TTransport {
		return thrift.NewTFramedTransportConf(t, c)
	}
	kinds = []clientKind{
		{"unframed binary", unframed, binaryProto},
		{"unframed compact", unframed, compactProto},
		{"framed binary", framed, binaryProto},
		{"framed compact", framed, compactProto},
		{"THeader binary", func(t thrift.TTransport, c *thrift.TConfiguration) thrift.TTransport {
			return thrift.NewTHeaderTransportConf(t, c)
		},
			func(t thrift.TTransport, c *thrift.TConfiguration) thrift.TProtocol {
				return thrift.NewTHeaderProtocolConf(t, c)
			}},
		{"THeader compact zlib", func(t thrift.TTransport, c *thrift.TConfiguration) thrift.TTransport {
			ht := thrift.NewTHeaderTransportConf(t, c)
			ht.AddTransform(thrift.TransformZlib)
			return ht
		}, func(t thrift.TTransport, _ *thrift.TConfiguration) thrift.TProtocol {
			c := &thrift.TConfiguration{THeaderProtocolID: thrift.THeaderProtocolIDPtrMust(thrift.THeaderProtocolCompact)}
			return thrift.NewTHeaderProtocolConf(t, c)
		}},
	}
)

func dial(t *testing.T, addr string, k clientKind) (*example.ExampleClient, thrift.TTransport) {
	t.Helper()
	return dialNotify(t, addr, k, nil)
}

// dialNotify is dial with flushed, when not nil, called each time a request
// has been handed to the kernel.
func dialNotify(t *testing.T, addr string, k clientKind, flushed func()) (*example.ExampleClient, thrift.TTransport) {
	t.Helper()
	cfg := &thrift.TConfiguration{ConnectTimeout: 10 * time.Second, SocketTimeout: 30 * time.Second}
	sock := thrift.NewTSocketConf(addr, cfg)
	if err := sock.Open(); err != nil {
		t.Fatal(err)
	}
	var under thrift.TTransport = sock
	if flushed != nil {
		under = &notifyTransport{TTransport: sock, flushed: flushed}
	}
	tr := k.trans(under, cfg)
	t.Cleanup(func() { tr.Close() })
	p := k.proto(tr, cfg)
	return example.NewExampleClient(thrift.NewTStandardClient(p, p)), tr
}

// notifyTransport calls flushed after each Flush of the socket under a
// client's transport.
type notifyTransport struct {
	thrift.TTransport
	flushed func()
}

func (n *notifyTransport) Flush(ctx context.Context) error {
	err := n.TTransport.Flush(ctx)
	n.flushed()
	return err
}

func TestClientTypes(t *testing.T) {
	t.Parallel()
	addr, _ := serve(t, "drain_time = 0")
	ctx := context.Background()
	// Sequential: the oneway check reads state that every client's
	// remember call writes.
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			c, _ := dial(t, addr, k)
			if got, err := c.Echo(ctx, "hello "+k.name); err != nil || got != "hello "+k.name {
				t.Fatalf("echo = %q, %v", got, err)
			}
			var ee *example.EchoError
			if _, err := c.Fail(ctx, "boom"); !errors.As(err, &ee) || ee.Message != "boom" {
				t.Fatalf("fail: %v, want EchoError(boom)", err)
			}
			if err := c.Remember(ctx, k.name); err != nil {
				t.Fatalf("remember: %v", err)
			}
			// The oneway call landed on one of the two workers: ask until
			// the one that has it answers.
			found := false
			for i := 0; i < 20 && !found; i++ {
				got, err := c.Recall(ctx)
				if err != nil {
					t.Fatalf("recall: %v", err)
				}
				found = got == k.name
			}
			if !found {
				t.Errorf("oneway remember(%q) not observed by recall", k.name)
			}
			var ae thrift.TApplicationException
			if _, err := c.Trap(ctx); !errors.As(err, &ae) || ae.TypeId() != thrift.INTERNAL_ERROR ||
				!strings.Contains(ae.Error(), "trap") || !strings.Contains(ae.Error(), "trap requested") {
				t.Fatalf("trap: %v, want an INTERNAL_ERROR TApplicationException naming the fault and the guest's message", err)
			}
			if got, err := c.Echo(ctx, "after trap"); err != nil || got != "after trap" {
				t.Fatalf("echo after trap on the same connection = %q, %v", got, err)
			}
			hc := baseplate.NewBaseplateServiceV2Client(c.Client_())
			probe := baseplate.IsHealthyProbe_READINESS
			if ok, err := hc.IsHealthy(ctx, &baseplate.IsHealthyRequest{Probe: &probe}); err != nil || !ok {
				t.Fatalf("is_healthy = %v, %v", ok, err)
			}
		})
	}
}

func TestTHeaderHeadersAndConfig(t *testing.T) {
	t.Parallel()
	addr, _ := serve(t, "drain_time = 0")
	c, tr := dial(t, addr, kinds[4])
	ht := tr.(*thrift.THeaderTransport)
	ctx := thrift.SetWriteHeaderList(context.Background(), []string{"X-Request-Tag"})
	ctx = thrift.SetHeader(ctx, "X-Request-Tag", "tag-42")
	got, err := c.Lookup(ctx, "X-Request-Tag", "greeting")
	if err != nil || got != "tag-42|from config" {
		t.Fatalf("lookup = %q, %v", got, err)
	}
	if v := ht.GetReadHeaders()["Echoed-Header"]; v != "tag-42" {
		t.Errorf("reply header Echoed-Header = %q", v)
	}
}

func TestTimeoutAndDeadlineBudget(t *testing.T) {
	t.Parallel()
	addr, _ := serve(t, "drain_time = 0")
	c, _ := dial(t, addr, kinds[4])
	ctx := thrift.SetWriteHeaderList(context.Background(), []string{"Deadline-Budget"})
	ctx = thrift.SetHeader(ctx, "Deadline-Budget", "200")
	start := time.Now()
	var ae thrift.TApplicationException
	if _, err := c.Spin(ctx); !errors.As(err, &ae) || !strings.Contains(ae.Error(), "timeout") {
		t.Fatalf("spin: %v, want a timeout TApplicationException", err)
	}
	if d := time.Since(start); d > 1900*time.Millisecond {
		t.Errorf("spin with a 200 ms Deadline-Budget took %v; request_timeout (2 s) applied instead", d)
	}
	if got, err := c.Echo(context.Background(), "alive"); err != nil || got != "alive" {
		t.Fatalf("echo after timeout = %q, %v", got, err)
	}
}

func TestManyClients(t *testing.T) {
	t.Parallel()
	addr, _ := serve(t, "drain_time = 0")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _ := dial(t, addr, kinds[i%len(kinds)])
			for j := 0; j < 30; j++ {
				want := fmt.Sprintf("client %d call %d", i, j)
				if got, err := c.Echo(context.Background(), want); err != nil || got != want {
					t.Errorf("echo = %q, %v; want %q", got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestMalformedInput(t *testing.T) {
	t.Parallel()
	addr, log := serve(t, "drain_time = 0\nmax_frame_size = 1 MiB\nmax_message_size = 64 KiB\n")
	healthy, _ := dial(t, addr, kinds[2])
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	cases := []struct {
		name string
		data []byte
		log  string
	}{
		{"oversized frame", u32(2 << 20), "frame too large"},
		{"negative length", u32(0xfffffff0), "frame too large"},
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "closing connection"},
		{"truncated frame", append(u32(100), 0x80, 0x01, 0x00, 0x01), "truncated"},
		{"wrong protocol id", append(u32(12), 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0, 0, 0, 0), "closing connection"},
		{"unframed message over max_message_size", hugeUnframed(100 << 10), "exceeds max_message_size"},
	}
	for i, c := range cases {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(c.data)
		if c.name == "truncated frame" {
			conn.(*net.TCPConn).CloseWrite()
		}
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		b, err := io.ReadAll(conn)
		conn.Close()
		if errors.Is(err, syscall.ECONNRESET) { // closed with our bytes unread
			err = nil
		}
		if err != nil || len(b) != 0 {
			t.Errorf("%s: read %q, %v; want the server to close the connection", c.name, b, err)
		}
		if got, err := healthy.Echo(context.Background(), c.name); err != nil || got != c.name {
			t.Fatalf("healthy client after %s: %q, %v", c.name, got, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(log.String(), "thrift: closing connection") < i+1 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no log line naming the reason", c.name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(log.String(), c.log) {
			t.Errorf("%s: log lacks %q", c.name, c.log)
		}
	}
}

// hugeUnframed is an unframed binary echo call whose argument is n bytes.
func hugeUnframed(n int) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0x80010001)
	b = binary.BigEndian.AppendUint32(b, 4)
	b = append(b, "echo"...)
	b = binary.BigEndian.AppendUint32(b, 1)         // seqid
	b = append(b, byte(thrift.STRING), 0, 1)        // field 1
	b = binary.BigEndian.AppendUint32(b, uint32(n)) // string length
	return append(b, make([]byte, n)...)
}

// TestPythonClient runs Debian's python3-thrift against the server, with
// code generated by thrift --gen py, framed binary and THeader.
func TestPythonClient(t *testing.T) {
	t.Parallel()
	addr, _ := serve(t, "drain_time = 0")
	gen := t.TempDir()
	idl, _ := filepath.Abs("../../../guests/examples/thrift-go/example.thrift")
	if out, err := exec.Command("thrift", "-r", "--gen", "py", "-out", gen, idl).CombinedOutput(); err != nil {
		t.Fatalf("thrift --gen py (Debian package thrift-compiler): %v\n%s", err, out)
	}
	host, port, _ := net.SplitHostPort(addr)
	for _, mode := range []string{"framed", "header"} {
		out, err := exec.Command("/usr/bin/python3", "testdata/client.py", gen, host, port, mode).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "is_healthy ok") {
			t.Errorf("python %s client: %v\n%s", mode, err, out)
		}
	}
}

// TestHealthcheck runs `wasmserve healthcheck thrift` against the example:
// healthy, then READINESS failing (LIVENESS still passing) once SIGTERM
// starts the drain, and unreachable once it has exited.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	addr, _, cmd := serveCmd(t, "drain_time = 30 seconds")
	check := func(probe string) (string, error) {
		out, err := exec.Command(testguest.Binary(t), "healthcheck", "thrift", addr, "--probe", probe).CombinedOutput()
		return string(out), err
	}
	if out, err := check("readiness"); err != nil || strings.TrimSpace(out) != "OK!" {
		t.Fatalf("readiness before shutdown: %v %s", err, out)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := check("readiness")
		if err != nil && strings.Contains(out, "is_healthy returned false") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness still passing after SIGTERM: %v %s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := check("liveness"); err != nil || strings.TrimSpace(out) != "OK!" {
		t.Fatalf("liveness during drain: %v %s", err, out)
	}
	cmd.Process.Signal(syscall.SIGINT) // stop at once
	deadline = time.Now().Add(20 * time.Second)
	for {
		out, err := check("liveness")
		if err != nil && strings.Contains(out, "refused") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still reachable after stopping: %v %s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUnknownMethod checks that a method the guest does not know is
// answered by the guest's processor, with the caller's sequence id.
func TestUnknownMethod(t *testing.T) {
	t.Parallel()
	addr, _ := serve(t, "drain_time = 0")
	ctx := context.Background()
	cfg := &thrift.TConfiguration{ConnectTimeout: 10 * time.Second, SocketTimeout: 30 * time.Second}
	sock := thrift.NewTSocketConf(addr, cfg)
	if err := sock.Open(); err != nil {
		t.Fatal(err)
	}
	tr := thrift.NewTFramedTransportConf(sock, cfg)
	defer tr.Close()
	p := thrift.NewTBinaryProtocolConf(tr, cfg)
	p.WriteMessageBegin(ctx, "no_such_method", thrift.CALL, 41)
	p.WriteStructBegin(ctx, "args")
	p.WriteFieldStop(ctx)
	p.WriteStructEnd(ctx)
	p.WriteMessageEnd(ctx)
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	name, typ, seq, err := p.ReadMessageBegin(ctx)
	if err != nil || name != "no_such_method" || typ != thrift.EXCEPTION || seq != 41 {
		t.Fatalf("reply %q type %d seq %d, %v; want an exception for seq 41", name, typ, seq, err)
	}
	exc := thrift.NewTApplicationException(0, "")
	if err := exc.Read(ctx, p); err != nil || exc.TypeId() != thrift.UNKNOWN_METHOD {
		t.Fatalf("exception %v (type %d), %v; want UNKNOWN_METHOD", exc, exc.TypeId(), err)
	}
	p.ReadMessageEnd(ctx)
	c := example.NewExampleClient(thrift.NewTStandardClient(p, p))
	if got, err := c.Echo(ctx, "still here"); err != nil || got != "still here" {
		t.Fatalf("echo after unknown method = %q, %v", got, err)
	}
}

// TestOverloaded checks max_concurrency for Thrift: with every admitted
// call in progress, a further call is answered at once with an
// INTERNAL_ERROR naming the overload, its connection stays usable, and
// nothing waits in the accept loop.
func TestOverloaded(t *testing.T) {
	t.Parallel()
	addr, _ := serve(t, "drain_time = 0\nworkers = 2\nmax_concurrency = 2\nrequest_timeout = 30 seconds")
	probe, _ := dial(t, addr, kinds[2])
	a, _ := dial(t, addr, kinds[2])
	b, _ := dial(t, addr, kinds[4])
	ctx := context.Background()
	// A round holds both admitted slots with two slow calls and probes
	// until the probe is refused; on a stalled machine the slow calls may
	// end first, and the round is repeated.
	overloaded := false
	for round := 0; round < 5 && !overloaded; round++ {
		var wg sync.WaitGroup
		done := make(chan struct{})
		for _, c := range []*example.ExampleClient{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A pause arriving while the probe is in is itself refused.
				got, err := c.Pause(ctx, 2000)
				if err != nil && !isOverloaded(err) || err == nil && got != "paused" {
					t.Errorf("pause = %q, %v", got, err)
				}
			}()
		}
		go func() { wg.Wait(); close(done) }()
	probing:
		for {
			select {
			case <-done:
				break probing
			default:
			}
			_, err := probe.Echo(ctx, "probe")
			switch {
			case err == nil:
			case isOverloaded(err):
				overloaded = true
				break probing
			default:
				t.Fatalf("probe: %v", err)
			}
		}
		<-done
	}
	if !overloaded {
		t.Fatal("no call was refused while max_concurrency calls were in progress")
	}
	if got, err := probe.Echo(ctx, "after overload"); err != nil || got != "after overload" {
		t.Fatalf("echo on the refused call's connection = %q, %v", got, err)
	}
	if got, err := a.Echo(ctx, "a"); err != nil || got != "a" {
		t.Fatalf("echo after pause = %q, %v", got, err)
	}
}

// isOverloaded reports whether err is the host's answer to a call beyond
// max_concurrency.
func isOverloaded(err error) bool {
	var ae thrift.TApplicationException
	return errors.As(err, &ae) && ae.TypeId() == thrift.INTERNAL_ERROR && strings.Contains(ae.Error(), "overloaded")
}
