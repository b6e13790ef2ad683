package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/store"
)

var _ store.DKIMKeys = (*Store)(nil)

// validDKIMName refuses what cannot be a domain or a selector: empty, or
// with blanks or control characters.
func validDKIMName(what, s string) error {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("invalid dkim %s %q", what, s)
	}
	return nil
}

// AddDKIMKey implements store.DKIMKeys.
func (s *Store) AddDKIMKey(ctx context.Context, k store.DKIMKey) error {
	domain := strings.ToLower(strings.TrimSuffix(k.Domain, "."))
	if err := validDKIMName("domain", domain); err != nil {
		return err
	}
	if err := validDKIMName("selector", k.Selector); err != nil {
		return err
	}
	if k.Algorithm != "rsa" && k.Algorithm != "ed25519" {
		return fmt.Errorf("add dkim key %s %s: unknown algorithm %q", domain, k.Selector, k.Algorithm)
	}
	if len(k.PrivateKey) == 0 {
		return fmt.Errorf("add dkim key %s %s: no private key", domain, k.Selector)
	}
	created := k.Created
	if created.IsZero() {
		created = time.Now()
	}
	err := s.writeGrow(ctx, func(w *wtx) error {
		var n int
		if err := w.QueryRowContext(w.ctx, `SELECT count(*) FROM dkim_keys WHERE domain = ? AND selector = ?`, domain, k.Selector).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.ErrExists
		}
		_, err := w.ExecContext(w.ctx, `INSERT INTO dkim_keys (domain, selector, algorithm, private_key, created) VALUES (?, ?, ?, ?, ?)`,
			domain, k.Selector, k.Algorithm, k.PrivateKey, created.Unix())
		return err
	})
	if err != nil {
		// Never the key itself in the error.
		return fmt.Errorf("add dkim key %s %s: %w", domain, k.Selector, err)
	}
	return nil
}

// DKIMKeys implements store.DKIMKeys.
func (s *Store) DKIMKeys(ctx context.Context, domain string) ([]store.DKIMKey, error) {
	q := `SELECT domain, selector, algorithm, private_key, created FROM dkim_keys`
	var args []any
	if domain != "" {
		q += ` WHERE domain = ?`
		args = append(args, strings.ToLower(strings.TrimSuffix(domain, ".")))
	}
	rows, err := s.query(ctx, q+` ORDER BY domain, selector`, args...)
	if err != nil {
		return nil, fmt.Errorf("dkim keys: %w", err)
	}
	defer rows.Close()
	var out []store.DKIMKey
	for rows.Next() {
		var k store.DKIMKey
		var created int64
		if err := rows.Scan(&k.Domain, &k.Selector, &k.Algorithm, &k.PrivateKey, &created); err != nil {
			return nil, fmt.Errorf("dkim keys: %w", err)
		}
		k.Created = time.Unix(created, 0)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dkim keys: %w", err)
	}
	return out, nil
}

// DeleteDKIMKey implements store.DKIMKeys.
func (s *Store) DeleteDKIMKey(ctx context.Context, domain, selector string) error {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	err := s.write(ctx, func(w *wtx) error {
		res, err := w.ExecContext(w.ctx, `DELETE FROM dkim_keys WHERE domain = ? AND selector = ?`, domain, selector)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete dkim key %s %s: %w", domain, selector, err)
	}
	return nil
}
