package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// StoreSafeguards returns the store's safeguards as the config sets them,
// for the server's store and for admin commands that open the store
// themselves (so every way in obeys the same limits).
func StoreSafeguards(cfg *config.Config) sqlite.OpsOptions {
	return sqlite.OpsOptions{
		MaxMailboxes:  cfg.Limits.Mailboxes,
		ScrubRate:     int64(cfg.Scrub.Rate),
		ScrubInterval: cfg.Scrub.Interval.D(),
		ReserveSize:   int64(cfg.Limits.DiskReserve),
		Quota:         store.Quota{Bytes: int64(cfg.Limits.Quota), Messages: cfg.Limits.QuotaMessages},
	}
}

// damageCounter is a store that counts the damaged bodies it found.
type damageCounter interface {
	DamagedBodies() int
	DamagedBodiesFound() int64
}

// registerDamageMetrics adds the store's damaged-body figures to /metrics.
func (m *metrics) registerDamageMetrics(st damageCounter) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "postfach_store_damaged_bodies",
			Help: "Message bodies known to be damaged now (missing or wrong file, content not matching its SHA-256).",
		}, func() float64 { return float64(st.DamagedBodies()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "postfach_store_damaged_bodies_found_total",
			Help: "Damaged message bodies found since the start, by opening them, by postfach check or by the scrub.",
		}, func() float64 { return float64(st.DamagedBodiesFound()) }),
	)
}

// registerStoreMetrics adds the SQLite store's safeguard figures (the
// scrub, the disk reserve) to /metrics.
func (m *metrics) registerStoreMetrics(st *sqlite.Store) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "postfach_scrub_bytes_total",
			Help: "Bytes of message bodies read and compared with their SHA-256 by the scrub and postfach check.",
		}, func() float64 { return float64(st.ScrubbedBytes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "postfach_store_disk_reserve_bytes",
			Help: "Size of the disk reserve held now; 0 while it is released because the disk filled (or when it is off).",
		}, func() float64 { held, _ := st.DiskReserve(); return float64(held) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "postfach_store_low_space",
			Help: "1 while new mail is refused because the disk filled and the reserve is in use for deletions.",
		}, func() float64 {
			if _, low := st.DiskReserve(); low {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "postfach_scrub_passes_total",
			Help: "Completed scrub passes over every stored body.",
		}, func() float64 { return float64(st.ScrubPasses()) }),
	)
}
