package server

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/smtpserver"
)

// metrics are the server's Prometheus metrics, on a registry of their own
// (no global state).
type metrics struct {
	reg *prometheus.Registry

	connsOpen     *prometheus.GaugeVec
	connsTotal    *prometheus.CounterVec
	connsRejected *prometheus.CounterVec
	deliveries    *prometheus.CounterVec
	deliveryTime  *prometheus.HistogramVec
	errors        *prometheus.CounterVec
	commitTime    prometheus.Histogram
	commitBatch   prometheus.Histogram
	commitErrors  prometheus.Counter
	guard         guardMetrics
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		connsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "postfach_connections_open", Help: "Open connections per protocol.",
		}, []string{"proto"}),
		connsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postfach_connections_total", Help: "Accepted connections per protocol.",
		}, []string{"proto"}),
		connsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postfach_connections_rejected_total", Help: "Connections refused by a limit.",
		}, []string{"proto"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postfach_deliveries_total", Help: "Recipients delivered (result=ok) or failed after the message was received.",
		}, []string{"proto", "result"}),
		deliveryTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "postfach_delivery_duration_seconds",
			Help:    "Time from the end of DATA to the durable store, per message.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"proto"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postfach_errors_total", Help: "Refused recipients and failed deliveries, by kind.",
		}, []string{"proto", "kind"}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "postfach_store_commit_duration_seconds",
			Help:    "Duration of store group commits, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "postfach_store_commit_batch_size",
			Help:    "Writes per store group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postfach_store_commit_errors_total", Help: "Failed store commits.",
		}),
	}
	m.reg.MustRegister(m.connsOpen, m.connsTotal, m.connsRejected, m.deliveries, m.deliveryTime,
		m.errors, m.commitTime, m.commitBatch, m.commitErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.guard = newGuardMetrics(m.reg)
	return m
}

// smtp returns the hooks for the SMTP and LMTP servers.
func (m *metrics) smtp() smtpserver.Metrics {
	return smtpserver.Metrics{
		Delivered: func(proto string, ok, failed int, d time.Duration) {
			m.deliveries.WithLabelValues(proto, "ok").Add(float64(ok))
			if failed > 0 {
				m.deliveries.WithLabelValues(proto, "failed").Add(float64(failed))
			}
			m.deliveryTime.WithLabelValues(proto).Observe(d.Seconds())
		},
		Error:       func(proto, kind string) { m.errors.WithLabelValues(proto, kind).Inc() },
		ConnMetrics: m.conns(),
	}
}

// conns returns the connection hooks every listener shares.
func (m *metrics) conns() netserve.ConnMetrics {
	return netserve.ConnMetrics{
		ConnOpen: func(proto string) {
			m.connsOpen.WithLabelValues(proto).Inc()
			m.connsTotal.WithLabelValues(proto).Inc()
		},
		ConnClose:  func(proto string) { m.connsOpen.WithLabelValues(proto).Dec() },
		ConnReject: func(proto, reason string) { m.connsRejected.WithLabelValues(proto).Inc() },
		PreAuthRefused: func(proto, reason string) {
			m.guard.preAuthRefused.WithLabelValues(proto, reason).Inc()
		},
	}
}

// storeFiles is what the store tells about its files.
type storeFiles interface {
	WALSize() int64
	DatabaseSize() int64
}

// watchStore adds the sizes of the store's database and write-ahead log,
// read at each scrape. The log is kept near 16 MiB (issue 11); a log that
// keeps growing means reads that never end.
func (m *metrics) watchStore(st storeFiles) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "postfach_store_wal_bytes", Help: "Size of the store's SQLite write-ahead log file.",
		}, func() float64 { return float64(st.WALSize()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "postfach_store_database_bytes", Help: "Size of the store's SQLite database file.",
		}, func() float64 { return float64(st.DatabaseSize()) }),
	)
}

// onCommit is the store's commit hook.
func (m *metrics) onCommit(d time.Duration, batch int, err error) {
	m.commitTime.Observe(d.Seconds())
	m.commitBatch.Observe(float64(batch))
	if err != nil {
		m.commitErrors.Inc()
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
