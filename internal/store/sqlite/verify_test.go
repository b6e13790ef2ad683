package sqlite_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// verifyStore makes a real store with some hundred messages and returns
// its directory, closed (so everything is in the database file).
func verifyStore(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	a, err := s.CreateAccount(ctx, "a@example.org", "x")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := s.Mailbox(ctx, a.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		b, err := s.Stage(ctx, strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", i, strings.Repeat("body ", 600))), 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, a.ID, inbox.ID, []store.NewMessage{{Body: b}}); err != nil {
			t.Fatal(err)
		}
		b.Discard()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// verifyDamage damages the database file in dir; it returns a description.
func verifyDamage(t *testing.T, dir, how string) {
	t.Helper()
	path := filepath.Join(dir, "postfach.db")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := int(binary.BigEndian.Uint16(data[16:18]))
	pages := len(data) / pageSize
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := func(b []byte) {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
	switch how {
	case "middle pages":
		garbage(data[pages/3*pageSize : 2*pages/3*pageSize])
	case "early pages":
		// Page 1 (the schema) stays; the next pages hold the roots and
		// first leaves of the tables.
		garbage(data[pageSize : 8*pageSize])
	case "truncated":
		data = data[:pages/2*pageSize]
	case "header":
		garbage(data[:100])
	default:
		t.Fatalf("unknown damage %q", how)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStartupCheckRefusesDamage is item 18 of issue 11: a store that
// SQLite finds malformed was opened and served without a word. With
// StartupCheck (the server's), Open refuses it with ErrDamaged, whether
// it reads the whole database (quick_check, a small one) or a sample (a
// large one).
func TestStartupCheckRefusesDamage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		how    string
		sample bool
	}{
		{"middle pages", false}, {"early pages", false}, {"truncated", false}, {"header", false},
		{"early pages", true}, {"truncated", true}, {"header", true},
	} {
		name := tt.how
		if tt.sample {
			name += " sampled"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := verifyStore(t)
			opt := sqlite.Options{Dir: dir, SweepInterval: -1, StartupCheck: true}
			if tt.sample {
				opt.QuickCheckMax = -1
			}
			// The intact store passes.
			s, err := sqlite.Open(context.Background(), opt)
			if err != nil {
				t.Fatalf("intact store: %v", err)
			}
			s.Close()
			verifyDamage(t, dir, tt.how)
			s, err = sqlite.Open(context.Background(), opt)
			if err == nil {
				s.Close()
				t.Fatalf("a store with damaged %s opened", tt.how)
			}
			if !errors.Is(err, sqlite.ErrDamaged) {
				t.Fatalf("damaged %s: %v, want ErrDamaged", tt.how, err)
			}
			t.Logf("refused: %v", err)
		})
	}
}
