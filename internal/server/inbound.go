package server

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/dnsr"
	"github.com/postfach/postfach/internal/msgauth"
)

// newInboundChecker returns the sender authentication checks of the MX
// ([inbound], issue 16) on res, with their counter
// registered in reg. It is built also when every check is off: it then
// still removes forged Authentication-Results fields of our hostname.
func newInboundChecker(cfg *config.Config, res dnsr.Resolver, reg prometheus.Registerer, log *slog.Logger) (*msgauth.Checker, error) {
	results := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "postfach_inbound_auth_results_total",
		Help: "Results of the sender authentication checks of the MX, by mechanism (spf, dkim, dmarc; action: what was done with the message) and result.",
	}, []string{"mechanism", "result"})
	if err := reg.Register(results); err != nil {
		return nil, fmt.Errorf("inbound metrics: %w", err)
	}
	in := cfg.Inbound
	return msgauth.NewChecker(msgauth.CheckOptions{
		Resolver:     res,
		Hostname:     cfg.Hostname,
		LocalDomains: cfg.Domains,
		SPF:          in.SPF,
		DKIM:         in.DKIM,
		DMARC:        in.DMARC,
		DMARCReject:  in.DMARCReject,
		Metrics:      func(mech, result string) { results.WithLabelValues(mech, result).Inc() },
		Logger:       log.With("component", "msgauth"),
	}), nil
}
