package pop3server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
)

// Outside clients that no one here wrote: Python's poplib, curl, and in
// the interop part fetchmail and getmail6 (Debian packages). A missing
// program skips its test unless POSTFACH_REQUIRE_TOOLS=1.

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func TestPythonPoplib(t *testing.T) {
	t.Parallel()
	py := requireTool(t, "python3")
	e := newEnv(t, envOptions{})
	e.deliver(msgA)
	e.deliver(msgB)
	e.deliver(msgC)
	host, port, _ := net.SplitHostPort(e.addr)
	_, tlsPort, _ := net.SplitHostPort(e.tlsAddr)
	out := run(t, py, "testdata/poplib_client.py", host, port, tlsPort, testUser, testPassword)
	if !strings.Contains(out, "poplib ok") {
		t.Fatalf("poplib: %s", out)
	}
	msgs := e.messages(e.inbox)
	if len(msgs) != 2 {
		t.Fatalf("INBOX has %d messages, want 2", len(msgs))
	}
	for _, m := range msgs {
		if !m.Flags.Has(mail.FlagSeen) {
			t.Errorf("message %d retrieved by poplib is not \\Seen", m.UID)
		}
	}
}

// TestCurl: curl's pop3:// lists and retrieves.
func TestCurl(t *testing.T) {
	t.Parallel()
	curl := requireTool(t, "curl")
	e := newEnv(t, envOptions{})
	e.deliver(msgA)
	e.deliver(msgC)
	base := "pop3://" + e.addr + "/"
	list := run(t, curl, "-sS", "--user", testUser+":"+testPassword, base)
	want := "1 " + strconv.Itoa(len(crlf(msgA))) + "\r\n2 " + strconv.Itoa(len(crlf(msgC))) + "\r\n"
	if list != want {
		t.Errorf("curl list = %q, want %q", list, want)
	}
	got := run(t, curl, "-sS", "--user", testUser+":"+testPassword, base+"2")
	if got != crlf(msgC) {
		t.Errorf("curl retrieve = %q", got)
	}
	// Over implicit TLS, with SASL.
	got = run(t, curl, "-sS", "-k", "--login-options", "AUTH=PLAIN", "--user", testUser+":"+testPassword, "pop3s://"+e.tlsAddr+"/1")
	if got != crlf(msgA) {
		t.Errorf("curl pop3s retrieve = %q", got)
	}
	// curl's custom request: UIDL.
	uidl := run(t, curl, "-sS", "--user", testUser+":"+testPassword, "-X", "UIDL", base)
	if n := strings.Count(uidl, "\r\n"); n != 2 {
		t.Errorf("curl UIDL = %q", uidl)
	}
}

// interopMessages delivers three messages with distinct subjects.
func interopMessages(e *env) {
	e.deliver(msgA)
	e.deliver(msgB)
	e.deliver(msgC)
}

func countSubjects(t *testing.T, data string) int {
	t.Helper()
	n := 0
	for _, s := range []string{"Subject: first", "Subject: second", "Subject: third"} {
		n += strings.Count(data, s)
	}
	return n
}

// TestFetchmail: fetchmail retrieves into a local mbox-style file, first
// keeping the mail on the server (a second run, remembering UIDLs, gets
// nothing new), then deleting it.
func TestFetchmail(t *testing.T) {
	t.Parallel()
	fm := requireTool(t, "fetchmail")
	e := newEnv(t, envOptions{})
	interopMessages(e)
	dir := t.TempDir()
	out := filepath.Join(dir, "mbox")
	host, port, _ := net.SplitHostPort(e.addr)
	fetch := func(keep string) (string, int) {
		t.Helper()
		rc := filepath.Join(dir, "fetchmailrc")
		conf := "set no bouncemail\n" +
			"poll " + host + " with proto POP3 port " + port + " uidl\n" +
			"  user \"" + testUser + "\" there with password \"" + testPassword + "\" is \"local\" here\n" +
			"  sslproto '' " + keep + " mda \"/bin/sh -c 'cat >> " + out + "; echo >> " + out + "'\"\n"
		if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, fm, "-f", rc, "--nodetach", "--nosyslog", "-i", filepath.Join(dir, "ids"),
			"--pidfile", filepath.Join(dir, "pid"), "-v")
		cmd.Env = append(os.Environ(), "HOME="+dir)
		b, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("fetchmail: %v\n%s", err, b)
		}
		return string(b), code
	}
	log, code := fetch("keep")
	if code != 0 {
		t.Fatalf("fetchmail keep: exit %d\n%s", code, log)
	}
	data, _ := os.ReadFile(out)
	if n := countSubjects(t, string(data)); n != 3 {
		t.Fatalf("fetchmail keep retrieved %d messages\n%s", n, log)
	}
	if n := len(e.messages(e.inbox)); n != 3 {
		t.Fatalf("keep: %d messages left on the server", n)
	}
	// Stable UIDLs: the second run finds nothing new (exit 1: no mail).
	log, code = fetch("keep")
	data, _ = os.ReadFile(out)
	if n := countSubjects(t, string(data)); code != 1 || n != 3 {
		t.Fatalf("second keep run: exit %d, %d messages in total\n%s", code, n, log)
	}
	e.deliver("Subject: fourth\n\nnew\n")
	log, code = fetch("fetchall nokeep")
	data, _ = os.ReadFile(out)
	if code != 0 || countSubjects(t, string(data)) != 6 || !strings.Contains(string(data), "Subject: fourth") {
		t.Fatalf("nokeep run: exit %d\n%s\n%s", code, log, data)
	}
	if n := len(e.messages(e.inbox)); n != 0 {
		t.Fatalf("nokeep: %d messages left on the server", n)
	}
}

// TestGetmail: getmail6 retrieves into a Maildir, keeping then deleting.
func TestGetmail(t *testing.T) {
	t.Parallel()
	gm := requireTool(t, "getmail")
	e := newEnv(t, envOptions{})
	interopMessages(e)
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	destUser := ""
	if os.Geteuid() == 0 {
		// getmail refuses to deliver as root; it switches to the user
		// named in the destination, who must reach the Maildir.
		destUser = "user = nobody\n"
		for _, d := range []string{filepath.Dir(dir), dir} {
			os.Chmod(d, 0o755)
		}
		filepath.WalkDir(md, func(p string, _ os.DirEntry, _ error) error { return os.Chmod(p, 0o777) })
	}
	host, port, _ := net.SplitHostPort(e.addr)
	fetch := func(del bool) string {
		t.Helper()
		rc := filepath.Join(dir, "getmailrc")
		conf := "[retriever]\ntype = SimplePOP3Retriever\nserver = " + host + "\nport = " + port +
			"\nusername = " + testUser + "\npassword = " + testPassword +
			"\n\n[destination]\ntype = Maildir\npath = " + md + "/\n" + destUser + "\n[options]\nread_all = false\nverbose = 1\n"
		if del {
			conf += "delete = true\n"
		} else {
			conf += "delete = false\n"
		}
		if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return run(t, gm, "--getmaildir", dir, "--rcfile", rc)
	}
	count := func() (n int, all string) {
		for _, sub := range []string{"new", "cur"} {
			ents, _ := os.ReadDir(filepath.Join(md, sub))
			for _, de := range ents {
				b, _ := os.ReadFile(filepath.Join(md, sub, de.Name()))
				all += string(b)
				n++
			}
		}
		return n, all
	}
	log := fetch(false)
	if n, all := count(); n != 3 || countSubjects(t, all) != 3 {
		t.Fatalf("getmail keep: %d files\n%s", n, log)
	}
	if n := len(e.messages(e.inbox)); n != 3 {
		t.Fatalf("keep: %d messages left on the server", n)
	}
	log = fetch(false) // stable UIDLs: nothing new
	if n, _ := count(); n != 3 {
		t.Fatalf("second getmail run: %d files\n%s", n, log)
	}
	e.deliver("Subject: fourth\n\nnew\n")
	log = fetch(true)
	if n, all := count(); n != 4 || !strings.Contains(all, "Subject: fourth") {
		t.Fatalf("getmail delete: %d files\n%s", n, log)
	}
	// getmail deletes what it retrieved in this run and, with delete on,
	// what it had kept before.
	if msgs := e.messages(e.inbox); len(msgs) != 0 {
		t.Logf("getmail log:\n%s", log)
		t.Fatalf("delete: %d messages left on the server", len(msgs))
	}
}

// TestPoplibLargeBody: Python's poplib retrieves a large body kept in a
// file, with lines that begin with ".", over a plain connection (sent with
// sendfile(2)) and over POP3S (scanned in the process), and gets the
// stored message both times.
func TestPoplibLargeBody(t *testing.T) {
	py := requireTool(t, "python3")
	e := newEnv(t, envOptions{})
	var b strings.Builder
	b.WriteString(".a first line with a dot\r\nSubject: large\r\n\r\n")
	for i := 0; b.Len() < 300<<10; i++ {
		if i%1000 == 999 {
			b.WriteString("..\r\n.\r\n")
		}
		fmt.Fprintf(&b, "line %d of a large message kept in a file\r\n", i)
	}
	raw := b.String()
	e.appendRaw(raw)
	want := fmt.Sprintf("%x", sha256.Sum256([]byte(raw)))
	host, port, _ := net.SplitHostPort(e.addr)
	_, tlsPort, _ := net.SplitHostPort(e.tlsAddr)
	const script = `
import hashlib, poplib, ssl, sys
host, port, tls_port, user, password = sys.argv[1:6]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
for c in (poplib.POP3(host, int(port)), poplib.POP3_SSL(host, int(tls_port), context=ctx)):
    c.user(user)
    c.pass_(password)
    _, lines, _ = c.retr(1)
    print(hashlib.sha256(b"".join(l + b"\r\n" for l in lines)).hexdigest())
    c.rset()
    c.quit()
`
	before := e.srv.sentByFile.Load()
	out := strings.Fields(run(t, py, "-c", script, host, port, tlsPort, testUser, testPassword))
	if len(out) != 2 || out[0] != want || out[1] != want {
		t.Fatalf("poplib got %q, want the SHA-256 %s twice", out, want)
	}
	if n := e.srv.sentByFile.Load() - before; n != 1 {
		t.Errorf("%d bodies sent with sendfile, want 1 (the plain connection)", n)
	}
}
