package imapserver

import (
	"crypto/tls"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestGoIMAPClient drives the server with go-imap v2's client, an IMAP
// implementation nobody here wrote.
func TestGoIMAPClient(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("hello", "first message"))
	ts.deliver(acct, "INBOX", msg("again", "second message"), `\Seen`)

	exists := make(chan uint32, 16)
	opts := &imapclient.Options{
		TLSConfig: &tls.Config{InsecureSkipVerify: true},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists <- *d.NumMessages
				}
			},
		},
	}
	c, err := imapclient.DialStartTLS(ts.addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.org", testPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, cap := range []imap.Cap{imap.CapIMAP4rev2, imap.CapIdle, imap.CapCondStore, imap.CapMove, imap.CapUIDPlus} {
		if !c.Caps().Has(cap) {
			t.Errorf("capability %s missing", cap)
		}
	}
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(boxes) != 6 {
		t.Errorf("LIST: %d mailboxes", len(boxes))
	}
	if err := c.Create("Projects/2024", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, NumUnseen: true, HighestModSeq: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 2 || *st.NumUnseen != 1 || st.HighestModSeq == 0 {
		t.Errorf("STATUS: %+v", st)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 2 || sel.HighestModSeq == 0 {
		t.Errorf("SELECT: %+v", sel)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{
		UID: true, Flags: true, Envelope: true, RFC822Size: true, InternalDate: true, ModSeq: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection:   []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Envelope.Subject != "hello" || msgs[1].UID != 2 || msgs[0].ModSeq == 0 {
		t.Fatalf("FETCH: %+v", msgs)
	}
	if body := string(msgs[0].BodySection[0].Bytes); !strings.HasSuffix(body, "first message\r\n") {
		t.Errorf("BODY[]: %q", body)
	}
	// CONDSTORE: a STORE conditional on the MODSEQ we saw.
	mod := msgs[0].ModSeq
	res, err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}},
		&imap.StoreOptions{UnchangedSince: mod}).Collect()
	if err != nil || len(res) != 1 || res[0].ModSeq <= mod {
		t.Fatalf("STORE UNCHANGEDSINCE: %+v %v", res, err)
	}
	since := max(msgs[0].ModSeq, msgs[1].ModSeq)
	changed, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{Flags: true, ChangedSince: since}).Collect()
	if err != nil || len(changed) != 1 || changed[0].SeqNum != 1 {
		t.Fatalf("FETCH CHANGEDSINCE: %+v %v", changed, err)
	}
	// SEARCH.
	found, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if uids := found.AllUIDs(); len(uids) != 1 || uids[0] != 1 {
		t.Errorf("SEARCH UNSEEN: %v", uids)
	}
	// APPEND, COPY, MOVE.
	text := "Subject: appended\r\n\r\nbody\r\n"
	app := c.Append("Drafts", int64(len(text)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft}})
	io.WriteString(app, text)
	app.Close()
	ad, err := app.Wait()
	if err != nil || ad.UID == 0 {
		t.Fatalf("APPEND: %+v %v", ad, err)
	}
	cd, err := c.Copy(imap.SeqSetNum(1), "Archive").Wait()
	if err != nil || cd.DestUIDs.String() != "1" {
		t.Fatalf("COPY: %+v %v", cd, err)
	}
	if _, err := c.Move(imap.SeqSetNum(2), "Trash").Wait(); err != nil {
		t.Fatal(err)
	}

	// IDLE: a delivery is pushed.
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	ts.deliver(acct, "INBOX", msg("pushed", "new"))
	select {
	case n := <-exists:
		if n != 2 {
			t.Errorf("EXISTS %d, want 2", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no EXISTS pushed during IDLE")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}
