package host

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func probeConfig(t *testing.T, bind string) *Config {
	t.Helper()
	dir := t.TempDir()
	mod := filepath.Join(dir, "app.wasm")
	os.WriteFile(mod, []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	cfg, err := ParseConfig(filepath.Join(dir, "app.ini"), []byte("[server:main]\nfactory = http\n[app:main]\nfactory = app.wasm\n"),
		ConfigOptions{Bind: bind, LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestProbeBind(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	err = probeBind(probeConfig(t, addr))
	if err == nil || !strings.Contains(err.Error(), "listen "+addr+" (from the --bind flag): address already in use") {
		t.Errorf("probe of a taken address: %v", err)
	}
	// A free address passes and is left free.
	free := probeConfig(t, "127.0.0.1:0")
	if err := probeBind(free); err != nil {
		t.Errorf("probe of a free address: %v", err)
	}
	// Unix sockets are not probed: nothing is created.
	sock := filepath.Join(t.TempDir(), "s.sock")
	if err := probeBind(probeConfig(t, "unix:"+sock)); err != nil {
		t.Errorf("probe of a unix socket: %v", err)
	}
	if _, err := os.Stat(sock); err == nil {
		t.Error("the probe created the unix socket")
	}
	// The admin listener is probed too.
	admin := probeConfig(t, "127.0.0.1:0")
	admin.Server.Admin.Bind = Endpoint{Network: "tcp", Address: addr}
	if err := probeBind(admin); err == nil || !strings.Contains(err.Error(), "admin.bind "+addr+" (the default admin.bind): address already in use: stop the process listening there, or choose another address with WASMSERVE_ADMIN_BIND or admin.bind in ") {
		t.Errorf("probe of a taken admin address: %v", err)
	}
	// Sockets passed by systemd are not probed.
	t.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	if err := probeBind(probeConfig(t, addr)); err != nil {
		t.Errorf("probe with inherited sockets: %v", err)
	}
}
