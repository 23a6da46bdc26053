package metrics

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// requestMetrics are the *_server_* metrics of one protocol.
type requestMetrics struct {
	latency *prometheus.HistogramVec
	total   *prometheus.CounterVec
}

// child is the pair of pre-resolved metrics one label combination updates.
type child struct {
	latency prometheus.Observer
	total   prometheus.Counter
}

func newHTTPMetrics(reg *prometheus.Registry, active *atomic.Int64) *requestMetrics {
	r := &requestMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_latency_seconds",
			Help:    "Time spent serving HTTP requests, from the request's arrival to its response.",
			Buckets: LatencyBuckets,
		}, []string{"http_method", "http_success"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_server_requests_total",
			Help: "HTTP requests served.",
		}, []string{"http_method", "http_success", "http_response_code"}),
	}
	reg.MustRegister(r.latency, r.total, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "http_server_active_requests",
		Help: "HTTP requests being served now.",
	}, func() float64 { return float64(active.Load()) }))
	return r
}

func newThriftMetrics(reg *prometheus.Registry, active *atomic.Int64) *requestMetrics {
	r := &requestMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "thrift_server_latency_seconds",
			Help:    "Time spent serving Thrift calls, from the message's arrival to its reply.",
			Buckets: LatencyBuckets,
		}, []string{"thrift_method", "thrift_success"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thrift_server_requests_total",
			Help: "Thrift calls served.",
		}, []string{"thrift_method", "thrift_success", "thrift_exception_type"}),
	}
	reg.MustRegister(r.latency, r.total, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "thrift_server_active_requests",
		Help: "Thrift calls being served now.",
	}, func() float64 { return float64(active.Load()) }))
	return r
}

// httpMethods are the methods with their own label value; any other
// method a client sends is counted as "other", so clients cannot create
// series at will.
var httpMethods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other"}

func httpMethodIndex(m string) int {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "DELETE":
		return 4
	case "CONNECT":
		return 5
	case "OPTIONS":
		return 6
	case "TRACE":
		return 7
	case "PATCH":
		return 8
	}
	return 9
}

// HTTPObserver is the httpfront.Observer that feeds the http_server_*
// metrics and the open-connection and active-request gauges. A request
// costs two atomic adds, two array lookups and the updates of one
// histogram and one counter; the label combinations are resolved once.
type HTTPObserver struct {
	m        *Metrics
	mu       sync.Mutex // serializes the creation of children
	children [len(httpMethods)][1000]atomic.Pointer[child]
}

// HTTPObserver returns the observer to give the HTTP front end. The
// http_server_* series are registered by the first call, so a server
// without an HTTP front end exports none.
func (m *Metrics) HTTPObserver() *HTTPObserver {
	m.httpOnce.Do(func() { m.http = newHTTPMetrics(m.reg, &m.httpActive) })
	return &HTTPObserver{m: m}
}

// RequestStarted counts a request in flight.
func (o *HTTPObserver) RequestStarted() { o.m.httpActive.Add(1) }

// RequestDone counts a finished request: success means a status below 400.
// A status outside 100–999 is counted as 500.
func (o *HTTPObserver) RequestDone(method string, status int, d time.Duration) {
	o.m.httpActive.Add(-1)
	switch {
	case status == 0:
		status = http.StatusOK // nothing written: net/http sends 200
	case status < 100 || status > 999:
		status = http.StatusInternalServerError
	}
	mi := httpMethodIndex(method)
	c := o.children[mi][status].Load()
	if c == nil {
		c = o.resolve(mi, status)
	}
	c.latency.Observe(d.Seconds())
	c.total.Inc()
}

func (o *HTTPObserver) resolve(mi, status int) *child {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c := o.children[mi][status].Load(); c != nil {
		return c
	}
	method, success := httpMethods[mi], strconv.FormatBool(status < 400)
	c := &child{
		latency: o.m.http.latency.WithLabelValues(method, success),
		total:   o.m.http.total.WithLabelValues(method, success, strconv.Itoa(status)),
	}
	o.children[mi][status].Store(c)
	return c
}

// ConnState counts open connections for the concurrency reporter.
func (o *HTTPObserver) ConnState(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		o.m.openConns.Add(1)
	case http.StateClosed, http.StateHijacked:
		o.m.openConns.Add(-1)
	}
}

// maxThriftLabels bounds the distinct (method, success, exception type)
// combinations of the thrift_server_* metrics; later combinations are
// counted under the method and exception type "other".
const maxThriftLabels = 512

// ThriftObserver feeds the thrift_server_* metrics and the open-connection
// and active-request gauges. Give it to the Thrift front end, which calls
// ConnOpened and ConnClosed around each connection and RequestStarted and
// RequestDone around each call. Its methods are safe for concurrent use.
type ThriftObserver struct {
	m        *Metrics
	children sync.Map // thriftKey → *child
	mu       sync.Mutex
	n        int          // children created, guarded by mu
	other    [2][2]*child // overflow children by success, raised; guarded by mu
}

type thriftKey struct {
	method, exception string
	success           bool
}

// ThriftObserver returns the observer to give the Thrift front end. The
// thrift_server_* series are registered by the first call, so a server
// without a Thrift front end exports none.
func (m *Metrics) ThriftObserver() *ThriftObserver {
	m.thriftOnce.Do(func() { m.thrift = newThriftMetrics(m.reg, &m.thriftActive) })
	return &ThriftObserver{m: m}
}

// ConnOpened counts an accepted connection.
func (o *ThriftObserver) ConnOpened() { o.m.openConns.Add(1) }

// ConnClosed counts a closed connection.
func (o *ThriftObserver) ConnClosed() { o.m.openConns.Add(-1) }

// RequestStarted counts a call in flight.
func (o *ThriftObserver) RequestStarted() { o.m.thriftActive.Add(1) }

// RequestDone counts a finished call of method. exceptionType is the
// name of the exception the call raised ("" when none), e.g. an IDL
// exception's struct name or "TApplicationException".
func (o *ThriftObserver) RequestDone(method string, success bool, exceptionType string, d time.Duration) {
	o.m.thriftActive.Add(-1)
	k := thriftKey{method: method, exception: exceptionType, success: success}
	v, ok := o.children.Load(k)
	if !ok {
		v = o.resolve(k)
	}
	c := v.(*child)
	c.latency.Observe(d.Seconds())
	c.total.Inc()
}

func (o *ThriftObserver) resolve(k thriftKey) *child {
	o.mu.Lock()
	defer o.mu.Unlock()
	if v, ok := o.children.Load(k); ok {
		return v.(*child)
	}
	success := strconv.FormatBool(k.success)
	if o.n < maxThriftLabels {
		o.n++
		c := &child{
			latency: o.m.thrift.latency.WithLabelValues(k.method, success),
			total:   o.m.thrift.total.WithLabelValues(k.method, success, k.exception),
		}
		o.children.Store(k, c)
		return c
	}
	si, ei, exc := 0, 0, ""
	if k.success {
		si = 1
	}
	if k.exception != "" {
		ei, exc = 1, "other"
	}
	if o.other[si][ei] == nil {
		o.other[si][ei] = &child{
			latency: o.m.thrift.latency.WithLabelValues("other", success),
			total:   o.m.thrift.total.WithLabelValues("other", success, exc),
		}
	}
	return o.other[si][ei]
}
