package server

import (
	"log/slog"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/msgauth"
	"github.com/postfach/postfach/internal/store"
)

// NewDeliverer returns the delivery pipeline that cfg describes, on st:
// the one constructor of the running server (for SMTP, LMTP and the
// admin socket's `postfach deliver`) and of the admin commands that run
// on the store directly when no server runs. aliases is nil when st keeps
// none; a nil log discards.
func NewDeliverer(cfg *config.Config, st delivery.Store, aliases store.Aliases, log *slog.Logger) *delivery.Deliverer {
	return delivery.New(delivery.Options{
		Store:          st,
		Aliases:        aliases,
		Hostname:       cfg.Hostname,
		Domains:        cfg.Domains,
		Postmaster:     cfg.Postmaster,
		MaxMessageSize: int64(cfg.MaxMessageSize),
		Logger:         log,
	})
}

// NewSigner returns the DKIM signer of outgoing mail (delivery.Signer):
// it signs with the keys `postfach dkim keygen` kept in keys, and leaves
// mail from a domain without keys unsigned. The outbound queue calls it
// for every message it sends; a nil log discards.
func NewSigner(keys store.DKIMKeys, log *slog.Logger) delivery.Signer {
	return msgauth.NewSigner(keys, log)
}

// dkimKeys returns the DKIM keys of st, or of the backend under it when
// a test wraps st.
func dkimKeys(st store.Store, backend store.DKIMKeys) store.DKIMKeys {
	if dk, ok := st.(store.DKIMKeys); ok {
		return dk
	}
	return backend
}
