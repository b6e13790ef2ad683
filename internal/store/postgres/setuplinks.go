package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/postfach/postfach/internal/store"
)

var _ store.SetupLinks = (*Store)(nil)

const setupLinkCols = `id, account_id, device, sealed, created, expires, used`

func scanSetupLink(row interface{ Scan(...any) error }) (*store.SetupLink, error) {
	var l store.SetupLink
	var created, expires, used int64
	if err := row.Scan(&l.ID, &l.Account, &l.Device, &l.Sealed, &created, &expires, &used); err != nil {
		return nil, err
	}
	l.Created, l.Expires = time.Unix(created, 0), time.Unix(expires, 0)
	if used != 0 {
		l.Used = time.Unix(used, 0)
	}
	return &l, nil
}

// AddSetupLink implements store.SetupLinks.
func (s *Store) AddSetupLink(ctx context.Context, l store.SetupLink, passwordHash, scram string) (*store.Device, error) {
	if len(l.ID) == 0 || l.Device == "" || len(l.Sealed) == 0 {
		return nil, fmt.Errorf("add setup link of device %q: empty id, device or sealed password", l.Device)
	}
	var dev *store.Device
	err := s.write(ctx, func(w *wtx) error {
		if err := accountExists(w, l.Account); err != nil {
			return err
		}
		d, err := scanDevice(w.QueryRowContext(w.ctx, `SELECT `+deviceCols+` FROM devices WHERE account_id = ? AND name = ?`, l.Account, l.Device))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		case d.PasswordHash == "":
			return store.ErrNotFound
		}
		if passwordHash != "" {
			if _, err := w.ExecContext(w.ctx, `UPDATE devices SET password_hash = ?, scram = ? WHERE account_id = ? AND name = ?`,
				passwordHash, scram, l.Account, l.Device); err != nil {
				return err
			}
			d.PasswordHash, d.SCRAM = passwordHash, scram
		}
		if _, err := w.ExecContext(w.ctx, `DELETE FROM setup_links WHERE account_id = ? AND device = ?`, l.Account, l.Device); err != nil {
			return err
		}
		if _, err := w.ExecContext(w.ctx, `INSERT INTO setup_links (`+setupLinkCols+`) VALUES (?, ?, ?, ?, ?, ?, 0)`,
			l.ID, l.Account, l.Device, l.Sealed, l.Created.Unix(), l.Expires.Unix()); err != nil {
			return err
		}
		dev = d
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add setup link of device %q: %w", l.Device, err)
	}
	return dev, nil
}

// SetupLink implements store.SetupLinks.
func (s *Store) SetupLink(ctx context.Context, id []byte) (*store.SetupLink, error) {
	l, err := scanSetupLink(s.queryRow(ctx, `SELECT `+setupLinkCols+` FROM setup_links WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("setup link: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("setup link: %w", err)
	}
	return l, nil
}

// UseSetupLink implements store.SetupLinks. The row is read and changed
// in one write transaction, and the writer runs one at a time, so two
// downloads of one link cannot both get its password.
func (s *Store) UseSetupLink(ctx context.Context, id []byte, now time.Time) (*store.SetupLink, error) {
	var out *store.SetupLink
	err := s.write(ctx, func(w *wtx) error {
		l, err := scanSetupLink(w.QueryRowContext(w.ctx, `SELECT `+setupLinkCols+` FROM setup_links WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		switch {
		case !l.Used.IsZero():
			l.Sealed = nil
		case !now.Before(l.Expires):
			l.Sealed = nil
			if _, err := w.ExecContext(w.ctx, `UPDATE setup_links SET sealed = NULL WHERE id = ?`, id); err != nil {
				return err
			}
		default:
			// The stored time is in seconds; a link used in its first
			// second must still read as used.
			used := max(now.Unix(), 1)
			if _, err := w.ExecContext(w.ctx, `UPDATE setup_links SET sealed = NULL, used = ? WHERE id = ?`, used, id); err != nil {
				return err
			}
			l.Used = time.Unix(used, 0)
		}
		out = l
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("use setup link: %w", err)
	}
	return out, nil
}

// ExpireSetupLinks implements store.SetupLinks.
func (s *Store) ExpireSetupLinks(ctx context.Context, now time.Time) error {
	err := s.write(ctx, func(w *wtx) error { return expireSetupLinks(w, now) })
	if err != nil {
		return fmt.Errorf("expire setup links: %w", err)
	}
	return nil
}

func expireSetupLinks(w *wtx, now time.Time) error {
	if _, err := w.ExecContext(w.ctx, `UPDATE setup_links SET sealed = NULL WHERE expires <= ? AND sealed IS NOT NULL`, now.Unix()); err != nil {
		return err
	}
	_, err := w.ExecContext(w.ctx, `DELETE FROM setup_links WHERE expires <= ?`, now.Add(-store.SetupLinkKeep).Unix())
	return err
}
