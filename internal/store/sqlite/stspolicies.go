package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/store"
)

var _ store.STSPolicies = (*Store)(nil)

// PutSTSPolicy implements store.STSPolicies.
func (s *Store) PutSTSPolicy(ctx context.Context, p store.STSPolicy, now time.Time) error {
	domain := strings.ToLower(strings.TrimSuffix(p.Domain, "."))
	if domain == "" || strings.ContainsFunc(domain, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("put mta-sts policy: invalid domain %q", p.Domain)
	}
	mx := strings.Join(p.MX, "\n")
	err := s.write(ctx, func(w *wtx) error {
		if _, err := w.ExecContext(w.ctx, `DELETE FROM sts_policies WHERE expires < ?`, now.UnixMilli()); err != nil {
			return err
		}
		_, err := w.ExecContext(w.ctx, `INSERT INTO sts_policies (domain, id, mode, mx, expires) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (domain) DO UPDATE SET id = excluded.id, mode = excluded.mode, mx = excluded.mx, expires = excluded.expires`,
			domain, p.ID, p.Mode, mx, p.Expires.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("put mta-sts policy of %s: %w", domain, err)
	}
	return nil
}

// STSPolicy implements store.STSPolicies.
func (s *Store) STSPolicy(ctx context.Context, domain string) (*store.STSPolicy, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	p := store.STSPolicy{Domain: domain}
	var mx string
	var expires int64
	err := s.queryRow(ctx, `SELECT id, mode, mx, expires FROM sts_policies WHERE domain = ?`, domain).Scan(&p.ID, &p.Mode, &mx, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("mta-sts policy of %s: %w", domain, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("mta-sts policy of %s: %w", domain, err)
	}
	if mx != "" {
		p.MX = strings.Split(mx, "\n")
	}
	p.Expires = time.UnixMilli(expires)
	return &p, nil
}
