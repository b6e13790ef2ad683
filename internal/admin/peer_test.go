package admin

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/postfach/postfach/internal/store/sqlite"
)

// TestPeerAllowed is the admin socket's rule (issue 11, item 10): only
// the server's own user and root.
func TestPeerAllowed(t *testing.T) {
	for _, tt := range []struct {
		peer, self uint32
		ok         bool
	}{
		{1000, 1000, true},   // the server's user
		{0, 1000, true},      // root
		{0, 0, true},         // a server run as root, by root
		{1001, 1000, false},  // another user
		{1000, 0, false},     // a user, at a server run as root
		{65534, 1000, false}, // nobody
	} {
		if got := peerAllowed(tt.peer, tt.self); got != tt.ok {
			t.Errorf("peerAllowed(peer %d, self %d) = %v, want %v", tt.peer, tt.self, got, tt.ok)
		}
	}
}

// TestAdminSocketPeerCheck runs the check on the real socket: the kernel's
// credentials of a client of the same user are read and let through, and
// a client the rule refuses (here by a rule that refuses everyone, since
// the test cannot easily be another user) gets a clear refusal, and the
// server logs it.
func TestAdminSocketPeerCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ops := &Ops{Store: st}
	if err := ops.UserAdd(ctx, "alice@example.org", "hash"); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	srv := NewServer(ops, slog.New(slog.NewTextHandler(&logs, nil)))
	var seen []uint32
	var mu sync.Mutex
	allow := srv.allow
	refuse := false
	srv.allow = func(uid uint32) bool {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, uid)
		return !refuse && allow(uid)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		srv.Shutdown(ctx)
		<-done
	}()

	c, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	users, err := c.UserList(ctx)
	if err != nil || len(users) != 1 {
		t.Fatalf("same user: %v %v", users, err)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0] != uint32(os.Geteuid()) {
		t.Errorf("peer uids seen %v, want [%d]", seen, os.Geteuid())
	}
	refuse = true
	mu.Unlock()

	_, err = c.UserList(ctx)
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("refused client: %v, want a permission denied", err)
	}
	if err := c.UserAdd(ctx, "mallory@example.org", "hash"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("refused user add: %v", err)
	}
	if _, err := st.Account(ctx, "mallory@example.org"); err == nil {
		t.Fatal("a refused client created an account")
	}
	if l := logs.String(); !strings.Contains(l, "refused a client of another user") {
		t.Errorf("no log line for the refusal:\n%s", l)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
