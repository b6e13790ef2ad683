package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// CreateAccount implements store.Store.
func (s *Store) CreateAccount(ctx context.Context, name, passwordHash string) (*store.Account, error) {
	if name == "" || strings.ContainsAny(name, " \t\r\n\x00") {
		return nil, fmt.Errorf("create account %q: invalid name", name)
	}
	now := time.Now()
	var acct store.Account
	err := s.writeGrow(ctx, func(w *wtx) error {
		var n int
		if err := w.QueryRowContext(w.ctx, `SELECT count(*) FROM accounts WHERE name_key = ?`, mail.NameKey(name)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.ErrExists
		}
		id, err := insertID(w, `INSERT INTO accounts (name, name_key, password_hash, created) VALUES (?, ?, ?, ?)`,
			name, mail.NameKey(name), passwordHash, now.Unix())
		if err != nil {
			return err
		}
		w.afterCommit(s.accounts.invalidate)
		acct = store.Account{ID: store.AccountID(id), Name: name, PasswordHash: passwordHash, Settings: map[string]string{}, Created: now.Truncate(time.Second)}
		for _, mb := range store.DefaultMailboxes {
			var uses []string
			if mb.SpecialUse != "" {
				uses = []string{mb.SpecialUse}
			}
			if _, err := createMailboxTx(w, acct.ID, mb.Name, uses); err != nil {
				return err
			}
			if _, err := w.ExecContext(w.ctx, `INSERT INTO subscriptions (account_id, name) VALUES (?, ?)`, acct.ID, mb.Name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create account %q: %w", name, err)
	}
	return &acct, nil
}

const accountCols = `id, name, password_hash, settings, created`

func scanAccount(row interface{ Scan(...any) error }) (*store.Account, error) {
	var a store.Account
	var settings string
	var created int64
	if err := row.Scan(&a.ID, &a.Name, &a.PasswordHash, &settings, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	a.Created = time.Unix(created, 0)
	a.Settings = map[string]string{}
	if err := json.Unmarshal([]byte(settings), &a.Settings); err != nil {
		return nil, fmt.Errorf("account %d: bad settings: %w", a.ID, err)
	}
	return &a, nil
}

// Account implements store.Store. Accounts found are kept in a cache, so
// that a delivery's RCPT and a login cost no database read; every write to
// the accounts table empties it once committed.
func (s *Store) Account(ctx context.Context, name string) (*store.Account, error) {
	key := mail.NameKey(name)
	if a, ok := s.accounts.get(key); ok {
		return a, nil
	}
	gen := s.accounts.gen.Load()
	a, err := scanAccount(s.queryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE name_key = ?`, key))
	if err != nil {
		return nil, fmt.Errorf("account %q: %w", name, err)
	}
	s.accounts.put(key, a, gen)
	return a, nil
}

// accountCacheMax bounds the accounts an accountCache holds; past it the
// cache starts again empty.
const accountCacheMax = 4096

// accountCache holds accounts by lower-case name. Every committed write
// to the accounts table calls invalidate (after commit), which empties it
// and moves gen on. A lookup takes gen before it reads the database and
// files its result under that gen, and only entries of the current gen
// are used: a read that raced with a write is never served afterwards.
// Only this process writes the database (Open takes its advisory lock).
type accountCache struct {
	gen atomic.Uint64
	mu  sync.Mutex
	m   map[string]accountEntry // guarded by mu
}

type accountEntry struct {
	a   store.Account
	gen uint64
}

// get returns a copy of the cached account.
func (c *accountCache) get(key string) (*store.Account, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || e.gen != c.gen.Load() {
		return nil, false
	}
	a := e.a
	a.Settings = maps.Clone(e.a.Settings)
	return &a, true
}

func (c *accountCache) put(key string, a *store.Account, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen.Load() {
		return
	}
	if c.m == nil || len(c.m) >= accountCacheMax {
		c.m = map[string]accountEntry{}
	}
	e := accountEntry{a: *a, gen: gen}
	e.a.Settings = maps.Clone(a.Settings)
	c.m[key] = e
}

// invalidate forgets every cached account; call it once a write to the
// accounts table is committed (wtx.afterCommit).
func (c *accountCache) invalidate() {
	c.mu.Lock()
	c.gen.Add(1)
	clear(c.m)
	c.mu.Unlock()
}

// AccountByID implements store.Store.
func (s *Store) AccountByID(ctx context.Context, id store.AccountID) (*store.Account, error) {
	a, err := scanAccount(s.queryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("account %d: %w", id, err)
	}
	return a, nil
}

// Accounts implements store.Store.
func (s *Store) Accounts(ctx context.Context) ([]store.Account, error) {
	rows, err := s.query(ctx, `SELECT `+accountCols+` FROM accounts ORDER BY name_key`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var out []store.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}

// SetPassword implements store.Store.
func (s *Store) SetPassword(ctx context.Context, id store.AccountID, hash string) error {
	err := s.write(ctx, func(w *wtx) error {
		res, err := w.ExecContext(w.ctx, `UPDATE accounts SET password_hash = ? WHERE id = ?`, hash, id)
		if err != nil {
			return err
		}
		w.afterCommit(s.accounts.invalidate)
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		w.event(store.Event{Account: id, Kind: store.EventPassword})
		return nil
	})
	if err != nil {
		return fmt.Errorf("set password of account %d: %w", id, err)
	}
	return nil
}

// SetAccountSetting implements store.Store.
func (s *Store) SetAccountSetting(ctx context.Context, id store.AccountID, key, value string) error {
	err := s.write(ctx, func(w *wtx) error {
		a, err := scanAccount(w.QueryRowContext(w.ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, id))
		if err != nil {
			return err
		}
		if value == "" {
			delete(a.Settings, key)
		} else {
			a.Settings[key] = value
		}
		b, err := json.Marshal(a.Settings)
		if err != nil {
			return err
		}
		if _, err := w.ExecContext(w.ctx, `UPDATE accounts SET settings = ? WHERE id = ?`, string(b), id); err != nil {
			return err
		}
		w.afterCommit(s.accounts.invalidate)
		return nil
	})
	if err != nil {
		return fmt.Errorf("set %s of account %d: %w", key, id, err)
	}
	return nil
}

// DeleteAccount implements store.Store.
func (s *Store) DeleteAccount(ctx context.Context, id store.AccountID) error {
	err := s.write(ctx, func(w *wtx) error {
		res, err := w.ExecContext(w.ctx, `DELETE FROM accounts WHERE id = ?`, id)
		if err != nil {
			return err
		}
		w.afterCommit(s.accounts.invalidate)
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		if _, err := w.ExecContext(w.ctx, `DELETE FROM expunged WHERE account_id = ?`, id); err != nil {
			return err
		}
		w.event(store.Event{Account: id, Kind: store.EventAccountDeleted})
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete account %d: %w", id, err)
	}
	return nil
}

// nextUIDValidity hands out a UIDVALIDITY never used before in this store:
// at least the current time, so a store recreated from scratch does not
// repeat the values of the one it replaces (clients then resync instead of
// trusting stale UIDs).
func nextUIDValidity(w *wtx) (uint32, error) {
	var last int64
	var v string
	err := w.QueryRowContext(w.ctx, `SELECT value FROM meta WHERE key = 'uidvalidity'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return 0, err
	default:
		if last, err = strconv.ParseInt(v, 10, 64); err != nil {
			return 0, fmt.Errorf("bad uidvalidity counter %q", v)
		}
	}
	next := max(last+1, time.Now().Unix())
	if next > int64(^uint32(0)) {
		return 0, errors.New("uidvalidity space exhausted")
	}
	_, err = w.ExecContext(w.ctx, `INSERT INTO meta (key, value) VALUES ('uidvalidity', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, strconv.FormatInt(next, 10))
	return uint32(next), err
}
