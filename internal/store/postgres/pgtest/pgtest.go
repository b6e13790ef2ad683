// Package pgtest gives tests a PostgreSQL store of their own: a fresh
// schema in the database named by POSTFACH_TEST_PG_DSN (started by
// .ci/pg-start.sh), dropped when the test ends. Without the variable the
// test is skipped with a message saying so, except under
// POSTFACH_REQUIRE_TOOLS=1 (CI), where it fails.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/store/postgres"
)

// DSNVar is the environment variable that names the test database.
const DSNVar = "POSTFACH_TEST_PG_DSN"

// DSN returns the test database's DSN, or skips (fails under
// POSTFACH_REQUIRE_TOOLS=1) the test when there is none.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(DSNVar)
	if dsn == "" {
		msg := DSNVar + " is not set: no PostgreSQL to test on (start one with .ci/pg-start.sh and export its output as " + DSNVar + ")"
		if os.Getenv("POSTFACH_REQUIRE_TOOLS") == "1" {
			t.Fatal(msg + "; POSTFACH_REQUIRE_TOOLS=1 makes this a failure")
		}
		t.Skip(msg)
	}
	return dsn
}

// NewSchema returns a fresh schema name, dropped with everything in it
// when the test ends.
func NewSchema(t testing.TB, dsn string) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := postgres.DropSchema(ctx, dsn, schema); err != nil {
			t.Logf("drop test schema %s: %v", schema, err)
		}
	})
	return schema
}

// Options returns the options of a test store in its own schema with
// its bodies in dir; opt's other fields are kept.
func Options(t testing.TB, dir string, opt postgres.Options) postgres.Options {
	t.Helper()
	opt.DSN = DSN(t)
	if opt.Schema == "" {
		opt.Schema = NewSchema(t, opt.DSN)
	}
	if opt.Blobs == nil {
		fs, err := blob.NewFileStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		opt.Blobs = fs
	}
	if opt.MaxConns == 0 {
		opt.MaxConns = 3 // the least allowed
	}
	return opt
}

// SchemaDSN returns the test database's DSN with a fresh schema of its
// own as the search_path (created by postgres.Open), for a server whose config names the database
// by a DSN alone ([store] dsn). The schema is dropped when the test ends.
func SchemaDSN(t testing.TB) string {
	t.Helper()
	dsn := DSN(t)
	schema := NewSchema(t, dsn) // postgres.Open creates it
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		t.Fatalf("%s must be a URL (postgres://...): %v", DSNVar, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
