package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// backupLMTP delivers messages over one LMTP connection until stop is
// closed, calling acked with the Message-ID of each acknowledged one.
func backupLMTP(t *testing.T, addr, rcpt string, w int, stop <-chan struct{}, acked func(id string)) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(c)
	reply := func() string {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return "error: " + err.Error()
			}
			if len(line) < 4 || line[3] != '-' {
				return line
			}
		}
	}
	cmd := func(s, want string) bool {
		io.WriteString(c, s+"\r\n")
		if line := reply(); !strings.HasPrefix(line, want) {
			t.Errorf("LMTP %q: %q", s, line)
			return false
		}
		return true
	}
	if !strings.HasPrefix(reply(), "220") || !cmd("LHLO test", "250") {
		return
	}
	for i := 0; ; i++ {
		select {
		case <-stop:
			cmd("QUIT", "221")
			return
		default:
		}
		id := fmt.Sprintf("w%d-%d@test", w, i)
		if !cmd("MAIL FROM:<sender@example.net>", "250") || !cmd("RCPT TO:<"+rcpt+">", "250") || !cmd("DATA", "354") {
			return
		}
		if !cmd("From: sender@example.net\r\nTo: "+rcpt+"\r\nSubject: msg "+id+"\r\nMessage-ID: <"+id+">\r\n\r\nbody "+id+"\r\n.", "250") {
			return
		}
		acked(id)
	}
}

// backupIMAP is a raw IMAP connection for transcript-style checks.
type backupIMAP struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
	n int
}

func dialBackupIMAP(t *testing.T, addr, user, pass string) *backupIMAP {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(time.Minute))
	im := &backupIMAP{t: t, c: c, r: bufio.NewReader(c)}
	t.Cleanup(func() { c.Close() })
	im.r.ReadString('\n')
	im.do(`LOGIN ` + user + ` "` + pass + `"`)
	im.do("ENABLE QRESYNC")
	return im
}

// do sends a command and returns the untagged lines; the command must end
// OK.
func (im *backupIMAP) do(cmd string) []string {
	im.t.Helper()
	im.n++
	tag := fmt.Sprintf("b%d", im.n)
	io.WriteString(im.c, tag+" "+cmd+"\r\n")
	var lines []string
	for {
		line, err := im.r.ReadString('\n')
		if err != nil {
			im.t.Fatalf("%s: %v (after %q)", cmd, err, lines)
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line, tag+" OK") {
				im.t.Fatalf("%s: %s", cmd, line)
			}
			return lines
		}
		lines = append(lines, line)
	}
}

var (
	uidValidityRE = regexp.MustCompile(`\[UIDVALIDITY (\d+)\]`)
	highestRE     = regexp.MustCompile(`\[HIGHESTMODSEQ (\d+)\]`)
)

func findIn(t *testing.T, lines []string, re *regexp.Regexp) string {
	t.Helper()
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no %v in %q", re, lines)
	return ""
}

// sync selects INBOX and returns what a device remembers: UIDVALIDITY,
// HIGHESTMODSEQ and the UIDs.
func (im *backupIMAP) sync() (uv, modseq string, uids mail.UIDSet) {
	lines := im.do("SELECT INBOX (CONDSTORE)")
	uv, modseq = findIn(im.t, lines, uidValidityRE), findIn(im.t, lines, highestRE)
	for _, l := range im.do("UID SEARCH ALL") {
		if rest, ok := strings.CutPrefix(l, "* SEARCH"); ok {
			for _, f := range strings.Fields(rest) {
				var u uint32
				fmt.Sscan(f, &u)
				uids = uids.Append(mail.UID(u))
			}
		}
	}
	im.do("UNSELECT")
	return uv, modseq, uids
}

// TestBackupRestoreUnderLoad: `postfach backup` through a running server
// while LMTP deliveries go on; every message acknowledged before the
// backup started is in it, verify finds it whole, and a full restore into
// a fresh data directory has every message with its UID, MODSEQ, flags,
// keywords and dates. A device in sync before the backup resyncs with
// QRESYNC and is sent nothing but what is new to it; a device that saw
// mail after the backup is told by VANISHED that it is gone.
func TestBackupRestoreUnderLoad(t *testing.T) {
	cfg := testConfig(t, "")
	cfgText, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(cfgText), `imap = ""`, `imap = "127.0.0.1:0"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "backups")
	run := func(stdin string, code int, config string, args ...string) result {
		t.Helper()
		r := runBin(t, stdin, append(args, "--config", config)...)
		if r.code != code {
			t.Fatalf("%v: exit %d, want %d; stdout %s; stderr %s", args, r.code, code, r.stdout, r.stderr)
		}
		return r
	}
	srv := startServe(t, cfg)
	const user = "alice@example.org"
	run("pw-alice-1\n", 0, cfg, "user", "add", user, "--password-stdin")
	var mu sync.Mutex
	var acked []string
	ack := func(id string) { mu.Lock(); acked = append(acked, id); mu.Unlock() }
	deliver := func(addr string, n int) {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); backupLMTP(t, addr, user, 9, stop, ack) }()
		for {
			mu.Lock()
			k := len(acked)
			mu.Unlock()
			if k >= n || t.Failed() {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
	}
	deliver(srv.Addr("lmtp"), 20)
	im := dialBackupIMAP(t, srv.Addr("imap"), user, "pw-alice-1")
	im.do("SELECT INBOX")
	im.do(`UID STORE 1:5 +FLAGS (\Seen $Work)`)
	im.do(`UID STORE 3 +FLAGS (\Flagged)`)
	im.do("UNSELECT")
	uv0, modseq0, uids0 := im.sync()

	// Deliveries go on while the backup runs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); backupLMTP(t, srv.Addr("lmtp"), user, w, stop, ack) }()
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	before := slices.Clone(acked)
	mu.Unlock()
	out := run("", 0, cfg, "backup", dest).stdout
	close(stop)
	wg.Wait()
	if !strings.HasPrefix(out, "backup "+dest+"/postfach-") {
		t.Fatalf("backup: %q", out)
	}
	// A device that syncs after the backup knows mail the backup lacks.
	deliver(srv.Addr("lmtp"), len(before)+200)
	_, modseq2, uids2 := im.sync()
	run("", 0, cfg, "backup", "verify", dest)
	srv.stop()

	// Restore into a fresh data directory; the old one stays to compare.
	cfg2 := filepath.Join(filepath.Dir(cfg), "restored.toml")
	if err := os.WriteFile(cfg2, []byte(strings.Replace(string(mustRead(t, cfg)), `data_dir = "data"`, `data_dir = "data2"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run("", 0, cfg2, "restore", dest)
	if !strings.Contains(r.stdout, "1 accounts") {
		t.Fatalf("restore: %q", r.stdout)
	}
	// A second full restore is refused: the directory is not empty.
	if r := run("", exitError, cfg2, "restore", dest); !strings.Contains(r.stderr, "not empty") {
		t.Fatalf("restore into a used data directory: %q", r.stderr)
	}

	ctx := context.Background()
	srcSt, err := sqlite.Open(ctx, sqlite.Options{Dir: filepath.Join(filepath.Dir(cfg), "data"), SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srcSt.Close()
	dstSt, err := sqlite.Open(ctx, sqlite.Options{Dir: filepath.Join(filepath.Dir(cfg), "data2"), SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	restored := map[string]*store.Message{} // by Message-ID
	byUID := func(st store.Store) (map[mail.UID]*store.Message, map[mail.UID]string, *store.Mailbox) {
		a, err := st.Account(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		mb, err := st.Mailbox(ctx, a.ID, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		msgs, ids := map[mail.UID]*store.Message{}, map[mail.UID]string{}
		for m, err := range st.Messages(ctx, a.ID, mb.ID, mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, store.ListOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			msgs[m.UID] = m
			b, err := st.OpenBody(ctx, m.BlobID)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
			b.Close()
			ids[m.UID] = regexp.MustCompile(`Message-ID: <([^>]+)>`).FindStringSubmatch(string(data))[1]
		}
		return msgs, ids, mb
	}
	srcMsgs, srcIDs, srcMB := byUID(srcSt)
	dstMsgs, dstIDs, dstMB := byUID(dstSt)
	dstSt.Close()
	for uid, m := range dstMsgs {
		s := srcMsgs[uid]
		if s == nil || srcIDs[uid] != dstIDs[uid] || s.ModSeq != m.ModSeq || !s.Flags.Equal(m.Flags) || !s.InternalDate.Equal(m.InternalDate) ||
			!s.SaveDate.Equal(m.SaveDate) || s.EmailID != m.EmailID || s.Size != m.Size {
			t.Fatalf("UID %d restored as %+v, source %+v", uid, m, s)
		}
		restored[dstIDs[uid]] = m
	}
	for _, id := range before {
		if restored[id] == nil {
			t.Fatalf("message %s was acknowledged before the backup started but is not restored", id)
		}
	}
	if !restored["w9-0@test"].Flags.Has("$Work") || !restored["w9-2@test"].Flags.Has(`\Flagged`) {
		t.Fatal("flags and keywords not restored")
	}
	// The margin is above every UID the backup holds; the source went on
	// delivering after the backup, so its UIDNEXT says nothing here.
	var maxUID mail.UID
	for uid := range dstMsgs {
		maxUID = max(maxUID, uid)
	}
	if dstMB.UIDValidity != srcMB.UIDValidity || dstMB.UIDNext < maxUID+1+1_000_000 {
		t.Fatalf("restored INBOX %+v, source %+v", dstMB, srcMB)
	}

	// The restored server: the device in sync before the backup is sent
	// no message it has, and learns of none vanished.
	srv2 := startServe(t, cfg2)
	im2 := dialBackupIMAP(t, srv2.Addr("imap"), user, "pw-alice-1")
	lines := im2.do(fmt.Sprintf("SELECT INBOX (QRESYNC (%s %s %s))", uv0, modseq0, uids0.String()))
	if findIn(t, lines, uidValidityRE) != uv0 {
		t.Fatalf("UIDVALIDITY changed: %q", lines)
	}
	for _, l := range lines {
		if strings.Contains(l, "VANISHED") {
			t.Fatalf("a device in sync before the backup was told of vanished mail: %q", l)
		}
		if m := regexp.MustCompile(`^\* \d+ FETCH \(UID (\d+)`).FindStringSubmatch(l); m != nil {
			var u uint32
			fmt.Sscan(m[1], &u)
			if uids0.Contains(mail.UID(u)) {
				t.Fatalf("a device in sync before the backup was sent a message it has: %q", l)
			}
		}
	}
	im2.do("UNSELECT")
	// The device that synced after the backup: what the backup lacks has
	// vanished, and nothing it has is sent again.
	lines = im2.do(fmt.Sprintf("SELECT INBOX (QRESYNC (%s %s %s))", uv0, modseq2, uids2.String()))
	var vanished mail.UIDSet
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "* VANISHED (EARLIER) "); ok {
			set, err := mail.ParseUIDSet(rest)
			if err != nil {
				t.Fatal(err)
			}
			vanished = vanished.Union(set)
		}
		if strings.Contains(l, "FETCH") && !strings.Contains(l, "FLAGS") {
			t.Fatalf("a device after the backup was sent: %q", l)
		}
	}
	want := uids2.Diff(mail.NewUIDSet(slices.Collect(maps.Keys(dstMsgs))...))
	if want.IsEmpty() || vanished.String() != want.String() {
		t.Fatalf("VANISHED %v, want %v", vanished, want)
	}
	// New mail gets UIDs no device has seen.
	deliver(srv2.Addr("lmtp"), len(acked)+1)
	_, _, uids3 := im2.sync()
	if uids3.Max() < srcMB.UIDNext+1_000_000-1000 {
		t.Fatalf("new mail after the restore got UID %d", uids3.Max())
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
