package pop3server

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// keepStore ignores deletions, so every fuzz input sees the same maildrop.
type keepStore struct{ Store }

func (keepStore) Expunge(ctx context.Context, acct store.AccountID, id store.MailboxID, uids mail.UIDSet, onlyDeleted bool) (*store.ExpungeResult, error) {
	return &store.ExpungeResult{}, nil
}

func (keepStore) Move(ctx context.Context, acct store.AccountID, src store.MailboxID, uids mail.UIDSet, dst store.MailboxID) (*store.CopyResult, error) {
	return &store.CopyResult{}, nil
}

func (keepStore) HidePOP3(ctx context.Context, acct store.AccountID, device string, mailbox store.MailboxID, uids mail.UIDSet) error {
	return nil
}

// FuzzCommand feeds arbitrary client input to the command parser and to a
// whole session (over an in-memory connection, logged in or not): nothing
// may panic or hang, and parsed commands keep their invariants.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{
		"CAPA\r\n",
		"USER " + testUser + "\r\nPASS " + testPassword + "\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 1\r\nDELE 1\r\nRSET\r\nQUIT\r\n",
		"AUTH PLAIN\r\n" + plainResp(testUser, testPassword) + "\r\nLIST 2\r\nUIDL 3\r\nNOOP\r\nQUIT\r\n",
		"AUTH LOGIN\r\n*\r\nAUTH\r\n",
		"list 99999999999\r\nTOP 1 -1\r\n\x00\r\n\r\n",
		"STLS\r\nUSER x\r\n",
	} {
		f.Add([]byte(s))
	}
	e := newEnv(f, envOptions{
		wrap: func(s Store) Store { return keepStore{s} },
		opts: func(o *Options) {
			o.AllowInsecureAuth = true // net.Pipe has no loopback address
			o.IdleTimeout = 5 * time.Second
			o.MaxBadCommands = 1000
		},
	})
	e.deliver(msgA)
	e.deliver(msgC)
	e.deliver("Subject: no body")
	f.Fuzz(func(t *testing.T, data []byte) {
		line, _, _ := bytes.Cut(data, []byte("\n"))
		if cmd, err := parseCommand(line); err == nil {
			if cmd.name != strings.ToUpper(cmd.name) || len(cmd.name) == 0 || len(cmd.name) > maxKeyword || len(cmd.args) > maxArgs {
				t.Fatalf("parseCommand(%q) = %+v", line, cmd)
			}
			for _, a := range cmd.args {
				if a == "" || strings.ContainsAny(a, " \r\n") {
					t.Fatalf("parseCommand(%q): bad argument %q", line, a)
				}
			}
		}
		srvConn, cliConn := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer srvConn.Close()
			newSession(e.srv, srvConn, nil, false).run()
		}()
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, cliConn)
		}()
		cliConn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		cliConn.Write(data)
		cliConn.Close()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("session did not end for input %q", data)
		}
		<-drained
	})
}
