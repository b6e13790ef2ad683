package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// TestQueueCommands: `postfach queue list|show|retry|drop` on the store
// directly and through a running server (whose queue tries the messages:
// DNS answers nowhere here, so they wait).
func TestQueueCommands(t *testing.T) {
	cfg := testConfig(t, "[dns]\nservers = [\"127.0.0.1:9\"]\n")
	if r := runBin(t, "password\n", "user", "add", "--config", cfg, "--password-stdin", "alice@example.org"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	// Queue three messages on the store, as submission would.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: filepath.Join(filepath.Dir(cfg), "data")})
	if err != nil {
		t.Fatal(err)
	}
	alice, err := st.Account(ctx, "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"bob@remote.test", "carol@remote.test", "dan@remote.test"} {
		b, err := st.Stage(ctx, strings.NewReader("From: alice@example.org\r\nSubject: hi\r\n\r\nhello\r\n"), 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Enqueue(ctx, &store.QueueEntry{Account: alice.ID, From: "alice@example.org", Created: time.Now(),
			NextAttempt: time.Now().Add(time.Hour), Recipients: []store.QueueRecipient{{Address: to}}}, b); err != nil {
			t.Fatal(err)
		}
		b.Discard()
	}
	st.Close()

	run := func(code int, args ...string) result {
		t.Helper()
		r := runBin(t, "", append(args, "--config", cfg)...)
		if r.code != code {
			t.Fatalf("%v: exit %d, want %d; stdout %s; stderr %s", args, r.code, code, r.stdout, r.stderr)
		}
		return r
	}
	out := run(0, "queue", "list").stdout
	if !strings.HasPrefix(out, "ID ") || strings.Count(out, "alice@example.org") != 3 || !strings.Contains(out, "carol@remote.test") {
		t.Fatalf("queue list:\n%s", out)
	}
	out = run(0, "queue", "show", "1").stdout
	for _, want := range []string{"id:           1\n", "sender:       alice@example.org\n", "account:      alice@example.org\n",
		"attempts:     0\n", "recipient:    bob@remote.test pending\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("queue show lacks %q:\n%s", want, out)
		}
	}
	if r := run(exitError, "queue", "show", "99"); !strings.Contains(r.stderr, "not found") {
		t.Fatalf("queue show of a missing entry: %q", r.stderr)
	}
	if r := run(exitError, "queue", "drop", "x1"); !strings.Contains(r.stderr, "not a queue ID") {
		t.Fatalf("queue drop x1: %q", r.stderr)
	}
	run(exitUsage, "queue", "retry")
	run(exitUsage, "queue", "retry", "1", "--all")
	run(0, "queue", "drop", "3")
	if out := run(0, "queue", "retry", "--all").stdout; out != "2 queued message(s) due now\n" {
		t.Fatalf("queue retry --all: %q", out)
	}

	// Through the server: its queue tries both (DNS fails: deferred).
	srv := startServe(t, cfg)
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(run(0, "queue", "show", "2").stdout, "attempts:     1\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no attempt for entry 2:\n%s", srv.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out = run(0, "queue", "show", "2").stdout
	if !strings.Contains(out, "last error:   MX lookup") || !strings.Contains(out, "recipient:    carol@remote.test pending 4.4.3") {
		t.Fatalf("queue show after an attempt:\n%s", out)
	}
	if out := run(0, "queue", "retry", "2").stdout; out != "1 queued message(s) due now\n" {
		t.Fatalf("queue retry 2: %q", out)
	}
	run(0, "queue", "drop", "1")
	run(0, "queue", "drop", "2")
	if out := run(0, "queue", "list").stdout; out != "the queue is empty\n" {
		t.Fatalf("queue list after drops: %q", out)
	}
	run(exitError, "queue", "drop", "2")
	srv.stop()
}
