package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// signinLine is a line-oriented connection to a listener of the test
// server.
type signinLine struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func signinDial(t *testing.T, e *testenv.Env, listener string) *signinLine {
	t.Helper()
	var c net.Conn
	var err error
	if listener == "imaps" || listener == "pop3s" {
		c, err = tls.Dial("tcp", e.Addr(listener), &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = net.Dial("tcp", e.Addr(listener))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	l := &signinLine{t: t, c: c, r: bufio.NewReader(c)}
	l.line() // greeting
	return l
}

// line reads a line; the generous deadline bounds the test, it does not
// time anything.
func (l *signinLine) line() string {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	s, err := l.r.ReadString('\n')
	if err != nil {
		l.t.Fatalf("read: %v (got %q)", err, s)
	}
	return strings.TrimRight(s, "\r\n")
}

// cmd sends a command and reads to the line that starts with prefix.
func (l *signinLine) cmd(cmd, prefix string) string {
	l.t.Helper()
	if _, err := io.WriteString(l.c, cmd+"\r\n"); err != nil {
		l.t.Fatal(err)
	}
	for {
		s := l.line()
		if strings.HasPrefix(s, prefix) {
			return s
		}
		if tag, _, _ := strings.Cut(prefix, " "); tag != "" && tag != "+OK" && tag != "-ERR" && strings.HasPrefix(s, tag+" ") {
			l.t.Fatalf("%s: got %q, want %q", cmd, s, prefix)
		}
		if (prefix == "+OK" || prefix == "-ERR") && (strings.HasPrefix(s, "+OK") || strings.HasPrefix(s, "-ERR")) {
			l.t.Fatalf("%s: got %q, want %q", cmd, s, prefix)
		}
	}
}

// ended reads until the server closes the connection and returns what it
// said last; the deadline is far below the idle timeouts (30 and 10
// minutes), so an end before it is the revocation's doing.
func (l *signinLine) ended() string {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	last := ""
	for {
		s, err := l.r.ReadString('\n')
		if s != "" {
			last = strings.TrimRight(s, "\r\n")
		}
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				l.t.Fatalf("session not ended (last line %q)", last)
			}
			return last
		}
	}
}

func signinServer(t *testing.T, edit func(c *config.Config)) (*testenv.Env, admin.API) {
	t.Helper()
	t.Parallel()
	e := testenv.Start(t, testenv.Options{Config: edit})
	api := e.Server.Admin()
	if err := api.UserAdd(context.Background(), "alice@example.org", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if err := api.UserAdd(context.Background(), "bob@example.org", "bob's password"); err != nil {
		t.Fatal(err)
	}
	return e, api
}

func addDevice(t *testing.T, api admin.API, user, name string) string {
	t.Helper()
	nd, err := api.DeviceAdd(context.Background(), user, name)
	if err != nil {
		t.Fatal(err)
	}
	return nd.Password
}

// TestRevokeEndsSessions: revoking a device ends its open IMAP sessions
// (waiting for a command and parked, in IDLE, over TLS) and its POP3
// session, while the other device's sessions and the account's other
// users go on; its password stops working.
func TestRevokeEndsSessions(t *testing.T) {
	e, api := signinServer(t, nil)
	phone := addDevice(t, api, "alice@example.org", "phone")
	laptop := addDevice(t, api, "alice@example.org", "laptop")

	imapLogin := func(listener, pw string) *signinLine {
		l := signinDial(t, e, listener)
		l.cmd(`a LOGIN alice@example.org "`+pw+`"`, "a OK")
		l.cmd("b SELECT INBOX", "b OK")
		return l
	}
	waiting := imapLogin("imap", phone)
	idling := imapLogin("imaps", phone)
	idling.cmd("c IDLE", "+ ")
	named := signinDial(t, e, "imap")
	named.cmd(`a LOGIN alice@example.org#phone "`+phone+`"`, "a OK")
	pop := signinDial(t, e, "pop3")
	pop.cmd("USER alice@example.org", "+OK")
	pop.cmd("PASS "+phone, "+OK")
	otherIMAP := imapLogin("imap", laptop)
	otherPOP := signinDial(t, e, "pop3")
	otherPOP.cmd("USER alice@example.org", "+OK")
	otherPOP.cmd("PASS "+laptop, "+OK")
	account := imapLogin("imap", "correct horse")
	submit := signinDial(t, e, "submission")
	submit.cmd("EHLO phone.example", "250 ")
	submit.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00"+phone)), "235 ")
	submit.cmd("MAIL FROM:<alice@example.org>", "250 ")
	otherSubmit := signinDial(t, e, "submission")
	otherSubmit.cmd("EHLO laptop.example", "250 ")
	otherSubmit.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00"+laptop)), "235 ")
	// Plain sessions park after a second of waiting; let them.
	time.Sleep(1500 * time.Millisecond)

	if err := api.DeviceRevoke(context.Background(), "alice@example.org", "phone"); err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]*signinLine{"waiting": waiting, "idling": idling, "named": named} {
		if last := l.ended(); last != "* BYE Access of this device revoked, closing connection" {
			t.Errorf("imap %s: last line %q", name, last)
		}
	}
	if last := pop.ended(); last != "-ERR [AUTH] Access of this device revoked, closing connection" {
		t.Errorf("pop3: last line %q", last)
	}
	if last := submit.ended(); !strings.HasPrefix(last, "421 4.7.0 ") || !strings.HasSuffix(last, "Access of this device revoked, closing connection") {
		t.Errorf("submission: last line %q", last)
	}
	// The others go on.
	otherSubmit.cmd("NOOP", "250 ")
	otherIMAP.cmd("d NOOP", "d OK")
	account.cmd("d NOOP", "d OK")
	otherPOP.cmd("STAT", "+OK")
	otherPOP.cmd("QUIT", "+OK")
	// The password no longer works; the laptop's does.
	l := signinDial(t, e, "imap")
	l.cmd(`a LOGIN alice@example.org "`+phone+`"`, "a NO [AUTHENTICATIONFAILED]")
	l.cmd(`b LOGIN alice@example.org "`+laptop+`"`, "b OK")
	if logs := e.Logs(); !strings.Contains(logs, "session ended: device revoked") || !strings.Contains(logs, "device=phone") {
		t.Errorf("log lacks the revocation or device=phone:\n%s", logs)
	}
}

// TestDeviceListRecordsSignIns: a device password signs in with the plain
// address, and device list shows when, from where, by which protocol and
// with which client (IMAP ID).
func TestDeviceListRecordsSignIns(t *testing.T) {
	e, api := signinServer(t, nil)
	phone := addDevice(t, api, "alice@example.org", "phone")
	l := signinDial(t, e, "imap")
	l.cmd(`a ID ("name" "K-9 Mail" "version" "6.8")`, "a OK")
	l.cmd(`b LOGIN alice@example.org "`+auth4(phone)+`"`, "b OK")
	devs, err := api.DeviceList(context.Background(), "alice@example.org")
	if err != nil || len(devs) != 1 {
		t.Fatalf("devices %+v, %v", devs, err)
	}
	d := devs[0]
	if d.Name != "phone" || !d.Password || d.LastProto != "imap" || d.LastRemote != "127.0.0.1" || d.LastClient != "K-9 Mail 6.8" || d.LastLogin.IsZero() {
		t.Fatalf("device %+v", d)
	}
}

// auth4 writes a device password the way a person might type it: in
// groups, with a capital first letter.
func auth4(pw string) string {
	var b strings.Builder
	for i := 0; i < len(pw); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(pw[i:min(i+4, len(pw))])
	}
	s := b.String()
	return strings.ToUpper(s[:1]) + s[1:]
}

// TestSignInWithPythonClients: Python's imaplib (LOGIN and AUTHENTICATE
// PLAIN) and poplib sign in with the account password and a device
// password; with auth.require_device_passwords the account password is
// refused on both, for the server default and for one account.
func TestSignInWithPythonClients(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed: ", err)
	}
	for _, tc := range []struct {
		name    string
		server  bool
		setting string
		mode    string
	}{
		{"allowed", false, "", "allowed"},
		{"required by the server", true, "", "required"},
		{"required for the account", false, "true", "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, api := signinServer(t, func(c *config.Config) { c.Auth.RequireDevicePasswords = tc.server })
			if tc.setting != "" {
				if err := api.UserSet(context.Background(), "alice@example.org", "auth.require_device_passwords", tc.setting); err != nil {
					t.Fatal(err)
				}
			}
			pw := addDevice(t, api, "alice@example.org", "phone")
			_, imapPort, _ := net.SplitHostPort(e.Addr("imap"))
			_, popPort, _ := net.SplitHostPort(e.Addr("pop3"))
			out, err := exec.Command(py, "testdata/signin_clients.py", "127.0.0.1", imapPort, popPort,
				"alice@example.org", "correct horse", auth4(pw), tc.mode).CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			// Submission signs in through the same rules.
			plain := func(pw string) string {
				return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00"+pw))
			}
			sub := signinDial(t, e, "submission")
			sub.cmd("EHLO client.example", "250 ")
			if tc.mode == "required" {
				sub.cmd(plain("correct horse"), "535 ")
			} else {
				sub.cmd(plain("correct horse"), "235 ")
				sub = signinDial(t, e, "submission")
				sub.cmd("EHLO client.example", "250 ")
			}
			sub.cmd(plain(pw), "235 ")
			// The other account is not affected by alice's setting.
			if tc.setting != "" {
				l := signinDial(t, e, "imap")
				l.cmd(`a LOGIN bob@example.org "bob's password"`, "a OK")
			}
		})
	}
}

// TestSCRAMOverIMAP: SCRAM-SHA-256 on the plain listener (loopback) and
// SCRAM-SHA-256-PLUS with tls-exporter and tls-server-end-point on the
// implicit-TLS one, with an independent client; the device is known from
// its password.
func TestSCRAMOverIMAP(t *testing.T) {
	e, api := signinServer(t, nil)
	phone := addDevice(t, api, "alice@example.org", "phone")
	run := func(l *signinLine, mech string, conv *scram.ClientConversation) string {
		t.Helper()
		first, err := conv.Step("")
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(l.c, "s AUTHENTICATE "+mech+" "+base64.StdEncoding.EncodeToString([]byte(first))+"\r\n")
		for {
			s := l.line()
			if !strings.HasPrefix(s, "+ ") {
				return s
			}
			ch, err := base64.StdEncoding.DecodeString(s[2:])
			if err != nil {
				t.Fatal(err)
			}
			resp, err := conv.Step(string(ch))
			if err != nil {
				t.Fatalf("client step: %v", err)
			}
			io.WriteString(l.c, base64.StdEncoding.EncodeToString([]byte(resp))+"\r\n")
		}
	}
	newClient := func(user, pw string) *scram.Client {
		c, err := scram.SHA256.NewClient(user, pw, "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The account password's keys were made by user add.
	l := signinDial(t, e, "imap")
	if s := run(l, "SCRAM-SHA-256", newClient("alice@example.org", "correct horse").NewConversation()); !strings.HasPrefix(s, "s OK") {
		t.Fatalf("account password: %q", s)
	}
	l = signinDial(t, e, "imap")
	if s := run(l, "SCRAM-SHA-256", newClient("alice@example.org", "wrong").NewConversation()); !strings.HasPrefix(s, "s NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("wrong password: %q", s)
	}
	for _, typ := range []string{"tls-exporter", "tls-server-end-point"} {
		l := signinDial(t, e, "imaps")
		cs := l.c.(*tls.Conn).ConnectionState()
		var cb scram.ChannelBinding
		var err error
		if typ == "tls-exporter" {
			cb, err = scram.NewTLSExporterBinding(&cs)
		} else {
			cb, err = scram.NewTLSServerEndpointBinding(&cs)
		}
		if err != nil {
			t.Fatal(err)
		}
		if s := run(l, "SCRAM-SHA-256-PLUS", newClient("alice@example.org", phone).NewConversationWithChannelBinding(cb)); !strings.HasPrefix(s, "s OK") {
			t.Fatalf("%s: %q", typ, s)
		}
	}
	if logs := e.Logs(); !strings.Contains(logs, "device=phone") {
		t.Errorf("log lacks device=phone")
	}
}
