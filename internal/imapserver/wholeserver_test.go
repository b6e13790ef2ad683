package imapserver_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/testenv"
)

// TestWholeServer checks the IMAP listeners of `postfach serve` (through
// testenv): STARTTLS on listen.imap, implicit TLS on listen.imaps, and a
// message delivered by LMTP seen over IMAP.
func TestWholeServer(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	e.AddUser("alice@"+testenv.Domain, "secret password")

	lmtp := e.Dial("lmtp")
	lr := bufio.NewReader(lmtp)
	for _, cmd := range []string{"", "LHLO test", "MAIL FROM:<bob@example.net>", "RCPT TO:<alice@" + testenv.Domain + ">", "DATA"} {
		if cmd != "" {
			io.WriteString(lmtp, cmd+"\r\n")
		}
		for {
			l, err := lr.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if len(l) < 4 || l[3] != '-' {
				break
			}
		}
	}
	io.WriteString(lmtp, "Subject: via lmtp\r\n\r\nhello\r\n.\r\n")
	if l, _ := lr.ReadString('\n'); !strings.HasPrefix(l, "250") {
		t.Fatalf("LMTP DATA: %q", l)
	}

	for _, name := range []string{"imap", "imaps"} {
		var conn io.ReadWriter
		if name == "imaps" {
			c, err := tls.Dial("tcp", e.Addr("imaps"), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conn = c
		} else {
			conn = e.Dial("imap")
		}
		r := bufio.NewReader(conn)
		read := func() string {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return l
		}
		if g := read(); !strings.HasPrefix(g, "* OK [CAPABILITY IMAP4rev1 IMAP4rev2") {
			t.Fatalf("%s greeting %q", name, g)
		}
		io.WriteString(conn, "a LOGIN alice@"+testenv.Domain+" \"secret password\"\r\nb SELECT INBOX\r\nc FETCH 1 BODY[HEADER.FIELDS (SUBJECT)]\r\nd LOGOUT\r\n")
		var all strings.Builder
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			l := read()
			all.WriteString(l)
			if strings.HasPrefix(l, "d OK") {
				break
			}
		}
		out := all.String()
		for _, want := range []string{"a OK", "* 1 EXISTS", "Subject: via lmtp", "b OK [READ-WRITE]", "c OK", "* BYE"} {
			if !strings.Contains(out, want) {
				t.Fatalf("%s: %q missing in\n%s", name, want, out)
			}
		}
	}
}
