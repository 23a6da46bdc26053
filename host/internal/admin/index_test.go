package admin

import (
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wasmserve/wasmserve/host/internal/buildinfo"
)

func TestIndexListsEndpoints(t *testing.T) {
	t.Parallel()
	for _, pprof := range []bool{false, true} {
		srv := httptest.NewServer(New(Options{Gatherer: prometheus.NewRegistry(), Pprof: pprof}))
		code, body := get(t, srv.URL+"/")
		if code != 200 || !strings.Contains(body, "/metrics") || !strings.Contains(body, "/health?type=N") {
			t.Errorf("GET / = %d %q, want 200 listing /metrics and /health", code, body)
		}
		if got := strings.Contains(body, "/debug/pprof/"); got != pprof {
			t.Errorf("pprof=%v: GET / lists /debug/pprof/: %v", pprof, got)
		}
		if code, _ := get(t, srv.URL+"/nope"); code != 404 {
			t.Errorf("GET /nope = %d, want 404", code)
		}
		srv.Close()
	}
}

func TestBuildInfo(t *testing.T) {
	buildinfo.SetVersion("1.2.3-test")
	srv := httptest.NewServer(New(Options{Gatherer: prometheus.NewRegistry()}))
	defer srv.Close()
	_, body := get(t, srv.URL+"/metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ms := fams["wasmserve_build_info"].GetMetric()
	if len(ms) != 1 || ms[0].GetGauge().GetValue() != 1 {
		t.Fatalf("wasmserve_build_info = %v, want one sample of 1", ms)
	}
	labels := map[string]string{}
	for _, l := range ms[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] != "1.2.3-test" || labels["abi"] != "1" || labels["go"] != runtime.Version() {
		t.Errorf("wasmserve_build_info labels = %v", labels)
	}
}
