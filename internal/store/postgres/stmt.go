package postgres

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
)

// Statements are written with "?" placeholders, like the SQLite
// backend's, and turned into PostgreSQL's numbered "$n" once per text
// (rebind). pgx prepares and caches every statement per connection by
// itself, so no statement cache is kept here.

var rebound sync.Map // query text -> its $n form

// rebind replaces each "?" outside quotes with $1, $2, ..., and each
// numbered "?N" with "$N".
func rebind(q string) string {
	if v, ok := rebound.Load(q); ok {
		return v.(string)
	}
	if !strings.Contains(q, "?") {
		rebound.Store(q, q)
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	inQuote := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inQuote = !inQuote
			b.WriteByte(c)
		case c == '?' && !inQuote && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			b.WriteByte('$') // ?NNN, SQLite's numbered form, is $NNN
		case c == '?' && !inQuote:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	rebound.Store(q, out)
	return out
}

// args converts what pgx does not encode into an integer column: a Go
// bool becomes 0 or 1, as the SQLite backend stores it.
func args(in []any) []any {
	for i, a := range in {
		if b, ok := a.(bool); ok {
			if b {
				in[i] = int64(1)
			} else {
				in[i] = int64(0)
			}
		}
	}
	return in
}

// ExecContext shadows sql.Tx.ExecContext with "?" placeholders.
func (w *wtx) ExecContext(ctx context.Context, q string, a ...any) (sql.Result, error) {
	return w.Tx.ExecContext(ctx, rebind(q), args(a)...)
}

// QueryContext shadows sql.Tx.QueryContext with "?" placeholders.
func (w *wtx) QueryContext(ctx context.Context, q string, a ...any) (*sql.Rows, error) {
	return w.Tx.QueryContext(ctx, rebind(q), args(a)...)
}

// QueryRowContext shadows sql.Tx.QueryRowContext with "?" placeholders.
func (w *wtx) QueryRowContext(ctx context.Context, q string, a ...any) *sql.Row {
	return w.Tx.QueryRowContext(ctx, rebind(q), args(a)...)
}

// query runs a read on a connection of the pool.
func (s *Store) query(ctx context.Context, q string, a ...any) (*sql.Rows, error) {
	return s.rdb.QueryContext(ctx, rebind(q), args(a)...)
}

// queryRow is query for one row.
func (s *Store) queryRow(ctx context.Context, q string, a ...any) *sql.Row {
	return s.rdb.QueryRowContext(ctx, rebind(q), args(a)...)
}

// readTx runs fn in a read-only transaction: one snapshot (REPEATABLE
// READ), one connection of the pool. fn reads through txQuery and
// txQueryRow only and must not call anything that takes another
// connection of the pool (query, queryRow, the Store's own methods):
// with every connection held by a transaction waiting for one more,
// nothing would move again.
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return err
	}
	err = fn(tx)
	tx.Rollback()
	return err
}

// txQuery runs a query of a read transaction (readTx).
func (s *Store) txQuery(ctx context.Context, tx *sql.Tx, q string, a ...any) (*sql.Rows, error) {
	return tx.QueryContext(ctx, rebind(q), args(a)...)
}

// txQueryRow is txQuery for one row.
func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, q string, a ...any) *sql.Row {
	return tx.QueryRowContext(ctx, rebind(q), args(a)...)
}

// insertID runs an INSERT into a table with an id column and returns the
// new row's id (PostgreSQL has no last insert id: RETURNING says it).
func insertID(w *wtx, q string, a ...any) (int64, error) {
	var id int64
	err := w.QueryRowContext(w.ctx, q+" RETURNING id", a...).Scan(&id)
	return id, err
}
