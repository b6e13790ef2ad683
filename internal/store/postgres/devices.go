package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/postfach/postfach/internal/store"
)

var _ store.Credentials = (*Store)(nil)

// AccountSCRAM implements store.Credentials.
func (s *Store) AccountSCRAM(ctx context.Context, acct store.AccountID) (string, error) {
	var scram sql.NullString
	err := s.queryRow(ctx, `SELECT s.scram FROM accounts a
		LEFT JOIN account_scram s ON s.account_id = a.id AND s.password_hash = a.password_hash
		WHERE a.id = ?`, acct).Scan(&scram)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("scram keys of account %d: %w", acct, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("scram keys of account %d: %w", acct, err)
	}
	return scram.String, nil
}

// SetAccountSCRAM implements store.Credentials.
func (s *Store) SetAccountSCRAM(ctx context.Context, acct store.AccountID, passwordHash, scram string) (bool, error) {
	ok := false
	err := s.write(ctx, func(w *wtx) error {
		var hash string
		err := w.QueryRowContext(w.ctx, `SELECT password_hash FROM accounts WHERE id = ?`, acct).Scan(&hash)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		ok = hash == passwordHash
		if !ok {
			return nil
		}
		_, err = w.ExecContext(w.ctx, `INSERT INTO account_scram (account_id, password_hash, scram) VALUES (?, ?, ?)
			ON CONFLICT (account_id) DO UPDATE SET password_hash = excluded.password_hash, scram = excluded.scram`,
			acct, passwordHash, scram)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("set scram keys of account %d: %w", acct, err)
	}
	return ok, nil
}

const deviceCols = `name, password_hash, scram, created, revoked, last_login, last_remote, last_proto, last_client`

func scanDevice(row interface{ Scan(...any) error }) (*store.Device, error) {
	var d store.Device
	var created, revoked, last int64
	if err := row.Scan(&d.Name, &d.PasswordHash, &d.SCRAM, &created, &revoked, &last, &d.LastRemote, &d.LastProto, &d.LastClient); err != nil {
		return nil, err
	}
	d.Created = time.Unix(created, 0)
	if revoked != 0 {
		d.Revoked = time.Unix(revoked, 0)
	}
	if last != 0 {
		d.LastLogin = time.Unix(last, 0)
	}
	return &d, nil
}

// AddDevice implements store.Credentials.
func (s *Store) AddDevice(ctx context.Context, acct store.AccountID, name, passwordHash, scram string) (*store.Device, error) {
	if name == "" || passwordHash == "" {
		return nil, fmt.Errorf("add device %q: empty name or password hash", name)
	}
	var dev *store.Device
	err := s.write(ctx, func(w *wtx) error {
		if err := accountExists(w, acct); err != nil {
			return err
		}
		d, err := scanDevice(w.QueryRowContext(w.ctx, `SELECT `+deviceCols+` FROM devices WHERE account_id = ? AND name = ?`, acct, name))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			now := time.Now().Unix()
			d = &store.Device{Name: name, Created: time.Unix(now, 0)}
			if _, err := w.ExecContext(w.ctx, `INSERT INTO devices (account_id, name, password_hash, scram, created) VALUES (?, ?, ?, ?, ?)`,
				acct, name, passwordHash, scram, now); err != nil {
				return err
			}
		case err != nil:
			return err
		case d.PasswordHash != "":
			return store.ErrExists
		default:
			if _, err := w.ExecContext(w.ctx, `UPDATE devices SET password_hash = ?, scram = ?, revoked = 0 WHERE account_id = ? AND name = ?`,
				passwordHash, scram, acct, name); err != nil {
				return err
			}
			d.Revoked = time.Time{}
		}
		d.PasswordHash, d.SCRAM = passwordHash, scram
		dev = d
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add device %q: %w", name, err)
	}
	return dev, nil
}

// Devices implements store.Credentials.
func (s *Store) Devices(ctx context.Context, acct store.AccountID) ([]store.Device, error) {
	if _, err := s.AccountByID(ctx, acct); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, `SELECT `+deviceCols+` FROM devices WHERE account_id = ? ORDER BY name`, acct)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		out = append(out, *d)
	}
	return out, rows.Err()
}

// RevokeDevice implements store.Credentials.
func (s *Store) RevokeDevice(ctx context.Context, acct store.AccountID, name string) error {
	err := s.write(ctx, func(w *wtx) error {
		if err := accountExists(w, acct); err != nil {
			return err
		}
		now := time.Now().Unix()
		res, err := w.ExecContext(w.ctx, `UPDATE devices SET password_hash = '', scram = '', revoked = ? WHERE account_id = ? AND name = ?`,
			now, acct, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var views int
			if err := w.QueryRowContext(w.ctx, `SELECT count(*) FROM pop3_views WHERE account_id = ? AND device = ?`, acct, name).Scan(&views); err != nil {
				return err
			}
			if views == 0 {
				return store.ErrNotFound
			}
			if _, err := w.ExecContext(w.ctx, `INSERT INTO devices (account_id, name, created, revoked) VALUES (?, ?, ?, ?)`,
				acct, name, now, now); err != nil {
				return err
			}
		}
		// A setup link would hand out the revoked password.
		if _, err := w.ExecContext(w.ctx, `DELETE FROM setup_links WHERE account_id = ? AND device = ?`, acct, name); err != nil {
			return err
		}
		w.event(store.Event{Account: acct, Kind: store.EventDeviceRevoked, Name: name})
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoke device %q: %w", name, err)
	}
	return nil
}

// RecordDeviceLogin implements store.Credentials.
func (s *Store) RecordDeviceLogin(ctx context.Context, acct store.AccountID, name string, l store.DeviceLogin) error {
	at := l.At.Unix()
	err := s.write(ctx, func(w *wtx) error {
		if err := accountExists(w, acct); err != nil {
			return err
		}
		_, err := w.ExecContext(w.ctx, `INSERT INTO devices (account_id, name, created, last_login, last_remote, last_proto)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (account_id, name) DO UPDATE SET last_login = excluded.last_login,
				last_remote = excluded.last_remote, last_proto = excluded.last_proto`,
			acct, name, at, at, l.Remote, l.Proto)
		return err
	})
	if err != nil {
		return fmt.Errorf("record login of device %q: %w", name, err)
	}
	return nil
}

// SetDeviceClient implements store.Credentials.
func (s *Store) SetDeviceClient(ctx context.Context, acct store.AccountID, name, client string) error {
	err := s.write(ctx, func(w *wtx) error {
		if err := accountExists(w, acct); err != nil {
			return err
		}
		_, err := w.ExecContext(w.ctx, `UPDATE devices SET last_client = ? WHERE account_id = ? AND name = ?`, client, acct, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("set client of device %q: %w", name, err)
	}
	return nil
}

// ForgetDevice implements store.Credentials.
func (s *Store) ForgetDevice(ctx context.Context, acct store.AccountID, name string) error {
	err := s.write(ctx, func(w *wtx) error {
		if err := accountExists(w, acct); err != nil {
			return err
		}
		var hash string
		err := w.QueryRowContext(w.ctx, `SELECT password_hash FROM devices WHERE account_id = ? AND name = ?`, acct, name).Scan(&hash)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		case hash != "":
			return store.ErrExists
		}
		_, err = w.ExecContext(w.ctx, `DELETE FROM devices WHERE account_id = ? AND name = ?`, acct, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("forget device %q: %w", name, err)
	}
	return nil
}
