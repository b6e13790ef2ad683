package server

import (
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// StoreSafeguards returns the store's safeguards as the config sets them,
// for the server's store and for admin commands that open the store
// themselves (so every way in obeys the same limits).
func StoreSafeguards(cfg *config.Config) sqlite.OpsOptions {
	return sqlite.OpsOptions{
		MaxMailboxes: cfg.Limits.Mailboxes,
	}
}
