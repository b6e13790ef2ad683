package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// migrateConfig is a test config with the listeners given turned on.
func migrateConfig(t *testing.T, hostname string, listeners ...string) string {
	t.Helper()
	cfg := testConfig(t, "")
	text := string(mustRead(t, cfg))
	text = strings.Replace(text, `hostname = "mx.test.example"`, fmt.Sprintf("hostname = %q", hostname), 1)
	for _, l := range listeners {
		text = strings.Replace(text, l+` = ""`, l+` = "127.0.0.1:0"`, 1)
	}
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// migrateUIDLs lists a POP3 maildrop's UIDLs.
func migrateUIDLs(t *testing.T, addr string, implicitTLS bool, user, pass string) []string {
	t.Helper()
	var c net.Conn
	var err error
	if implicitTLS {
		c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	line := func() string { l, _ := r.ReadString('\n'); return strings.TrimRight(l, "\r\n") }
	line()
	for _, cmd := range []string{"USER " + user, "PASS " + pass, "UIDL"} {
		fmt.Fprintf(c, "%s\r\n", cmd)
		if l := line(); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3 %s: %s", strings.Fields(cmd)[0], l)
		}
	}
	var out []string
	for l := line(); l != "." && l != ""; l = line() {
		out = append(out, strings.Fields(l)[1])
	}
	slices.Sort(out)
	return out
}

// TestMigrate moves an account from a second postfach on loopback: over
// IMAP with TLS (every folder, flags, keywords and dates), again (nothing
// copied twice), after new mail (only that), and from POP3 with TLS into
// another account (the UIDLs kept). The source's certificate is checked
// against --ca; without it the self-signed certificate is refused.
func TestMigrate(t *testing.T) {
	t.Parallel()
	srcCfg := migrateConfig(t, "localhost", "imaps", "pop3s")
	dstCfg := migrateConfig(t, "mx.test.example", "imap", "pop3")
	run := func(cfg, stdin string, code int, args ...string) result {
		t.Helper()
		r := runBin(t, stdin, append(args, "--config", cfg)...)
		if r.code != code {
			t.Fatalf("%v: exit %d, want %d; stdout %s; stderr %s", args, r.code, code, r.stdout, r.stderr)
		}
		return r
	}
	src := startServe(t, srcCfg)
	defer src.stop()
	dst := startServe(t, dstCfg)
	defer dst.stop()
	run(srcCfg, "pw-alice-1\n", 0, "user", "add", "alice@example.org", "--password-stdin")
	run(dstCfg, "pw-bob-111\n", 0, "user", "add", "bob@example.org", "--password-stdin")
	run(dstCfg, "pw-carol-1\n", 0, "user", "add", "carol@example.org", "--password-stdin")
	for i := range 3 {
		run(srcCfg, fmt.Sprintf("From: x@example.net\nSubject: inbox %d\nMessage-ID: <in%d@x>\n\nbody %d\n", i, i, i), 0, "deliver", "--to", "alice@example.org")
	}
	c, err := imapclient.DialTLS(src.Addr("imaps"), &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.org", "pw-alice-1").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen, "$Work"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Work/Sub", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	date := time.Date(2023, 4, 5, 6, 7, 8, 0, time.UTC)
	for i := range 2 {
		raw := fmt.Sprintf("From: y@example.net\r\nSubject: sub %d\r\nMessage-ID: <sub%d@x>\r\n\r\nsub body\r\n", i, i)
		ac := c.Append("Work/Sub", int64(len(raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagAnswered}, Time: date})
		ac.Write([]byte(raw))
		ac.Close()
		if _, err := ac.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	srcDir := filepath.Dir(srcCfg)
	ca := filepath.Join(srcDir, "data", "tls", "cert.pem")
	state := filepath.Join(t.TempDir(), "state.json")
	from := "imaps://alice%40example.org@localhost:" + portOf(t, src.Addr("imaps"))
	if r := run(dstCfg, "pw-alice-1\n", 1, "migrate", "bob@example.org", "--from", from, "--password-stdin", "--state", state); !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("migrate without --ca: %s", r.stderr)
	}
	out := run(dstCfg, "pw-alice-1\n", 0, "migrate", "bob@example.org", "--from", from, "--password-stdin", "--ca", ca, "--state", state).stdout
	if !strings.Contains(out, "migrated 5 new messages") {
		t.Fatalf("migrate: %s", out)
	}
	if out := run(dstCfg, "pw-alice-1\n", 0, "migrate", "bob@example.org", "--from", from, "--password-stdin", "--ca", ca, "--state", state).stdout; !strings.Contains(out, "migrated 0 new messages into bob@example.org (0 there already)") {
		t.Fatalf("a second migrate: %s", out)
	}
	run(srcCfg, "From: x@example.net\nSubject: late\nMessage-ID: <late@x>\n\nlate\n", 0, "deliver", "--to", "alice@example.org")
	if out := run(dstCfg, "pw-alice-1\n", 0, "migrate", "bob@example.org", "--from", from, "--password-stdin", "--ca", ca, "--state", state).stdout; !strings.Contains(out, "migrated 1 new messages") {
		t.Fatalf("migrate after new mail: %s", out)
	}
	d, err := imapclient.DialInsecure(dst.Addr("imap"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Login("bob@example.org", "pw-bob-111").Wait(); err != nil {
		t.Fatal(err)
	}
	if sel, err := d.Select("INBOX", nil).Wait(); err != nil || sel.NumMessages != 4 {
		t.Fatalf("bob's INBOX: %+v, %v", sel, err)
	}
	msgs, err := d.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true, Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].Envelope.Subject != "inbox 0" || !slices.Contains(msgs[0].Flags, imap.FlagSeen) || !slices.Contains(msgs[0].Flags, "$Work") {
		t.Fatalf("bob's first message: %+v, %v", msgs, err)
	}
	if _, err := d.Select("Work/Sub", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err = d.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{Flags: true, InternalDate: true}).Collect()
	if err != nil || len(msgs) != 2 || !slices.Contains(msgs[1].Flags, imap.FlagAnswered) || !msgs[1].InternalDate.Equal(date) {
		t.Fatalf("bob's Work/Sub: %+v, %v", msgs, err)
	}

	// From POP3: the UIDLs stay.
	pfrom := "pop3s://alice%40example.org@localhost:" + portOf(t, src.Addr("pop3s"))
	pstate := filepath.Join(t.TempDir(), "pop3.json")
	if out := run(dstCfg, "pw-alice-1\n", 0, "migrate", "carol@example.org", "--from", pfrom, "--password-stdin", "--ca", ca, "--state", pstate).stdout; !strings.Contains(out, "migrated 4 new messages") {
		t.Fatalf("migrate from POP3: %s", out)
	}
	if out := run(dstCfg, "pw-alice-1\n", 0, "migrate", "carol@example.org", "--from", pfrom, "--password-stdin", "--ca", ca, "--state", pstate).stdout; !strings.Contains(out, "migrated 0 new messages") {
		t.Fatalf("a second migrate from POP3: %s", out)
	}
	want := migrateUIDLs(t, src.Addr("pop3s"), true, "alice@example.org", "pw-alice-1")
	if got := migrateUIDLs(t, dst.Addr("pop3"), false, "carol@example.org", "pw-carol-1"); !slices.Equal(got, want) || len(got) != 4 {
		t.Fatalf("UIDLs after the move %v, at the source %v", got, want)
	}
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
