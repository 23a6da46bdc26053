package deploy_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/wasmserve/wasmserve/host"
)

var (
	buildOnce sync.Once
	buildErr  error
	binPath   string
	modPath   string
)

// artefacts builds a static wasmserve and the hello-go module once.
func artefacts(t *testing.T) (bin, mod string) {
	t.Helper()
	buildOnce.Do(func() {
		root, _ := filepath.Abs("..")
		dir, err := os.MkdirTemp("", "wasmserve-deploy-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "wasmserve")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "./cmd/wasmserve")
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		if out, err := exec.Command("make", "--no-print-directory", "-C", filepath.Join(root, "guests/examples/hello-go")).CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("make hello-go: %v\n%s", err, out)
			return
		}
		modPath = filepath.Join(root, "guests/examples/hello-go/hello.wasm")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath, modPath
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// serve runs argv until the test ends and waits for url to answer 200.
func serve(t *testing.T, url string, env []string, argv ...string) *exec.Cmd {
	t.Helper()
	var log bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("server output:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		select {
		case <-done:
			t.Fatalf("server exited: %s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not answering: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestImage(t *testing.T) {
	t.Parallel()
	bin, mod := artefacts(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "image.tar")
	cmd := exec.Command("go", "run", "./cmd/image", "-binary", bin, "-module", mod, "-ini", "app.ini", "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, b)
	}
	img, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != "/usr/local/bin/wasmserve" {
		t.Errorf("entrypoint %q", got)
	}
	if got := strings.Join(cf.Config.Cmd, " "); got != "/app/app.ini" {
		t.Errorf("cmd %q", got)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want the non-root 65532:65532", cf.Config.User)
	}
	root := filepath.Join(dir, "rootfs")
	files := map[string]bool{}
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = true
		p := filepath.Join(root, h.Name)
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		b, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, b, os.FileMode(h.Mode)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"usr/local/bin/wasmserve", "app/hello.wasm", "app/app.ini", "tmp"} {
		if !files[f] {
			t.Errorf("image lacks %s (has %v)", f, files)
		}
	}
	// Run the binary from the unpacked layer against its own INI, on
	// loopback ports.
	ini := filepath.Join(root, "app", "app.ini")
	b, _ := os.ReadFile(ini)
	os.WriteFile(ini, []byte(strings.ReplaceAll(strings.ReplaceAll(string(b), "admin.bind = :6060", "admin.bind = 127.0.0.1:0"),
		"/tmp/wasmserve-cache", filepath.Join(dir, "cache"))), 0o644)
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	serve(t, url, nil, filepath.Join(root, "usr/local/bin/wasmserve"), "--bind", fmt.Sprintf("127.0.0.1:%d", port), ini)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from a container" {
		t.Fatalf("GET / = %q", body)
	}
}

// TestKubernetesManifests decodes every manifest strictly into the API
// types and checks them against the INI they ship.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("k8s/wasmserve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var (
		dep *appsv1.Deployment
		cm  *corev1.ConfigMap
		svc *corev1.Service
		pdb *policyv1.PodDisruptionBudget
	)
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatal(err)
		}
		var obj any
		switch tm.Kind {
		case "Deployment":
			dep = &appsv1.Deployment{}
			obj = dep
		case "ConfigMap":
			cm = &corev1.ConfigMap{}
			obj = cm
		case "Service":
			svc = &corev1.Service{}
			obj = svc
		case "PodDisruptionBudget":
			pdb = &policyv1.PodDisruptionBudget{}
			obj = pdb
		default:
			t.Fatalf("unexpected kind %q", tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s: %v", tm.Kind, err)
		}
	}
	if dep == nil || cm == nil || svc == nil || pdb == nil {
		t.Fatal("want a Deployment, a ConfigMap, a Service and a PodDisruptionBudget")
	}
	// The INI, with the module path pointed at a real file for parsing.
	_, mod := artefacts(t)
	iniText := strings.Replace(cm.Data["app.ini"], "factory = /app/hello.wasm", "factory = "+mod, 1)
	cfg, err := host.ParseConfig("configmap/app.ini", []byte(iniText), host.ConfigOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := dep.Spec.Template.Spec
	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	if grace <= cfg.Server.DrainTime+cfg.Server.StopTimeout {
		t.Errorf("terminationGracePeriodSeconds %v not above drain_time %v + stop_timeout %v", grace, cfg.Server.DrainTime, cfg.Server.StopTimeout)
	}
	c := spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	portOf := func(e host.Endpoint) int32 {
		_, p, _ := net.SplitHostPort(e.Address)
		n, _ := strconv.Atoi(p)
		return int32(n)
	}
	if ports["http"] != portOf(cfg.Server.Bind) || ports["admin"] != portOf(cfg.Server.Admin.Bind) {
		t.Errorf("container ports %v do not match bind %s and admin.bind %s", ports, cfg.Server.Bind, cfg.Server.Admin.Bind)
	}
	if a := dep.Spec.Template.Annotations["prometheus.io/port"]; a != strconv.Itoa(int(ports["admin"])) {
		t.Errorf("prometheus.io/port %q, want the admin port %d", a, ports["admin"])
	}
	if svc.Spec.Ports[0].TargetPort.StrVal != "http" {
		t.Errorf("service targets %v", svc.Spec.Ports[0].TargetPort)
	}
	for k, v := range pdb.Spec.Selector.MatchLabels {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("PDB selector %s=%s does not match the pods", k, v)
		}
	}
	// The probes are real subcommands: run them against the server.
	bin, _ := artefacts(t)
	dir := t.TempDir()
	iniPath := filepath.Join(dir, "app.ini")
	admin := freePort(t)
	os.WriteFile(iniPath, []byte(strings.NewReplacer("admin.bind = :6060", fmt.Sprintf("admin.bind = 127.0.0.1:%d", admin),
		"/tmp/wasmserve-cache", filepath.Join(dir, "cache")).Replace(iniText)), 0o644)
	port := freePort(t)
	serve(t, fmt.Sprintf("http://127.0.0.1:%d/", port), nil, bin, "--bind", fmt.Sprintf("127.0.0.1:%d", port), iniPath)
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		argv := append([]string{bin}, p.Exec.Command[1:]...)
		for i, a := range argv {
			argv[i] = strings.Replace(a, "127.0.0.1:6060", fmt.Sprintf("127.0.0.1:%d", admin), 1)
		}
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "OK!") {
			t.Errorf("probe %v: %v %s", p.Exec.Command, err, out)
		}
	}
}

// TestSystemdUnits verifies the units and runs the service's command line
// under systemd-socket-activate with a notify socket.
func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	bin, mod := artefacts(t)
	dir := t.TempDir()
	ini := filepath.Join(dir, "app.ini")
	os.WriteFile(ini, []byte(fmt.Sprintf("[server:main]\nfactory = http\nworkers = 2\ndrain_time = 0\ncompilation_cache = %s\n[app:main]\nfactory = %s\ngreeting = hello from systemd\n", filepath.Join(dir, "cache"), mod)), 0o644)
	service, _ := os.ReadFile("systemd/wasmserve.service")
	socket, _ := os.ReadFile("systemd/wasmserve.socket")
	unit := strings.NewReplacer("/usr/local/bin/wasmserve", bin, "/etc/wasmserve/app.ini", ini).Replace(string(service))
	os.WriteFile(filepath.Join(dir, "wasmserve.service"), []byte(unit), 0o644)
	os.WriteFile(filepath.Join(dir, "wasmserve.socket"), socket, 0o644)
	for _, want := range []string{"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM", "TimeoutStopSec=30"} {
		if !strings.Contains(string(service), want) {
			t.Errorf("service lacks %s", want)
		}
	}
	if out, err := exec.Command("systemd-analyze", "verify", "--man=no", filepath.Join(dir, "wasmserve.socket"), filepath.Join(dir, "wasmserve.service")).CombinedOutput(); err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	var execStart []string
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			execStart = strings.Fields(v)
		}
	}
	notify := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	port := freePort(t)
	argv := append([]string{"systemd-socket-activate", "-l", fmt.Sprintf("127.0.0.1:%d", port), "-E", "NOTIFY_SOCKET=" + notify}, execStart...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	expect := func(what string) {
		t.Helper()
		buf := make([]byte, 4096)
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			conn.SetReadDeadline(deadline)
			n, err := conn.Read(buf)
			if err != nil {
				break
			}
			if strings.Contains(string(buf[:n]), what) {
				return
			}
		}
		t.Fatalf("no %s on NOTIFY_SOCKET; output:\n%s", what, log.String())
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	// systemd-socket-activate starts the service on the first connection:
	// keep connecting until it is up.
	ready := make(chan struct{})
	go func() {
		for {
			select {
			case <-ready:
				return
			default:
			}
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
				c.Close()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	expect("READY=1")
	close(ready)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from systemd" {
		t.Fatalf("GET / = %q", body)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	expect("RELOADING=1")
	expect("READY=1")
	cmd.Process.Signal(syscall.SIGTERM)
	expect("STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, log.String())
	}
}
