package sqlite

import (
	"context"
	"database/sql"
	"sync"
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
type readerStmts struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt // guarded by mu
}

func (rs *readerStmts) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	rs.mu.Lock()
	st, ok := rs.m[q]
	rs.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := rs.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	rs.mu.Lock()
	if old, ok := rs.m[q]; ok {
		st.Close()
		st = old
	} else {
		rs.m[q] = st
	}
	rs.mu.Unlock()
	return st, nil
}

func (rs *readerStmts) close() {
	rs.mu.Lock()
	for _, st := range rs.m {
		st.Close()
	}
	rs.m = nil
	rs.mu.Unlock()
}

// query runs a read through a cached prepared statement.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.rstmts.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// queryRow is query for one row.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := s.rstmts.stmt(ctx, q)
	if err != nil {
		// Let the error surface through Scan.
		return s.rdb.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// txQuery runs a query of a read transaction through the read pool's
// prepared statement (database/sql reuses it on the transaction's
// connection once prepared there).
func (s *Store) txQuery(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	st, err := s.rstmts.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}

// txQueryRow is txQuery for one row.
func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	st, err := s.rstmts.stmt(ctx, q)
	if err != nil {
		return tx.QueryRowContext(ctx, q, args...)
	}
	return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
}
