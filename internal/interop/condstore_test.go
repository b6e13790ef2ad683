package interop

import (
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestGoIMAPCondStore exercises CONDSTORE (RFC 7162) from outside with
// go-imap v2's client against the whole server: HIGHESTMODSEQ in SELECT
// and STATUS, FETCH CHANGEDSINCE, SEARCH MODSEQ, and a STORE
// UNCHANGEDSINCE that loses to another device's change.
func TestGoIMAPCondStore(t *testing.T) {
	srv := startServer(t)
	dial := func() *imapclient.Client {
		c, err := imapclient.DialInsecure("127.0.0.1:"+srv.port, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Login(user, password).Wait(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	phone, laptop := dial(), dial()
	sel, err := phone.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	known := sel.HighestModSeq
	if known == 0 || sel.NumMessages != 5 {
		t.Fatalf("SELECT (CONDSTORE): %+v", sel)
	}
	all := imap.SeqSet{}
	all.AddRange(1, 0)
	if msgs, err := phone.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, ChangedSince: known}).Collect(); err != nil || len(msgs) != 0 {
		t.Fatalf("FETCH CHANGEDSINCE the current HIGHESTMODSEQ: %d messages, %v", len(msgs), err)
	}

	// The laptop flags m3 (sequence number 3).
	if _, err := laptop.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := laptop.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatal(err)
	}

	// The phone asks what changed: exactly that.
	msgs, err := phone.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, ModSeq: true, ChangedSince: known}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].SeqNum != 3 || msgs[0].ModSeq <= known || !onlyFlagged(msgs[0].Flags) {
		t.Fatalf("FETCH CHANGEDSINCE after the laptop's change: %+v (known %d)", *msgs[0], known)
	}
	found, err := phone.Search(&imap.SearchCriteria{ModSeq: &imap.SearchCriteriaModSeq{ModSeq: known + 1}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := found.AllSeqNums(); len(got) != 1 || got[0] != 3 || found.ModSeq != msgs[0].ModSeq {
		t.Fatalf("SEARCH MODSEQ: %v (MODSEQ %d)", got, found.ModSeq)
	}

	// A conditional store based on the old state changes nothing.
	if _, err := phone.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: []imap.Flag{imap.FlagSeen}},
		&imap.StoreOptions{UnchangedSince: known}).Collect(); err != nil {
		t.Fatal(err)
	}
	after, err := phone.Fetch(imap.SeqSetNum(3), &imap.FetchOptions{Flags: true, ModSeq: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 1 || !onlyFlagged(after[0].Flags) || after[0].ModSeq != msgs[0].ModSeq {
		t.Fatalf("STORE UNCHANGEDSINCE an older MODSEQ changed the message: %+v", after)
	}
	st, err := laptop.Status("INBOX", &imap.StatusOptions{HighestModSeq: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if st.HighestModSeq != msgs[0].ModSeq {
		t.Fatalf("STATUS HIGHESTMODSEQ %d, want %d", st.HighestModSeq, msgs[0].ModSeq)
	}
}

// onlyFlagged reports whether the flags are \Flagged (and \Recent, which
// an IMAP4rev1 session sees on messages that arrived before it).
func onlyFlagged(fl []imap.Flag) bool {
	n := 0
	for _, f := range fl {
		switch f {
		case imap.FlagFlagged:
			n++
		case "\\Recent":
		default:
			return false
		}
	}
	return n == 1
}
