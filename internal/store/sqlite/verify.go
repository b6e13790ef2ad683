package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrDamaged is returned by Open, with what was found, when the database
// fails the checks at start (Options.StartupCheck): the server refuses to
// serve a store it knows is damaged.
var ErrDamaged = errors.New("store database is damaged")

// DefaultQuickCheckMax is the largest database that the start-up check
// reads in full (PRAGMA quick_check, about a second per few hundred MiB);
// a larger one gets a sample.
const DefaultQuickCheckMax = 256 << 20

// sampleRows and sampleProbes bound the sample of a large database: the
// first and last rows of every table and some rows in between, reached
// from the root of each table's b-tree.
const (
	sampleRows   = 200
	sampleProbes = 64
)

// checkHeader checks the database file's header (the first 100 bytes,
// https://sqlite.org/fileformat2.html#the_database_header): its magic
// string, a page size that is a power of two, and a file at least as long
// as the header says the database is. An empty file is a new database.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open database file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open database file: %w", err)
	}
	if fi.Size() == 0 {
		return nil
	}
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return fmt.Errorf("%w: %s is %d bytes, shorter than an SQLite header", ErrDamaged, path, fi.Size())
	}
	if !bytes.Equal(h[:16], []byte("SQLite format 3\x00")) {
		return fmt.Errorf("%w: %s does not start with the SQLite header", ErrDamaged, path)
	}
	pageSize := int64(binary.BigEndian.Uint16(h[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize&(pageSize-1) != 0 {
		return fmt.Errorf("%w: %s: page size %d in the header", ErrDamaged, path, pageSize)
	}
	// The page count in the header is valid when the change counter
	// equals its "version valid for" field.
	pages := int64(binary.BigEndian.Uint32(h[28:32]))
	if binary.BigEndian.Uint32(h[24:28]) == binary.BigEndian.Uint32(h[92:96]) && pages*pageSize > fi.Size() {
		return fmt.Errorf("%w: %s is %d bytes, but its header says %d pages of %d bytes (truncated?)",
			ErrDamaged, path, fi.Size(), pages, pageSize)
	}
	return nil
}

// startupCheck runs the cheap checks of a database at start (before the
// schema is migrated and before anything is served): PRAGMA quick_check
// up to quickMax bytes, a sample of every table beyond.
func startupCheck(ctx context.Context, db *sql.DB, path string, quickMax int64) error {
	if err := checkHeader(path); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("open database file: %w", err)
	}
	if fi.Size() <= quickMax {
		return quickCheck(ctx, db)
	}
	return sampleCheck(ctx, db)
}

func quickCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `PRAGMA quick_check(4)`)
	if err != nil {
		return damaged("quick check", err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return damaged("quick check", err)
		}
		if line != "ok" {
			found = append(found, strings.ReplaceAll(strings.TrimSpace(line), "\n", "; "))
		}
	}
	if err := rows.Err(); err != nil {
		return damaged("quick check", err)
	}
	if len(found) > 0 {
		return fmt.Errorf("%w: quick check: %s", ErrDamaged, strings.Join(found, "; "))
	}
	return nil
}

// sampleCheck reads the schema, and of every table the first and last
// rows and rows at random keys in between.
func sampleCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		return damaged("read schema", err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return damaged("read schema", err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return damaged("read schema", err)
	}
	for _, t := range tables {
		if err := sampleTable(ctx, db, t); err != nil {
			return err
		}
	}
	return nil
}

func sampleTable(ctx context.Context, db *sql.DB, table string) error {
	q := `"` + strings.ReplaceAll(table, `"`, `""`) + `"`
	// The key the table's b-tree is ordered by: rowid, or the first
	// column of the primary key of a WITHOUT ROWID table.
	key := "rowid"
	var sqlText string
	if err := db.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = ?`, table).Scan(&sqlText); err != nil {
		return damaged("read schema of "+table, err)
	}
	if strings.Contains(strings.ToUpper(sqlText), "WITHOUT ROWID") {
		var col string
		if err := db.QueryRowContext(ctx, `SELECT name FROM pragma_table_info(?) WHERE pk = 1`, table).Scan(&col); err != nil {
			return damaged("read schema of "+table, err)
		}
		key = `"` + strings.ReplaceAll(col, `"`, `""`) + `"`
	}
	read := func(query string, args ...any) error {
		rows, err := db.QueryContext(ctx, query, args...)
		if err != nil {
			return damaged("read "+table, err)
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			return damaged("read "+table, err)
		}
		vals := make([]any, len(cols))
		for i := range vals {
			vals[i] = new(sql.RawBytes)
		}
		for rows.Next() {
			if err := rows.Scan(vals...); err != nil {
				return damaged("read "+table, err)
			}
		}
		if err := rows.Err(); err != nil {
			return damaged("read "+table, err)
		}
		return nil
	}
	lim := fmt.Sprint(sampleRows)
	if err := read(`SELECT * FROM ` + q + ` ORDER BY ` + key + ` LIMIT ` + lim); err != nil {
		return err
	}
	if err := read(`SELECT * FROM ` + q + ` ORDER BY ` + key + ` DESC LIMIT ` + lim); err != nil {
		return err
	}
	var lo, hi sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT min(`+key+`), max(`+key+`) FROM `+q).Scan(&lo, &hi); err != nil {
		// A key that is not an integer: the ends above are the sample.
		var se *sqlite.Error
		if errors.As(err, &se) && isCorrupt(se) {
			return damaged("read "+table, err)
		}
		return nil
	}
	if !lo.Valid || !hi.Valid || hi.Int64 <= lo.Int64 {
		return nil
	}
	for range sampleProbes {
		k := lo.Int64 + rand.Int64N(hi.Int64-lo.Int64+1)
		if err := read(`SELECT * FROM `+q+` WHERE `+key+` >= ? ORDER BY `+key+` LIMIT 1`, k); err != nil {
			return err
		}
	}
	return nil
}

func isCorrupt(se *sqlite.Error) bool {
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// damaged wraps an error of a check: SQLite's "malformed" and "not a
// database" become ErrDamaged.
func damaged(what string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && isCorrupt(se) {
		return fmt.Errorf("%w: %s: %v", ErrDamaged, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
