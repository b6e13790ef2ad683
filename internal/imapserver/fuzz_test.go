package imapserver

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// lockedBuffer collects the server log across goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) takeString() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

// FuzzSession feeds fuzzed command streams to a real session (after LOGIN
// and SELECT) over loopback: the server must answer, end the session when
// the client closes, never panic and never hang.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"a1 NOOP\r\n",
		"a1 FETCH 1:* (FLAGS BODY.PEEK[1.HEADER.FIELDS (SUBJECT)]<0.10> BINARY[1] BODYSTRUCTURE ENVELOPE)\r\n",
		"a1 STORE 1 +FLAGS (\\Seen)\r\na2 EXPUNGE\r\n",
		"a1 APPEND INBOX {5+}\r\nhello\r\na2 SEARCH OR SEEN TEXT hello\r\n",
		"a1 APPEND INBOX CATENATE (URL \"/INBOX/;UID=1/;SECTION=TEXT\" TEXT {3+}\r\nabc)\r\n",
		"a1 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n",
		"a1 ENABLE QRESYNC\r\n",
		"a1 IDLE\r\nDONE\r\n",
		"a1 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" * RETURN (STATUS (MESSAGES SIZE))\r\n",
		"a1 SORT (REVERSE SUBJECT) UTF-8 ALL\r\na2 THREAD REFERENCES UTF-8 ALL\r\n",
		"a1 MOVE 1 Trash\r\na2 COPY 1:* Archive\r\na3 REPLACE 1 INBOX {2+}\r\nhi\r\n",
		"a1 CREATE x/y\r\na2 RENAME x z\r\na3 DELETE z\r\n",
		"a1 APPEND INBOX {10}\r\n",
		"{99999999999999999999}\r\n",
		"a1 SELECT INBOX (QRESYNC (1 1 1:5 (1:2 1:2)))\r\n",
		"a1 NOTIFY SET STATUS (selected (MessageNew (UID BODY.PEEK[]) MessageExpunge FlagChange)) (personal (MessageNew MessageExpunge MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange))\r\na2 APPEND Sent {2+}\r\nhi\r\na3 NOTIFY NONE\r\n",
		"a1 SETMETADATA INBOX (/private/comment {3+}\r\nabc /shared/x NIL)\r\na2 GETMETADATA (MAXSIZE 2 DEPTH infinity) INBOX (/private /shared)\r\n",
		"a1 COMPRESS DEFLATE\r\n\x02\x08\x0c\xf0\x0f\x00\x00\xff\xff",
		"a1 STATUS INBOX (MAILBOXID)\r\na2 FETCH 1 (EMAILID THREADID)\r\na3 SEARCH EMAILID x\r\n",
		"a1 APPEND INBOX CATENATE (URL \"imap://alice%40example.org;AUTH=*@[127.0.0.1]:143/INBOX/;UID=1\" URL \"imap://bob@imap.test/INBOX/;UID=1\")\r\n",
		"a1 APPEND INBOX ~{43+}\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\r\n\r\na2 FETCH 4 (BODY[1] BINARY[1])\r\n",
		"a1 LIST \"&\" \"!#$&'+,-.0123456789:;<=>?@^_`|[}%*\"\r\na2 MOVE 1 INBOX\r\na3 STORE 1 +FLAGS ($New)\r\na4 EXAMINE INBOX\r\n",
		"B1 UID SEARCH RETURN (UPDATE CONTEXT COUNT) UNSEEN\r\nB2 SORT RETURN (UPDATE PARTIAL 1:2) (REVERSE SUBJECT) UTF-8 2:*\r\na1 STORE 1 +FLAGS (\\Seen \\Deleted)\r\na2 EXPUNGE\r\na3 APPEND INBOX {2+}\r\nhi\r\na4 NOOP\r\na5 CANCELUPDATE \"B1\" \"x\"\r\na6 UNSELECT\r\n",
		"a1 GETQUOTAROOT INBOX\r\na2 GETQUOTA \"\"\r\na3 SETQUOTA \"\" (STORAGE 1 MESSAGE 2)\r\na4 STATUS INBOX (DELETED DELETED-STORAGE SIZE)\r\na5 COPY 1:* INBOX\r\n",
		"a1 GENURLAUTH \"imap://alice%40example.org@imap.test/INBOX/;UID=1/;SECTION=1;URLAUTH=authuser\" INTERNAL\r\na2 URLFETCH (\"imap://alice%40example.org@imap.test/INBOX/;UID=1;URLAUTH=authuser:internal:0123456789abcdef0123456789abcdef\" BODYPARTSTRUCTURE BINARY) \"x\"\r\na3 RESETKEY INBOX INTERNAL\r\na4 RESETKEY\r\n",
	} {
		f.Add([]byte(seed))
	}
	logs := &lockedBuffer{}
	ts := newTestServer(f, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		o.MaxMessageSize = 1 << 16
	})
	acct := ts.addUser("alice@example.org")
	// A quota, so that GETQUOTA answers and APPEND and COPY can pass it.
	if err := ts.st.SetQuota(context.Background(), acct, store.Quota{Bytes: 1 << 20, Messages: 50}); err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		ts.deliver(acct, "INBOX", msg("fuzz "+string(rune('a'+i)), "some text"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			io.WriteString(c, "L1 LOGIN alice@example.org \""+testPassword+"\"\r\nL2 SELECT INBOX\r\n")
			c.Write(data)
			c.(*net.TCPConn).CloseWrite()
		}()
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("session did not end: %v", err)
		}
		if l := logs.takeString(); strings.Contains(l, "panic") {
			t.Fatalf("server panicked:\n%s", l)
		}
	})
}
