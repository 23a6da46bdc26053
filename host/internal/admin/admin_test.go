package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestHealth(t *testing.T) {
	t.Parallel()
	var shutting atomic.Bool
	srv := httptest.NewServer(New(Options{Ready: func() bool { return !shutting.Load() }}))
	defer srv.Close()
	for _, tc := range []struct {
		query    string
		shutting bool
		want     int
	}{
		{"", false, 200},
		{"?type=1", false, 200},
		{"?type=2", false, 200},
		{"?type=3", false, 200},
		{"?type=1", true, 503},
		{"?type=9", true, 503}, // unknown probes are readiness
		{"", true, 503},
		{"?type=2", true, 200},
		{"?type=3", true, 200},
	} {
		shutting.Store(tc.shutting)
		if code, body := get(t, srv.URL+"/health"+tc.query); code != tc.want || !strings.Contains(body, "healthy") {
			t.Errorf("GET /health%s while shutting=%v: %d %q, want %d", tc.query, tc.shutting, code, body, tc.want)
		}
	}
}

func TestMetricsAndPprof(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "things_total", Help: "Things."})
	reg.MustRegister(c)
	c.Add(3)
	for _, pprof := range []bool{false, true} {
		srv := httptest.NewServer(New(Options{Gatherer: reg, Pprof: pprof}))
		code, body := get(t, srv.URL+"/metrics")
		if code != 200 {
			t.Fatalf("GET /metrics: %d", code)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			t.Fatalf("parse /metrics: %v", err)
		}
		if got := fams["things_total"].GetMetric()[0].GetCounter().GetValue(); got != 3 {
			t.Errorf("things_total = %v, want 3", got)
		}
		want := 404
		if pprof {
			want = 200
		}
		if code, _ := get(t, srv.URL+"/debug/pprof/goroutine?debug=1"); code != want {
			t.Errorf("pprof=%v: GET /debug/pprof/goroutine: %d, want %d", pprof, code, want)
		}
		srv.Close()
	}
}
