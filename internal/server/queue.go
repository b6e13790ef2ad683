package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/dnsr"
	"github.com/postfach/postfach/internal/queue"
)

// newResolver returns the DNS resolver of [dns].
func newResolver(cfg *config.Config, log *slog.Logger, now func() time.Time) (*dnsr.Client, error) {
	return dnsr.New(dnsr.Options{Servers: cfg.DNS.Servers, Logger: log.With("component", "dns"), Now: now})
}

// rootCAs returns the system's roots plus queue.ca_file's.
func rootCAs(cfg *config.Config) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if cfg.Queue.CAFile == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(cfg.Queue.CAFile)
	if err != nil {
		return nil, fmt.Errorf("queue.ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("queue.ca_file %s: no PEM certificates in it", cfg.Queue.CAFile)
	}
	return pool, nil
}

// startQueue builds and starts the outbound queue on the server's store;
// submission (and the server's own reports) hand it mail as a
// delivery.Enqueuer.
func (s *Server) startQueue(ctx context.Context, opt Options, deliverer *delivery.Deliverer) error {
	cfg := s.cfg
	qs, ok := s.st.(queue.Store)
	if !ok {
		qs = s.be.Queue
	}
	log := s.log.With("component", "queue")
	res := s.dns
	roots, err := rootCAs(cfg)
	if err != nil {
		return err
	}
	retry := make([]time.Duration, len(cfg.Queue.Retry))
	for i, d := range cfg.Queue.Retry {
		retry[i] = d.D()
	}
	delayNotice := cfg.Queue.DelayNotice.D()
	if delayNotice == 0 {
		delayNotice = -1
	}
	qo := queue.Options{
		Store:          qs,
		Local:          deliverer,
		Resolver:       res,
		Signer:         s.signer,
		Hostname:       cfg.Hostname,
		Port:           cfg.Queue.Port,
		Retry:          retry,
		Lifetime:       cfg.Queue.Lifetime.D(),
		DelayNotice:    delayNotice,
		Concurrency:    cfg.Queue.Concurrency,
		MaxMessageSize: int64(cfg.MaxMessageSize),
		RootCAs:        roots,
		Now:            opt.Now,
		Logger:         log,
		Metrics:        s.m.queue(),
	}
	if r := cfg.Relay; r.Host != "" {
		qo.Relay = &queue.Relay{Host: r.Host, Username: r.Username, Password: r.Password, TLS: r.TLS}
	}
	if opt.Queue != nil {
		opt.Queue(&qo)
	}
	q, err := queue.New(qo)
	if err != nil {
		return err
	}
	if err := q.Start(ctx); err != nil {
		return fmt.Errorf("start queue: %w", err)
	}
	s.queue = q
	s.m.watchQueue(q)
	return nil
}

// Queue returns the outbound queue: the delivery.Enqueuer submission
// hands mail for other servers to.
func (s *Server) Queue() *queue.Queue { return s.queue }

// queue returns the queue's metrics hooks.
func (m *metrics) queue() queue.Metrics {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "postfach_queue_deliveries_total",
		Help: "Outbound recipients by result: delivered, deferred (a temporary failure, retried), failed (refused for good), expired (given up).",
	}, []string{"result"})
	m.reg.MustRegister(c)
	return queue.Metrics{Delivered: func(result string) { c.WithLabelValues(result).Inc() }}
}

// watchQueue exports the queue's size.
func (m *metrics) watchQueue(q *queue.Queue) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "postfach_queue_messages", Help: "Messages in the outbound queue.",
	}, func() float64 { return float64(q.Len()) }))
}
