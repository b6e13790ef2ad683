package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postfach/postfach/internal/backup"
	"github.com/postfach/postfach/internal/store"
)

// Scheduled backups ([backup], docs/backup.md): every backup.interval the
// server writes a backup of its store into backup.dir, then prunes the
// root to backup.keep backups.

// backupMetrics are the metrics of scheduled and admin backups.
type backupMetrics struct {
	lastSuccess prometheus.Gauge
	lastSize    prometheus.Gauge
	lastNew     prometheus.Gauge
	failures    prometheus.Counter
}

func newBackupMetrics(reg *prometheus.Registry) *backupMetrics {
	m := &backupMetrics{
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "postfach_backup_last_success_timestamp_seconds", Help: "When the last successful backup started (Unix time); 0 before the first.",
		}),
		lastSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "postfach_backup_last_size_bytes", Help: "Size of the last successful backup: its records and every body it uses.",
		}),
		lastNew: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "postfach_backup_last_new_bytes", Help: "Bytes of bodies the last successful backup wrote (the rest were in the backup root already).",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postfach_backup_failures_total", Help: "Backups that failed or found damaged bodies.",
		}),
	}
	reg.MustRegister(m.lastSuccess, m.lastSize, m.lastNew, m.failures)
	return m
}

// record notes the outcome of a backup.
func (m *backupMetrics) record(start time.Time, res *backup.Result, err error) {
	if err != nil || len(res.Damaged) > 0 {
		m.failures.Inc()
	}
	if err != nil {
		return
	}
	size := res.Manifest.BodyBytes
	for _, f := range res.Manifest.Files {
		size += f.Bytes
	}
	m.lastSuccess.Set(float64(start.Unix()))
	m.lastSize.Set(float64(size))
	m.lastNew.Set(float64(res.Manifest.NewBytes))
}

// snapshotter returns the store's Snapshotter (the backend's when a test
// wraps the store).
func (s *Server) snapshotter() store.Snapshotter {
	if sn, ok := s.st.(store.Snapshotter); ok {
		return sn
	}
	return s.be.Snapshotter
}

// runBackups takes the scheduled backups until ctx ends.
func (s *Server) runBackups(ctx context.Context) {
	cfg := s.cfg.Backup
	log := s.log.With("component", "backup")
	t := time.NewTicker(cfg.Interval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		res, err := backup.Backup(ctx, s.snapshotter(), cfg.Dir, backup.Options{Logger: log})
		s.bm.record(start, res, err)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("scheduled backup failed", "dir", cfg.Dir, "err", err)
			}
			continue
		}
		if len(res.Damaged) > 0 {
			log.Error("scheduled backup written without damaged bodies", "dir", res.Dir, "damaged", len(res.Damaged))
		} else {
			log.Info("scheduled backup done", "dir", res.Dir, "bodies", res.Manifest.Bodies, "new_bytes", res.Manifest.NewBytes,
				"took", time.Since(start).Round(time.Millisecond))
		}
		pr, err := backup.Prune(cfg.Dir, cfg.Keep)
		if err != nil {
			log.Error("pruning old backups failed", "dir", cfg.Dir, "err", err)
			continue
		}
		if len(pr.Removed) > 0 {
			log.Info("old backups pruned", "removed", pr.Removed, "bodies", pr.Bodies, "bytes", pr.Bytes)
		}
	}
}
