package postgres

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// Damaged bodies (issue 11). A body whose file is missing or has the wrong
// size is found when it is opened; one whose content no longer matches
// its SHA-256 only by reading it all, which the scrub (scrub.go) and Check
// do. Either way the body is recorded here: OpenBody then answers
// store.ErrDamaged for it, so protocols refuse that one message with a
// clear reason instead of sending altered mail, and the damage is logged
// once, with the account, mailbox and UID of every message that uses the
// body. The record lives in memory; after a restart the scrub and the
// opens find the damage again. A body that verifies again (the operator
// restored the file) is cleared.

// damageLocation is one message that uses a body.
type damageLocation struct {
	account     store.AccountID
	accountName string
	mailbox     store.MailboxID
	mailboxName string
	uid         mail.UID
}

// maxDamageLocations bounds the messages named for one damaged body.
const maxDamageLocations = 50

// bodyLocations lists the messages (not the expunged ones) that use the
// body with row id, at most maxDamageLocations.
func (s *Store) bodyLocations(ctx context.Context, id int64) ([]damageLocation, error) {
	rows, err := s.query(ctx, `SELECT a.id, a.name, mb.id, mb.name, m.uid FROM messages m
		JOIN mailboxes mb ON mb.id = m.mailbox_id JOIN accounts a ON a.id = mb.account_id
		WHERE m.blob_id = ? ORDER BY a.name, mb.name, m.uid LIMIT ?`, id, maxDamageLocations)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []damageLocation
	for rows.Next() {
		var l damageLocation
		if err := rows.Scan(&l.account, &l.accountName, &l.mailbox, &l.mailboxName, &l.uid); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// markDamaged records the body with row id (and content hash) as damaged
// for reason, logs it the first time, and returns the error OpenBody
// gives for it. The caller must hold no connection of the read pool.
func (s *Store) markDamaged(ctx context.Context, id int64, hash, reason string) error {
	s.ops.mu.Lock()
	if s.ops.damaged == nil {
		s.ops.damaged = map[int64]string{}
	}
	_, known := s.ops.damaged[id]
	s.ops.damaged[id] = reason
	s.ops.mu.Unlock()
	if !known {
		s.ops.damagedFound.Add(1)
		s.logDamage(ctx, id, hash, reason)
	}
	return damagedError(id, reason)
}

func damagedError(id int64, reason string) error {
	return fmt.Errorf("open body %d: %w: %s", id, store.ErrDamaged, reason)
}

// logDamage logs a newly found damaged body once, with every message that
// uses it.
func (s *Store) logDamage(ctx context.Context, id int64, hash, reason string) {
	locs, err := s.bodyLocations(context.WithoutCancel(ctx), id)
	attrs := []any{"body", id, "sha256", hash, "reason", reason}
	if err != nil {
		attrs = append(attrs, "locate_err", err)
	}
	if len(locs) == 0 {
		s.log.Error("damaged message body found; no message uses it", attrs...)
		return
	}
	for _, l := range locs {
		s.log.Error("damaged message body found", append(attrs,
			slog.String("account", l.accountName), slog.String("mailbox", l.mailboxName), slog.Uint64("uid", uint64(l.uid)))...)
	}
	if len(locs) == maxDamageLocations {
		s.log.Error("damaged message body found; more messages use it", attrs...)
	}
}

// knownDamaged returns the ErrDamaged error of a body recorded as damaged,
// or nil.
func (s *Store) knownDamaged(id int64) error {
	s.ops.mu.Lock()
	reason, ok := s.ops.damaged[id]
	s.ops.mu.Unlock()
	if !ok {
		return nil
	}
	return damagedError(id, reason)
}

// clearDamaged forgets a body that verified again.
func (s *Store) clearDamaged(id int64, hash string) {
	s.ops.mu.Lock()
	_, ok := s.ops.damaged[id]
	delete(s.ops.damaged, id)
	s.ops.mu.Unlock()
	if ok {
		s.log.Info("message body verified again after it was found damaged", "body", id, "sha256", hash)
	}
}

// DamagedBodies returns how many bodies are known to be damaged now
// (found by opening, Check or the scrub, and not verified since).
func (s *Store) DamagedBodies() int {
	s.ops.mu.Lock()
	defer s.ops.mu.Unlock()
	return len(s.ops.damaged)
}

// DamagedBodiesFound counts the damaged bodies found since the store was
// opened.
func (s *Store) DamagedBodiesFound() int64 { return s.ops.damagedFound.Load() }
