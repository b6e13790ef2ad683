package sqlite

import (
	"context"
	"database/sql"
	"sync"

	"github.com/postfach/postfach/internal/store"
)

// Statement caches. SQLite parses every statement it is handed; for short
// statements the parse costs as much as running them (it was a fifth of
// the delivery CPU profile). The writer's single connection keeps every
// statement it has run prepared; the readers share DB-level prepared
// statements (database/sql prepares them lazily per connection).

// writerStmts is owned by the writer goroutine; no lock.
type writerStmts struct {
	db       *sql.DB
	prepared map[string]*sql.Stmt
	pending  map[string]bool // seen in a transaction, to prepare after it
}

func (ws *writerStmts) get(q string) *sql.Stmt {
	if st, ok := ws.prepared[q]; ok {
		return st
	}
	ws.pending[q] = true
	return nil
}

// prepare runs between batches, when the writer's connection is free.
func (ws *writerStmts) prepare(ctx context.Context) {
	for q := range ws.pending {
		if st, err := ws.db.PrepareContext(ctx, q); err == nil {
			ws.prepared[q] = st
		}
		delete(ws.pending, q)
	}
}

func (ws *writerStmts) close() {
	for _, st := range ws.prepared {
		st.Close()
	}
}

// ExecContext shadows sql.Tx.ExecContext with the prepared form.
func (w *wtx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := w.stmts.get(q); st != nil {
		return w.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return w.Tx.ExecContext(ctx, q, args...)
}

// QueryContext shadows sql.Tx.QueryContext with the prepared form.
func (w *wtx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := w.stmts.get(q); st != nil {
		return w.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return w.Tx.QueryContext(ctx, q, args...)
}

// QueryRowContext shadows sql.Tx.QueryRowContext with the prepared form.
func (w *wtx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := w.stmts.get(q); st != nil {
		return w.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return w.Tx.QueryRowContext(ctx, q, args...)
}

// readerStmts caches prepared statements on the read pool.
//
// The pool's rule: a goroutine never waits for a connection of the pool
// while it holds one. DB.PrepareContext takes a connection of its own, so
// only a caller that holds none (query, queryRow, the end of readTx) may
// prepare; a read transaction runs a statement not prepared yet unprepared
// and leaves its preparation to readTx, after the transaction's connection
// went back. Breaking the rule froze the server after a restart (issue
// 11): every connection held by a transaction waiting to prepare through
// the pool, for good. Tests run with a pool of one connection
// (Options.ReadConns), where any breach hangs at once.
type readerStmts struct {
	db   *sql.DB
	mu   sync.Mutex
	m    map[string]*sql.Stmt // guarded by mu
	want map[string]bool      // run unprepared in a transaction, to prepare; guarded by mu
}

// stmt returns the prepared form of q, preparing it through the pool when
// it is new. The caller must hold no connection of the pool.
func (rs *readerStmts) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st := rs.cached(q); st != nil {
		return st, nil
	}
	st, err := rs.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil { // closed meanwhile
		st.Close()
		return nil, store.ErrClosed
	}
	if old, ok := rs.m[q]; ok {
		st.Close()
		return old, nil
	}
	rs.m[q] = st
	return st, nil
}

// cached returns the prepared form of q, or nil (never preparing it).
func (rs *readerStmts) cached(q string) *sql.Stmt {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.m[q]
}

// wanted notes that q ran unprepared in a transaction.
func (rs *readerStmts) wanted(q string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m != nil {
		rs.want[q] = true
	}
}

// prepareWanted prepares what transactions ran unprepared. The caller must
// hold no connection of the pool.
func (rs *readerStmts) prepareWanted(ctx context.Context) {
	rs.mu.Lock()
	var qs []string
	for q := range rs.want {
		qs = append(qs, q)
		delete(rs.want, q)
	}
	rs.mu.Unlock()
	for _, q := range qs {
		// A failure leaves the statement unprepared; the next
		// transaction wants it again.
		_, _ = rs.stmt(ctx, q)
	}
}

func (rs *readerStmts) close() {
	rs.mu.Lock()
	for _, st := range rs.m {
		st.Close()
	}
	rs.m = nil
	rs.want = nil
	rs.mu.Unlock()
}

// query runs a read through a cached prepared statement.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if err := s.gate.wait(ctx); err != nil {
		return nil, err
	}
	st, err := s.rstmts.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// queryRow is query for one row.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	err := s.gate.wait(ctx)
	var st *sql.Stmt
	if err == nil {
		st, err = s.rstmts.stmt(ctx, q)
	}
	if err != nil {
		// Let the error surface through Scan.
		return s.rdb.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// readTx runs fn in a read-only transaction: one snapshot, one connection
// of the pool. fn reads through txQuery and txQueryRow only; it must not
// call anything that takes another connection of the pool (query,
// queryRow, the Store's own methods), see readerStmts. Once the
// connection is back, the statements fn ran unprepared are prepared.
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := s.gate.wait(ctx); err != nil {
		return err
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	err = fn(tx)
	tx.Rollback()
	s.rstmts.prepareWanted(ctx)
	return err
}

// txQuery runs a query of a read transaction (readTx): prepared if the
// pool has prepared it already (database/sql then prepares it on the
// transaction's own connection if needed), else unprepared.
func (s *Store) txQuery(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	if st := s.rstmts.cached(q); st != nil {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	s.rstmts.wanted(q)
	return tx.QueryContext(ctx, q, args...)
}

// txQueryRow is txQuery for one row.
func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st := s.rstmts.cached(q); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	s.rstmts.wanted(q)
	return tx.QueryRowContext(ctx, q, args...)
}
