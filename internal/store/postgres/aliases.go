package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

var _ store.Aliases = (*Store)(nil)

// An alias is its rows in aliases, one per account (schema.go); it exists
// while it has one. The address and creation time are those of the
// alias's first row, repeated in the others.

const aliasQuery = `SELECT a.address, a.created, a.account_id, ac.name FROM aliases a
	JOIN accounts ac ON ac.id = a.account_id`

// scanAliases reads rows of aliasQuery, ordered by address key, into
// aliases.
func scanAliases(rows *sql.Rows) ([]store.Alias, error) {
	defer rows.Close()
	var out []store.Alias
	for rows.Next() {
		var addr string
		var created int64
		var t store.AliasTarget
		if err := rows.Scan(&addr, &created, &t.Account, &t.Name); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || mail.NameKey(out[n-1].Address) != mail.NameKey(addr) {
			out = append(out, store.Alias{Address: addr, Created: time.Unix(created, 0)})
		}
		a := &out[len(out)-1]
		a.Targets = append(a.Targets, t)
	}
	return out, rows.Err()
}

func validAliasAddress(address string) error {
	if address == "" || strings.ContainsFunc(address, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("invalid alias address %q", address)
	}
	return nil
}

// aliasTx reads one alias inside a write transaction; nil when there is
// none.
func aliasTx(w *wtx, key string) (*store.Alias, error) {
	rows, err := w.QueryContext(w.ctx, aliasQuery+` WHERE a.address_key = ? ORDER BY ac.name_key`, key)
	if err != nil {
		return nil, err
	}
	as, err := scanAliases(rows)
	if err != nil || len(as) == 0 {
		return nil, err
	}
	return &as[0], nil
}

// AddAlias implements store.Aliases.
func (s *Store) AddAlias(ctx context.Context, address string, accts []store.AccountID) (*store.Alias, error) {
	if err := validAliasAddress(address); err != nil {
		return nil, err
	}
	if len(accts) == 0 {
		return nil, fmt.Errorf("add alias %s: no accounts", address)
	}
	key := mail.NameKey(address)
	var out *store.Alias
	err := s.writeGrow(ctx, func(w *wtx) error {
		var n int
		if err := w.QueryRowContext(w.ctx, `SELECT count(*) FROM accounts WHERE name_key = ?`, key).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%s is an account: %w", address, store.ErrExists)
		}
		for _, id := range accts {
			if err := accountExists(w, id); err != nil {
				return fmt.Errorf("account %d: %w", id, err)
			}
		}
		addr, created := address, time.Now().Unix()
		err := w.QueryRowContext(w.ctx, `SELECT address, created FROM aliases WHERE address_key = ? LIMIT 1`, key).Scan(&addr, &created)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		for _, id := range accts {
			if _, err := w.ExecContext(w.ctx, `INSERT INTO aliases (address_key, address, account_id, created) VALUES (?, ?, ?, ?)
				ON CONFLICT (address_key, account_id) DO NOTHING`, key, addr, id, created); err != nil {
				return err
			}
		}
		out, err = aliasTx(w, key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("add alias %s: %w", address, err)
	}
	return out, nil
}

// RemoveAlias implements store.Aliases.
func (s *Store) RemoveAlias(ctx context.Context, address string, accts []store.AccountID) (*store.Alias, error) {
	key := mail.NameKey(address)
	var out *store.Alias
	err := s.write(ctx, func(w *wtx) error {
		if len(accts) == 0 {
			res, err := w.ExecContext(w.ctx, `DELETE FROM aliases WHERE address_key = ?`, key)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return store.ErrNotFound
			}
			return nil
		}
		for _, id := range accts {
			res, err := w.ExecContext(w.ctx, `DELETE FROM aliases WHERE address_key = ? AND account_id = ?`, key, id)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("account %d is not a target: %w", id, store.ErrNotFound)
			}
		}
		var err error
		out, err = aliasTx(w, key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("remove alias %s: %w", address, err)
	}
	return out, nil
}

// Alias implements store.Aliases.
func (s *Store) Alias(ctx context.Context, address string) (*store.Alias, error) {
	rows, err := s.query(ctx, aliasQuery+` WHERE a.address_key = ? ORDER BY ac.name_key`, mail.NameKey(address))
	if err != nil {
		return nil, fmt.Errorf("alias %s: %w", address, err)
	}
	as, err := scanAliases(rows)
	if err != nil {
		return nil, fmt.Errorf("alias %s: %w", address, err)
	}
	if len(as) == 0 {
		return nil, fmt.Errorf("alias %s: %w", address, store.ErrNotFound)
	}
	return &as[0], nil
}

// Aliases implements store.Aliases.
func (s *Store) Aliases(ctx context.Context) ([]store.Alias, error) {
	rows, err := s.query(ctx, aliasQuery+` ORDER BY a.address_key, ac.name_key`)
	if err != nil {
		return nil, fmt.Errorf("list aliases: %w", err)
	}
	as, err := scanAliases(rows)
	if err != nil {
		return nil, fmt.Errorf("list aliases: %w", err)
	}
	return as, nil
}
