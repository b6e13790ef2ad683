package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postfach/postfach/internal/store"
)

var _ store.STSPolicies = (*Store)(nil)

// stsDomain is a policy domain's key: lower case, without a trailing dot.
func stsDomain(d string) string { return strings.ToLower(strings.TrimSuffix(d, ".")) }

// validSTSDomain reports whether a domain key can be kept: not empty, no
// spaces or control characters, and valid UTF-8 (a PostgreSQL TEXT
// refuses anything else, so no policy can exist for such a name).
func validSTSDomain(d string) bool {
	return d != "" && utf8.ValidString(d) && !strings.ContainsFunc(d, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// PutSTSPolicy implements store.STSPolicies.
func (s *Store) PutSTSPolicy(ctx context.Context, p store.STSPolicy, now time.Time) error {
	domain := stsDomain(p.Domain)
	if !validSTSDomain(domain) {
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
	domain = stsDomain(domain)
	if !validSTSDomain(domain) {
		return nil, fmt.Errorf("mta-sts policy of %q: %w", domain, store.ErrNotFound)
	}
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
