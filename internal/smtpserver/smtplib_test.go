package smtpserver_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/testenv"
)

// smtplibPython finds python3; with POSTFACH_REQUIRE_TOOLS=1 (as in CI) a
// missing one fails the test instead of skipping it.
func smtplibPython(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err == nil {
		return p
	}
	if os.Getenv("POSTFACH_REQUIRE_TOOLS") == "1" {
		t.Fatalf("python3 not found and POSTFACH_REQUIRE_TOOLS=1: %v", err)
	}
	t.Skipf("python3 not installed (set POSTFACH_REQUIRE_TOOLS=1 to make this a failure): %v", err)
	return ""
}

// TestSmtplibLFOnly (issue 11, item 2): Python's smtplib sends messages
// with LF line endings (msg.as_bytes()) over SMTP and LMTP; it dot-stuffs
// after every LF. imaplib then reads them back: each is stored with CRLF
// line endings and every leading period as in the message (the script
// checks). Here: the store holds the same bytes, after the trace headers,
// as `postfach deliver` (through the admin socket, as the CLI does with a
// running server) stores for the same message.
func TestSmtplibLFOnly(t *testing.T) {
	py := smtplibPython(t)
	env := testenv.Start(t, testenv.Options{})
	env.AddUser("alice@example.org", "secret-password")
	env.AddUser("bob@example.org", "secret-password")
	hostPort := func(name string) []string {
		h, p, err := net.SplitHostPort(env.Addr(name))
		if err != nil {
			t.Fatal(err)
		}
		return []string{h, p}
	}
	out := t.TempDir()
	args := []string{"testdata/smtplib_lf.py"}
	for _, l := range []string{"smtp", "lmtp", "imap"} {
		args = append(args, hostPort(l)...)
	}
	args = append(args, out)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, py, args...).CombinedOutput(); err != nil {
		t.Fatalf("smtplib_lf.py: %v\n%s", err, b)
	}

	c, err := admin.Dial(env.Config.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		msg, err := os.ReadFile(filepath.Join(out, "msg"+strconv.Itoa(i)+".eml"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Deliver(ctx, admin.DeliverRequest{To: []string{"bob@example.org"}, From: "py@remote.example"}, bytes.NewReader(msg))
		if err != nil || res.Errs[0] != "" {
			t.Fatalf("deliver: %v %+v", err, res)
		}
	}
	smtp := env.Messages("alice@example.org", "INBOX")
	local := env.Messages("bob@example.org", "INBOX")
	if len(smtp) != 4 || len(local) != 2 {
		t.Fatalf("%d messages by SMTP and LMTP, %d by deliver", len(smtp), len(local))
	}
	for i, m := range smtp {
		got, wantMsg := smtplibBody(m), smtplibBody(local[i%2])
		if !bytes.Equal(got, wantMsg) {
			t.Errorf("message %d: SMTP/LMTP stored\n%q\n`postfach deliver` stored\n%q", i, got, wantMsg)
		}
	}
}

// smtplibBody returns a stored message without the header fields
// postfach adds (Return-Path:, Authentication-Results: and Received:,
// with continuation lines).
func smtplibBody(m []byte) []byte {
	for {
		switch {
		case bytes.HasPrefix(m, []byte("Return-Path:")), bytes.HasPrefix(m, []byte("Received:")),
			bytes.HasPrefix(m, []byte("Authentication-Results:")),
			bytes.HasPrefix(m, []byte("\t")), bytes.HasPrefix(m, []byte(" ")):
			i := bytes.Index(m, []byte("\r\n"))
			if i < 0 {
				return m
			}
			m = m[i+2:]
		default:
			return m
		}
	}
}
