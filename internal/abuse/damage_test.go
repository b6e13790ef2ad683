package abuse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/testenv"
)

// Issue 11, item 11: a damaged body file broke more than its message — a
// missing body made FETCH answer "NO [NONEXISTENT] No such mailbox", any
// missing or truncated body made SEARCH TEXT fail for the whole mailbox,
// same-size damage was served silently, and postfach check said "account
// 0 mailbox 0". These tests damage real files under data_dir/blobs.

// damageMessage is a body large enough to be kept in a file (over 128
// KiB), with a word of its own for SEARCH.
func damageMessage(word string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: sender@example.net\r\nSubject: %s\r\n\r\n", word)
	for i := 0; b.Len() < 160<<10; i++ {
		fmt.Fprintf(&b, "line %d of the message about %s\r\n", i, word)
	}
	return b.String()
}

// damageFiles returns the body file of each message in the account's
// INBOX, by UID, and its content.
func damageFiles(t *testing.T, env *testenv.Env, account string) (map[mail.UID]string, map[mail.UID][]byte) {
	t.Helper()
	ctx := context.Background()
	st := env.Store()
	a, err := st.Account(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := st.Mailbox(ctx, a.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	paths, contents := map[mail.UID]string{}, map[mail.UID][]byte{}
	for m, err := range st.Messages(ctx, a.ID, inbox.ID, mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		b, err := st.OpenBody(ctx, m.BlobID)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		p := filepath.Join(env.Config.DataDir, "blobs", h[:2], h[2:4], h)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("message %d: body file: %v", m.UID, err)
		}
		paths[m.UID], contents[m.UID] = p, data
	}
	return paths, contents
}

// damageLogin logs alice in over IMAP and selects INBOX.
func damageLogin(t *testing.T, env *testenv.Env) *opsConn {
	t.Helper()
	c := opsDial(t, env, "imap")
	if l := c.imap("l", `LOGIN alice@example.org "secret password"`); !strings.HasPrefix(l[len(l)-1], "l OK") {
		t.Fatalf("LOGIN: %q", l)
	}
	if l := c.imap("s", "SELECT INBOX"); !strings.HasPrefix(l[len(l)-1], "s OK") {
		t.Fatalf("SELECT: %q", l)
	}
	return c
}

// damageFetched returns the UIDs of the FETCH responses among lines.
func damageFetched(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "* ") && strings.Contains(l, " FETCH (UID ") {
			f := strings.Fields(l[strings.Index(l, "(UID ")+5:])
			out = append(out, f[0])
		}
	}
	return out
}

// damageLogCount counts the server log lines that report the damaged body
// of a UID.
func damageLogCount(env *testenv.Env, uid mail.UID) int {
	n := 0
	for _, l := range strings.Split(env.Logs(), "\n") {
		if strings.Contains(l, `msg="damaged message body found"`) && strings.Contains(l, "account=alice@example.org") &&
			strings.Contains(l, "mailbox=INBOX") && strings.HasSuffix(l, fmt.Sprintf(" uid=%d", uid)) {
			n++
		}
	}
	return n
}

// TestDamagedBodyMissingOrTruncated: with one body file deleted and one
// truncated, FETCH returns the good message and answers NO [SERVERBUG]
// naming the UIDs of the others, SEARCH TEXT works (a damaged message just
// does not match), POP3 RETR and TOP refuse that one message and the
// session goes on, the damage is logged once per body with account,
// mailbox and UID, and postfach check names them too; a same-size
// overwrite is found by check, after which FETCH refuses that message as
// well.
func TestDamagedBodyMissingOrTruncated(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.Scrub.Rate = 0 }})
	env.AddUser("alice@example.org", "secret password")
	for _, w := range []string{"alpha", "bravo", "charlie"} {
		if r := opsLMTP(t, env, damageMessage(w), "alice@example.org"); !strings.HasPrefix(r[0], "250") {
			t.Fatalf("deliver %s: %q", w, r)
		}
	}
	paths, contents := damageFiles(t, env, "alice@example.org")
	if err := os.Remove(paths[2]); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(paths[3], int64(len(contents[3])/2)); err != nil {
		t.Fatal(err)
	}

	c := damageLogin(t, env)
	got := c.imap("f1", "FETCH 1:3 (UID BODY.PEEK[])")
	if last := got[len(got)-1]; !strings.HasPrefix(last, "f1 NO [SERVERBUG] Messages UID 2:3 cannot be read") {
		t.Fatalf("FETCH 1:3 ended with %q", last)
	}
	if f := damageFetched(got); len(f) != 1 || f[0] != "1" {
		t.Fatalf("FETCH 1:3 returned UIDs %q, want the good message 1", f)
	}
	for i, want := range map[string]string{"f2": "Message UID 2 cannot be read", "f3": "Message UID 3 cannot be read"} {
		n := i[1:]
		got := c.imap(i, "FETCH "+n+" (BODY.PEEK[TEXT])")
		if last := got[len(got)-1]; !strings.HasPrefix(last, i+" NO [SERVERBUG] "+want) {
			t.Fatalf("FETCH %s: %q", n, last)
		}
	}
	// Metadata of a damaged message is still served.
	if got := c.imap("f4", "FETCH 2 (UID FLAGS RFC822.SIZE)"); !strings.HasPrefix(got[len(got)-1], "f4 OK") {
		t.Fatalf("FETCH 2 FLAGS: %q", got)
	}
	for word, want := range map[string]string{"alpha": "* SEARCH 1", "bravo": "* SEARCH", "charlie": "* SEARCH", "message": "* SEARCH 1"} {
		got := c.imap("s1", "UID SEARCH TEXT "+word)
		if len(got) != 2 || got[0] != want || !strings.HasPrefix(got[1], "s1 OK") {
			t.Fatalf("SEARCH TEXT %s: %q, want %q and OK", word, got, want)
		}
	}
	if got := c.imap("n", "NOOP"); !strings.HasPrefix(got[len(got)-1], "n OK") {
		t.Fatalf("NOOP: %q", got)
	}

	p := opsDial(t, env, "pop3")
	p.send("USER alice@example.org")
	if l := p.send("PASS secret password"); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("PASS: %q", l)
	}
	if l := p.send("RETR 2"); !strings.HasPrefix(l, "-ERR Message 2 cannot be sent: its stored copy is damaged") {
		t.Fatalf("RETR 2: %q", l)
	}
	if l := p.send("TOP 3 0"); !strings.HasPrefix(l, "-ERR Message 3 cannot be sent") {
		t.Fatalf("TOP 3 0: %q", l)
	}
	if l := p.send("RETR 1"); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("RETR 1: %q", l)
	}
	if body := strings.Join(p.multi(), "\r\n") + "\r\n"; body != string(contents[1]) {
		t.Fatalf("RETR 1 sent %d bytes, want the %d stored", len(body), len(contents[1]))
	}
	if l := p.send("QUIT"); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("QUIT: %q", l)
	}
	for _, u := range []mail.UID{2, 3} {
		if n := damageLogCount(env, u); n != 1 {
			t.Errorf("the damage of UID %d was logged %d times, want once", u, n)
		}
	}

	// Same-size damage of message 1: found by check, refused afterwards.
	bad := bytes.Clone(contents[1])
	copy(bad[len(bad)-20:], "XXXXXXXXXXXXXXXXXXXX")
	if err := os.WriteFile(paths[1], bad, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "postfach.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir = %q\ndomains = [\"example.org\"]\n", env.Config.DataDir)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, testenv.BuildBinary(t), "check", "--config", cfg).CombinedOutput()
	if err == nil {
		t.Fatalf("check passed a damaged store:\n%s", out)
	}
	for _, want := range []string{
		"problem: account alice@example.org, mailbox INBOX, UID 1: message body damaged: its content does not match its SHA-256",
		"problem: account alice@example.org, mailbox INBOX, UID 2: message body damaged: its file is missing",
		"problem: account alice@example.org, mailbox INBOX, UID 3: message body damaged: its file has",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	got = c.imap("f5", "FETCH 1 (BODY.PEEK[])")
	if last := got[len(got)-1]; !strings.HasPrefix(last, "f5 NO [SERVERBUG] Message UID 1 cannot be read") {
		t.Fatalf("FETCH 1 after check found it damaged: %q", last)
	}
}

// TestDamagedBodyScrub: a same-size overwrite of a body file, which an
// open cannot notice, is found by the background scrub: logged with
// account, mailbox and UID, counted in /metrics, and refused from then on;
// when the file is restored, the scrub clears it and the message is
// served again.
func TestDamagedBodyScrub(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
		c.Scrub.Rate = 64 << 20
		c.Scrub.Interval = config.Duration(time.Second)
	}})
	env.AddUser("alice@example.org", "secret password")
	for _, w := range []string{"alpha", "bravo"} {
		if r := opsLMTP(t, env, damageMessage(w), "alice@example.org"); !strings.HasPrefix(r[0], "250") {
			t.Fatalf("deliver %s: %q", w, r)
		}
	}
	paths, contents := damageFiles(t, env, "alice@example.org")
	bad := bytes.Clone(contents[2])
	copy(bad[len(bad)/2:], "a stray write of the same size")
	if err := os.WriteFile(paths[2], bad, 0o600); err != nil {
		t.Fatal(err)
	}
	damageWaitMetric(t, env, "postfach_store_damaged_bodies 1")
	// The record (and the gauge) can be visible a moment before the log
	// line that names the messages is written.
	damageWaitLog(t, env, 2)
	if n := damageLogCount(env, 2); n != 1 {
		t.Fatalf("the damage was logged %d times with account, mailbox and UID 2, want once:\n%s", n, env.Logs())
	}
	c := damageLogin(t, env)
	got := c.imap("f1", "UID FETCH 1:* (BODY.PEEK[])")
	if last := got[len(got)-1]; !strings.HasPrefix(last, "f1 NO [SERVERBUG] Message UID 2 cannot be read") {
		t.Fatalf("FETCH: %q", last)
	}
	if f := damageFetched(got); len(f) != 1 || f[0] != "1" {
		t.Fatalf("FETCH returned UIDs %q, want 1", f)
	}
	if got := c.imap("s", "UID SEARCH TEXT bravo"); got[0] != "* SEARCH" || !strings.HasPrefix(got[1], "s OK") {
		t.Fatalf("SEARCH: %q", got)
	}
	damageWaitMetric(t, env, "postfach_store_damaged_bodies_found_total 1")

	if err := os.WriteFile(paths[2], contents[2], 0o600); err != nil {
		t.Fatal(err)
	}
	damageWaitMetric(t, env, "postfach_store_damaged_bodies 0")
	got = c.imap("f2", "UID FETCH 2 (BODY.PEEK[])")
	if last := got[len(got)-1]; !strings.HasPrefix(last, "f2 OK") {
		t.Fatalf("FETCH of the restored message: %q", last)
	}
}

// damageWaitMetric waits (at most a minute) until /metrics has the line.
// damageWaitLog waits until the damage of uid has been logged.
func damageWaitLog(t *testing.T, env *testenv.Env, uid mail.UID) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for damageLogCount(env, uid) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the damage of UID %d was never logged:\n%s", uid, env.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func damageWaitMetric(t *testing.T, env *testenv.Env, line string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		c := opsDial0(t, env, "http")
		fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\n\r\n")
		body, _ := io.ReadAll(c)
		c.Close()
		if bytes.Contains(body, []byte("\n"+line+"\n")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %q:\n%s", line, env.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
