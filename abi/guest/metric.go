//go:build wasip1

package guest

import (
	"errors"
	"unsafe"

	"github.com/wasmserve/wasmserve/abi"
)

// Errors returned by the metric functions.
var (
	ErrMetricInvalid = errors.New("guest metric: invalid name, kind or value")
	ErrMetricLimit   = errors.New("guest metric: the app's metric name limit is reached")
)

func metric(kind int32, name string, v float64) error {
	switch hostMetric(kind, unsafe.Pointer(unsafe.StringData(name)), uint32(len(name)), v) {
	case 0:
		return nil
	case abi.ErrLimit:
		return ErrMetricLimit
	default:
		return ErrMetricInvalid
	}
}

// Count adds v (≥ 0) to the counter name. Names are [a-zA-Z_:][a-zA-Z0-9_:]*
// and appear under the app prefix in every metrics sink.
func Count(name string, v float64) error { return metric(abi.MetricCounter, name, v) }

// Gauge sets the gauge name to v.
func Gauge(name string, v float64) error { return metric(abi.MetricGauge, name, v) }

// Observe records v in the histogram name.
func Observe(name string, v float64) error { return metric(abi.MetricHistogram, name, v) }
