package outbound

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmserve/wasmserve/abi"
)

// clientMetrics are the client metrics, with baseplate.py's names and
// labels.
type clientMetrics struct {
	httpLatency   *prometheus.HistogramVec
	httpTotal     *prometheus.CounterVec
	httpActive    *prometheus.GaugeVec
	thriftLatency *prometheus.HistogramVec
	thriftTotal   *prometheus.CounterVec
	poolMax       *prometheus.GaugeVec
	poolActive    *prometheus.GaugeVec

	mu      sync.Mutex
	methods map[string]int // distinct Thrift method labels per client
}

// maxThriftMethods bounds the thrift_method label values per client; a
// guest naming more methods than that has the rest counted as "other".
const maxThriftMethods = 200

// HTTPClientName is the http_client_name label of the guests' HTTP client.
const HTTPClientName = "http"

func newClientMetrics(_ *Registry, buckets []float64) *clientMetrics {
	if buckets == nil {
		buckets = prometheus.ExponentialBuckets(0.0001, 2.5, 14)
	}
	return &clientMetrics{
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_client_latency_seconds", Help: "Time spent on outbound HTTP requests made by guests, to the last body byte.", Buckets: buckets,
		}, []string{"http_method", "http_client_name", "http_success"}),
		httpTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_client_requests_total", Help: "Outbound HTTP requests made by guests.",
		}, []string{"http_method", "http_client_name", "http_success", "http_response_code"}),
		httpActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "http_client_active_requests", Help: "Outbound HTTP requests in progress.",
		}, []string{"http_method", "http_client_name"}),
		thriftLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "thrift_client_latency_seconds", Help: "Time spent on outbound Thrift calls made by guests.", Buckets: buckets,
		}, []string{"thrift_method", "thrift_client_name", "thrift_success"}),
		thriftTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thrift_client_requests_total", Help: "Outbound Thrift calls made by guests.",
		}, []string{"thrift_method", "thrift_client_name", "thrift_success", "thrift_exception_type", "thrift_baseplate_status", "thrift_baseplate_status_code"}),
		poolMax: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "thrift_client_pool_max_size", Help: "Most connections a Thrift client pool opens.",
		}, []string{"thrift_pool"}),
		poolActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "thrift_client_pool_active_connections", Help: "Connections a Thrift client pool holds open.",
		}, []string{"thrift_pool"}),
		methods: map[string]int{},
	}
}

func (m *clientMetrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.httpLatency, m.httpTotal, m.httpActive, m.thriftLatency, m.thriftTotal, m.poolMax, m.poolActive} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// httpMethods have their own label value; others count as "other".
var httpMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true, "CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true}

type httpCallMetrics struct {
	m      *clientMetrics
	method string
	active prometheus.Gauge
}

func (m *clientMetrics) http(method string) httpCallMetrics {
	if !httpMethods[method] {
		method = "other"
	}
	return httpCallMetrics{m: m, method: method, active: m.httpActive.WithLabelValues(method, HTTPClientName)}
}

// observe counts a finished request; code 0 means it got no response.
func (h httpCallMetrics) observe(code int, d time.Duration) {
	success, codeS := "false", ""
	if code != 0 {
		codeS = strconv.Itoa(code)
		if code >= 200 && code < 400 {
			success = "true"
		}
	}
	h.m.httpLatency.WithLabelValues(h.method, HTTPClientName, success).Observe(d.Seconds())
	h.m.httpTotal.WithLabelValues(h.method, HTTPClientName, success, codeS).Inc()
}

type thriftCallMetrics struct {
	m              *clientMetrics
	client, method string
}

func (m *clientMetrics) thrift(client, method string) thriftCallMetrics {
	m.mu.Lock()
	k := client + "\x00" + method
	if _, ok := m.methods[k]; !ok {
		if m.methods[client] >= maxThriftMethods {
			method = "other"
		} else {
			m.methods[client]++
			m.methods[k] = 1
		}
	}
	m.mu.Unlock()
	return thriftCallMetrics{m: m, client: client, method: method}
}

// observe counts a finished call: a reply of type exception
// (TApplicationException) or a failed call is not a success.
func (t thriftCallMetrics) observe(reply []byte, err *Error, d time.Duration) {
	success, exc := "true", ""
	switch {
	case err != nil:
		success, exc = "false", "TTransportException"
		if err.Code == abi.ErrProtocol {
			exc = "TProtocolException"
		}
	case len(reply) > 0:
		if h, perr := peekMessage(reply); perr == nil && h.typ == abi.ThriftException {
			success, exc = "false", "TApplicationException"
		}
	}
	t.m.thriftLatency.WithLabelValues(t.method, t.client, success).Observe(d.Seconds())
	t.m.thriftTotal.WithLabelValues(t.method, t.client, success, exc, "", "").Inc()
}
