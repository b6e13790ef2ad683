package imap

import (
	"strings"
	"testing"
)

// testBudget is a Budget of limit bytes that remembers the most it held.
type testBudget struct {
	limit, held, peak int64
}

func (b *testBudget) Grow(n int64) bool {
	if b.held+n > b.limit {
		return false
	}
	b.held += n
	b.peak = max(b.peak, b.held)
	return true
}

func (b *testBudget) Shrink(n int64) { b.held -= n }

// preAuth are limits like a server's before authentication.
func preAuth(b Budget) Options {
	return Options{MaxLine: 8 << 10, MaxLiteral: 4 << 10, MaxCommand: 16 << 10, MaxDiscard: 4 << 10, Budget: b}
}

// TestBudgetChargesLinesAndLiterals: the bytes of a command are charged
// while it is read and given back when the next one begins.
func TestBudgetChargesLinesAndLiterals(t *testing.T) {
	b := &testBudget{limit: 1 << 20}
	lit := strings.Repeat("p", 3000)
	r, _ := newTestReader("a LOGIN {5}\r\nalice {3000}\r\n"+lit+"\r\nb NOOP\r\n", preAuth(b))
	c, err := r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	if l := c.(*Login); l.Username != "alice" || l.Password != lit {
		t.Fatalf("%+v", l)
	}
	if b.held < 3005 {
		t.Fatalf("held %d while the command is current", b.held)
	}
	if _, err := r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	if b.held != int64(len("b NOOP\r\n")) {
		t.Fatalf("held %d after the next command began", b.held)
	}
	r.ReleaseBuffers()
	if b.held != 0 {
		t.Fatalf("held %d after ReleaseBuffers", b.held)
	}
}

// TestBudgetRefusal: a non-synchronizing literal the Budget refuses ends
// the connection (the client sends it anyway, RFC 7888 §4); a
// synchronizing one is refused without "+", and the session goes on.
func TestBudgetRefusal(t *testing.T) {
	b := &testBudget{limit: 2000}
	r, n := newTestReader("a LOGIN {3000+}\r\n"+strings.Repeat("x", 3000)+" y\r\n", preAuth(b))
	_, err := r.ReadCommand()
	pe := wantParseError(t, err, BAD, "LIMIT", "too much pending data from your address", true)
	if pe.Tag != "a" || pe.Limit != "memory" {
		t.Fatalf("%+v", pe)
	}
	r.ReleaseBuffers()
	b = &testBudget{limit: 2000}
	r, n = newTestReader("a LOGIN {3000}\r\nb NOOP\r\n", preAuth(b))
	_, err = r.ReadCommand()
	wantParseError(t, err, BAD, "LIMIT", "too much pending data from your address", false)
	if *n != 0 {
		t.Fatal("continuation sent for a refused literal")
	}
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
	// A line the Budget cannot hold ends the connection.
	b = &testBudget{limit: 100}
	r, _ = newTestReader("a LOGIN "+strings.Repeat("u", 200)+" p\r\n", preAuth(b))
	_, err = r.ReadCommand()
	wantParseError(t, err, BAD, "LIMIT", "too much pending data from your address", true)
}

// TestPreAuthLimits: before authentication a LITERAL+ over the literal
// limit gets BAD [TOOBIG] and closes the connection; a synchronizing one
// is refused without "+"; a line over 8 KiB is refused. SetOptions lifts
// the limits.
func TestPreAuthLimits(t *testing.T) {
	r, _ := newTestReader("a LOGIN {1000000+}\r\n"+strings.Repeat("x", 10000), preAuth(nil))
	_, err := r.ReadCommand()
	pe := wantParseError(t, err, BAD, "TOOBIG", "literal too big", true)
	if pe.Limit != "literal" {
		t.Fatalf("limit %q", pe.Limit)
	}
	r, n := newTestReader("a LOGIN {5000}\r\nb NOOP\r\n", preAuth(nil))
	_, err = r.ReadCommand()
	wantParseError(t, err, BAD, "TOOBIG", "literal too big", false)
	if *n != 0 {
		t.Fatal("continuation sent")
	}
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
	r, _ = newTestReader("a LOGIN "+strings.Repeat("u", 9000)+" p\r\nb NOOP\r\n", preAuth(nil))
	_, err = r.ReadCommand()
	pe = wantParseError(t, err, BAD, "", "command line too long", false)
	if pe.Limit != "line" {
		t.Fatalf("limit %q", pe.Limit)
	}
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
	// After login: the full limits.
	r, _ = newTestReader("a LOGIN {5000+}\r\n"+strings.Repeat("x", 5000)+" y\r\n", preAuth(nil))
	r.SetOptions(Options{})
	if _, err := r.ReadCommand(); err != nil {
		t.Fatalf("after SetOptions: %v", err)
	}
}

// TestOnLine: the hook runs once per complete line, literal data aside.
func TestOnLine(t *testing.T) {
	lines := 0
	r, _ := newTestReader("a LOGIN {5}\r\nalice {3}\r\npwd\r\nb NO", Options{OnLine: func() { lines++ }})
	if _, err := r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	if lines != 3 {
		t.Fatalf("%d lines, want 3", lines)
	}
	if _, err := r.ReadCommand(); err == nil {
		t.Fatal("partial line read as a command")
	}
	if lines != 3 {
		t.Fatalf("a partial line counted: %d", lines)
	}
}
