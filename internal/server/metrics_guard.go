package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/netserve"
)

// guardMetrics count what the guessing protection and the limits before
// login do (docs/security.md).
type guardMetrics struct {
	reg            *prometheus.Registry
	failures       *prometheus.CounterVec
	delays         prometheus.Counter
	delaySeconds   prometheus.Counter
	blocks         prometheus.Counter
	refused        *prometheus.CounterVec
	preAuthRefused *prometheus.CounterVec
}

func newGuardMetrics(reg *prometheus.Registry) guardMetrics {
	g := guardMetrics{
		reg: reg,
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postfach_auth_failures_total", Help: "Failed logins (wrong password, unknown user, malformed exchange), per service.",
		}, []string{"service"}),
		delays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postfach_auth_delays_total", Help: "Login attempts made to wait by the guessing protection.",
		}),
		delaySeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postfach_auth_delay_seconds_total", Help: "Time login attempts were made to wait, in total.",
		}),
		blocks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postfach_auth_blocks_total", Help: "Clients (IPv4 addresses, IPv6 /64s) blocked after repeated login failures.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postfach_auth_refused_total", Help: "Login attempts of blocked clients, refused unchecked, per service.",
		}, []string{"service"}),
		preAuthRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postfach_preauth_refused_total", Help: "Commands refused before login because of a limit (client_memory, line_too_long, literal_too_big).",
		}, []string{"proto", "reason"}),
	}
	reg.MustRegister(g.failures, g.delays, g.delaySeconds, g.blocks, g.refused, g.preAuthRefused)
	return g
}

// auth returns the hooks of the guessing protection.
func (m *metrics) auth() auth.Metrics {
	g := m.guard
	return auth.Metrics{
		Failure: func(service string) { g.failures.WithLabelValues(service).Inc() },
		Delayed: func(d time.Duration) {
			g.delays.Inc()
			g.delaySeconds.Add(d.Seconds())
		},
		Blocked: func() { g.blocks.Inc() },
		Refused: func(service string) { g.refused.WithLabelValues(service).Inc() },
	}
}

// watchGuard exports the blocked clients and the memory held before
// login as gauges, read when /metrics is scraped.
func (m *metrics) watchGuard(a *auth.Service, b *netserve.Budget) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "postfach_auth_blocked_clients", Help: "Clients the guessing protection refuses now.",
		}, func() float64 { return float64(a.BlockedClients()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "postfach_preauth_held_bytes", Help: "Bytes held for the commands of connections that have not logged in.",
		}, func() float64 { return float64(b.Held()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "postfach_preauth_held_bytes_max_client", Help: "Bytes held before login by the client that holds the most (limit: limits.preauth_memory_per_ip).",
		}, func() float64 { return float64(b.MaxHeld()) }),
	)
}
