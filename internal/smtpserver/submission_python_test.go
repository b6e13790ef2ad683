package smtpserver_test

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/testenv"
)

// TestSubmissionPython: Python's smtplib sends over STARTTLS and implicit
// TLS and is refused for a spoofed sender or From:; imaplib then APPENDs
// its own copy to Sent, which keeps the server's one copy (with the
// APPEND's flags, its UID in APPENDUID); and a draft APPENDed to Drafts is
// sent with BURL after GENURLAUTH signed its URL for the submission
// server. The script asserts each step.
func TestSubmissionPython(t *testing.T) {
	t.Parallel()
	py := smtplibPython(t)
	q := &submitQueue{}
	env := testenv.Start(t, testenv.Options{Enqueuer: q})
	const password = "python password"
	env.AddUser("alice@"+testenv.Domain, password)
	env.AddUser("bob@"+testenv.Domain, password)
	port := func(name string) string {
		_, p, err := net.SplitHostPort(env.Addr(name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "testdata/submission_clients.py", "127.0.0.1", port("submission"), port("submissions"),
		port("imap"), password).CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "ok\n") {
		t.Fatalf("submission_clients.py: %v\n%s", err, out)
	}
	qd := q.all()
	if len(qd) != 1 || strings.Join(qd[0].out.To, ",") != "carol@remote.example" {
		t.Fatalf("queued %+v", qd)
	}
	if n := len(env.Messages("alice@"+testenv.Domain, "Sent")); n != 4 {
		t.Errorf("alice's Sent has %d messages, want 4 (2 submitted, 1 appended, 1 sent with BURL)", n)
	}
}
