package abuse

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/store/sqlite"
	"github.com/postfach/postfach/internal/testenv"
)

// Issue 11, item 12: on a full disk, STORE \Deleted, EXPUNGE, POP3 DELE
// and `postfach user del` all failed, so nothing could relieve the disk
// through postfach. This test fills a real file system: a small tmpfs
// mounted for it.

// diskNoMount names the variable that excuses a machine that cannot mount
// (not root, no tmpfs): the test then skips instead of failing. CI runs
// as root and must not set it.
const diskNoMount = "POSTFACH_TEST_NO_MOUNT"

// diskMount mounts a tmpfs of size bytes on a new directory and unmounts
// it when the test ends (after the server stops: cleanups run last in,
// first out, and the mount's is registered first).
func diskMount(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv(diskNoMount) != "" {
			t.Skipf("not root and %s is set: cannot mount a small file system to fill", diskNoMount)
		}
		t.Fatalf("the full-disk test mounts a small tmpfs and needs root (CI runs as root); on a machine that cannot, set %s=1", diskNoMount)
	}
	dir := filepath.Join(t.TempDir(), "full")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv(diskNoMount) != "" {
			t.Skipf("mount tmpfs: %v (%s is set)", err, diskNoMount)
		}
		t.Fatalf("mount -t tmpfs on %s: %v\n%s(on a machine that cannot mount, set %s=1)", dir, err, out, diskNoMount)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// diskSMTP is an SMTP session that delivers one message after another.
type diskSMTP struct{ c *opsConn }

func diskDialSMTP(t *testing.T, env *testenv.Env) *diskSMTP {
	t.Helper()
	c := opsDial(t, env, "smtp")
	if l := c.send("EHLO filler.example"); !strings.HasPrefix(l, "250") {
		t.Fatalf("EHLO: %q", l)
	}
	for l := c.line(); !strings.HasPrefix(l, "250 "); l = c.line() {
	}
	return &diskSMTP{c}
}

// deliver sends one message and returns the final reply (to RCPT when it
// refuses, else to the end of DATA).
func (d *diskSMTP) deliver(t *testing.T, rcpt, raw string) string {
	t.Helper()
	c := d.c
	if l := c.send("MAIL FROM:<filler@example.net>"); !strings.HasPrefix(l, "250") {
		return l
	}
	if l := c.send("RCPT TO:<" + rcpt + ">"); !strings.HasPrefix(l, "250") {
		c.send("RSET")
		return l
	}
	if l := c.send("DATA"); !strings.HasPrefix(l, "354") {
		return l
	}
	fmt.Fprint(c.c, raw)
	return c.send(".")
}

// diskMessage is a message of about size bytes, kept in a file.
func diskMessage(n, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: filler@example.net\r\nSubject: filler %d\r\n\r\n", n)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "message %d line %d: the quick brown fox jumps over the lazy dog\r\n", n, i)
	}
	return b.String()
}

func diskMetric(t *testing.T, env *testenv.Env, name string) string {
	t.Helper()
	c := opsDial0(t, env, "http")
	defer c.Close()
	fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\n\r\n")
	var b strings.Builder
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	for _, l := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestFullDiskDeletingWorks: the server fills a small file system with
// delivered mail until SMTP answers 452 4.3.1. Then, on the full disk,
// IMAP STORE \Deleted and EXPUNGE, POP3 DELE (in hide and in expunge
// mode), and `postfach user del` all succeed, on the space the released
// disk reserve set free, while new mail is still refused. Once the
// deleted account's bodies are swept, the reserve is made again and
// delivery works again.
func TestFullDiskDeletingWorks(t *testing.T) {
	const fsSize, reserve, msgSize = 32 << 20, 4 << 20, 256 << 10
	mnt := diskMount(t, fsSize)
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
		c.DataDir = filepath.Join(mnt, "data")
		c.Limits.DiskReserve = reserve
		c.Scrub.Rate = 0
		// The disk reserve is the embedded store's: this runs on
		// SQLite whatever backend the environment selects.
		c.Store = config.Store{Backend: config.StoreSQLite}
	}})
	if fi, err := os.Stat(filepath.Join(mnt, "data", "postfach.reserve")); err != nil || fi.Size() != reserve {
		t.Fatalf("disk reserve: %v %v", fi, err)
	}
	env.AddUser("alice@example.org", "secret password")
	env.AddUser("bob@example.org", "secret password")

	s := diskDialSMTP(t, env)
	for i := range 4 {
		if r := s.deliver(t, "alice@example.org", diskMessage(i, 8<<10)); !strings.HasPrefix(r, "250") {
			t.Fatalf("delivery %d to alice: %q", i, r)
		}
	}
	// Fill the disk with mail for bob.
	full := ""
	for i := 0; i < 2*fsSize/msgSize && full == ""; i++ {
		r := s.deliver(t, "bob@example.org", diskMessage(100+i, msgSize))
		switch {
		case strings.HasPrefix(r, "250"):
		case strings.HasPrefix(r, "452 4.3.1"):
			full = r
		default:
			t.Fatalf("delivery %d: %q, want 250 or 452 4.3.1", i, r)
		}
	}
	if full == "" {
		t.Fatalf("the %d MiB file system never filled", fsSize>>20)
	}
	if r := s.deliver(t, "alice@example.org", diskMessage(5, 1<<10)); !strings.HasPrefix(r, "452 4.3.1") {
		t.Fatalf("a small delivery to the full disk: %q, want 452 4.3.1", r)
	}
	if _, err := os.Stat(filepath.Join(mnt, "data", "postfach.reserve")); !os.IsNotExist(err) {
		t.Fatalf("the disk reserve was not released: %v", err)
	}
	if v := diskMetric(t, env, "postfach_store_low_space"); v != "1" {
		t.Fatalf("postfach_store_low_space = %q, want 1", v)
	}

	// IMAP (IMAP4rev1: SELECT claims \Recent, a write too).
	c := opsDial(t, env, "imap")
	for tag, cmd := range map[string]string{"a": `LOGIN alice@example.org "secret password"`} {
		if l := c.imap(tag, cmd); !strings.HasPrefix(l[len(l)-1], tag+" OK") {
			t.Fatalf("%s: %q", cmd, l)
		}
	}
	for _, tc := range []struct{ tag, cmd, want string }{
		{"b", "SELECT INBOX", "* 4 EXISTS"},
		{"c", `STORE 1 +FLAGS (\Deleted)`, `\Deleted`},
		{"d", "EXPUNGE", "* 1 EXPUNGE"},
	} {
		got := c.imap(tc.tag, tc.cmd)
		if !strings.HasPrefix(got[len(got)-1], tc.tag+" OK") || !strings.Contains(strings.Join(got, "\n"), tc.want) {
			t.Fatalf("%s on the full disk: %q, want %q and OK", tc.cmd, got, tc.want)
		}
	}
	c.imap("e", "LOGOUT")

	// POP3 DELE, in the default hide mode and in expunge mode.
	pop := func(want string) {
		t.Helper()
		p := opsDial(t, env, "pop3")
		p.send("USER alice@example.org")
		if l := p.send("PASS secret password"); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("PASS: %q", l)
		}
		if l := p.send("DELE 1"); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("DELE: %q", l)
		}
		if l := p.send("QUIT"); !strings.HasPrefix(l, want) {
			t.Fatalf("QUIT after DELE on the full disk: %q, want %q", l, want)
		}
	}
	pop("+OK Bye (1 message deleted)")
	ctx := context.Background()
	if err := env.Server.Admin().UserSet(ctx, "alice@example.org", "pop3.delete", "expunge"); err != nil {
		t.Fatalf("user set on the full disk: %v", err)
	}
	pop("+OK Bye (1 message deleted)")
	if n := len(env.Messages("alice@example.org", "INBOX")); n != 2 {
		t.Fatalf("alice has %d messages, want 2 (one expunged over IMAP, one by POP3)", n)
	}

	// postfach user del, through the admin socket of the running server.
	cfg := filepath.Join(t.TempDir(), "postfach.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir = %q\ndomains = [\"example.org\"]\n", env.Config.DataDir)), 0o600); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(cctx, testenv.BuildBinary(t), "user", "del", "--yes", "--config", cfg, "bob@example.org").CombinedOutput(); err != nil {
		t.Fatalf("postfach user del on the full disk: %v\n%s", err, out)
	}

	// Bob's bodies are removed by the hourly sweep; run it as if an hour
	// had passed. Then there is room again: the reserve comes back and
	// delivery works.
	st, ok := env.Store().(*sqlite.Store)
	if !ok {
		t.Fatalf("store is %T", env.Store())
	}
	if err := st.Sweep(ctx, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		r := s.deliver(t, "alice@example.org", diskMessage(6, 1<<10))
		if strings.HasPrefix(r, "250") {
			break
		}
		if !strings.HasPrefix(r, "452 4.3.1") || time.Now().After(deadline) {
			t.Fatalf("delivery after space returned: %q", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fi, err := os.Stat(filepath.Join(mnt, "data", "postfach.reserve")); err != nil || fi.Size() != reserve {
		t.Fatalf("the disk reserve was not made again: %v %v", fi, err)
	}
	if v := diskMetric(t, env, "postfach_store_low_space"); v != "0" {
		t.Fatalf("postfach_store_low_space = %q, want 0", v)
	}
	if n := len(env.Messages("alice@example.org", "INBOX")); n != 3 {
		t.Fatalf("alice has %d messages, want 3", n)
	}
	if problems, err := env.Server.Admin().Check(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("check after the full disk: %v %v", problems, err)
	}
}
