package imapserver

import (
	"bufio"
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// compressed switches the client to COMPRESS=DEFLATE (RFC 4978) after the
// server's tagged OK: raw deflate both ways, a sync flush after each
// command.
func (c *client) compressed() {
	c.t.Helper()
	if c.r.Buffered() > 0 {
		c.t.Fatal("data after the COMPRESS OK was not compressed")
	}
	fw, err := flate.NewWriter(c.c, flate.DefaultCompression)
	if err != nil {
		c.t.Fatal(err)
	}
	c.fw = fw
	c.r = bufio.NewReader(flate.NewReader(c.c))
}

// TestCompress: COMPRESS DEFLATE (RFC 4978) after login, only once; every
// response burst is flushed, so transcripts, large literals and IDLE
// pushes all arrive without the client sending more.
func TestCompress(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	big := strings.Repeat("All work and no play makes Jack a dull boy.\n", 2000)
	ts.deliver(acct, "INBOX", msg("big", big))

	c := ts.dial()
	c.expect("a1 COMPRESS DEFLATE", "a1 BAD Log in first")
	c.ok("a2 LOGIN alice@example.org \"" + testPassword + "\"")
	if caps := strings.Join(c.ok("a3 CAPABILITY"), " "); !strings.Contains(caps, " COMPRESS=DEFLATE") {
		t.Fatalf("no COMPRESS=DEFLATE after login: %s", caps)
	}
	c.expect("a4 COMPRESS LZW", "a4 BAD Unsupported compression algorithm")
	c.expect("a5 COMPRESS DEFLATE", "a5 OK DEFLATE active")
	c.compressed()
	c.expect("a6 COMPRESS DEFLATE", "a6 NO [COMPRESSIONACTIVE] DEFLATE is already active")
	if caps := strings.Join(c.ok("a7 CAPABILITY"), " "); strings.Contains(caps, "COMPRESS=") {
		t.Fatalf("COMPRESS still offered: %s", caps)
	}
	c.ok("a8 SELECT INBOX")
	lines := c.ok("a9 FETCH 1 BODY.PEEK[TEXT]")
	if len(lines) != 1 || !strings.Contains(lines[0], strings.ReplaceAll(big, "\n", "\r\n")) {
		t.Fatalf("FETCH over DEFLATE: %d lines, %.200q", len(lines), lines)
	}
	// Many small bursts, each flushed (the compressor goes back to the
	// pool between them).
	for i := range 20 {
		c.expect(fmt.Sprintf("n%d NOOP", i), fmt.Sprintf("n%d OK NOOP completed", i))
	}

	// IDLE over DEFLATE: the push is flushed at once.
	c.send("i1 IDLE")
	c.expectLine("+ idling")
	ts.deliver(acct, "INBOX", msg("pushed", "x"))
	c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	c.expectLine("* 2 EXISTS")
	c.expectLine("* 2 RECENT")
	ts.deliver(acct, "INBOX", msg("pushed again", "x"))
	c.expectLine("* 3 EXISTS")
	c.expectLine("* 3 RECENT")
	c.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	c.send("DONE")
	c.expectLine("i1 OK IDLE terminated")
	c.expect("z LOGOUT", "* BYE Logging out", "z OK LOGOUT completed")
}

// TestCompressPipelined: a client that starts compressing right after
// COMPRESS, before it has read the OK, is understood.
func TestCompressPipelined(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	c := ts.login("alice@example.org")
	var buf strings.Builder
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	fw.Write([]byte("b NOOP\r\n"))
	fw.Flush()
	if _, err := c.c.Write([]byte("a COMPRESS DEFLATE\r\n" + buf.String())); err != nil {
		t.Fatal(err)
	}
	c.expectLine("a OK DEFLATE active")
	c.fw = fw
	fw.Reset(c.c)
	// The response to b may have arrived with the OK: it is compressed.
	rest, _ := c.r.Peek(c.r.Buffered())
	c.r = bufio.NewReader(flate.NewReader(io.MultiReader(bytes.NewReader(bytes.Clone(rest)), c.c)))
	c.expectLine("b OK NOOP completed")
	c.expect("c NOOP", "c OK NOOP completed")
}
