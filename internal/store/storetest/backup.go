package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// Backups: store.Snapshotter and store.Restorer.

func snapshotter(t *testing.T, s store.Store) store.Snapshotter {
	t.Helper()
	sn, isSn := s.(store.Snapshotter)
	if !isSn {
		t.Fatalf("%T does not implement store.Snapshotter", s)
	}
	return sn
}

func restorer(t *testing.T, s store.Store) store.Restorer {
	t.Helper()
	r, isR := s.(store.Restorer)
	if !isR {
		t.Fatalf("%T does not implement store.Restorer", s)
	}
	return r
}

func snapMessages(t *testing.T, sn store.Snapshot, acct store.AccountID, mb store.MailboxID) []*store.SnapshotMessage {
	t.Helper()
	var out []*store.SnapshotMessage
	for m, err := range sn.Messages(ctx, acct, mb) {
		ok(t, err)
		out = append(out, m)
	}
	return out
}

func snapBody(t *testing.T, sn store.Snapshot, id string) []byte {
	t.Helper()
	b := must[store.Body](t)(sn.OpenBody(ctx, id))
	defer b.Close()
	data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	ok(t, err)
	return data
}

func hexSHA(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// testSnapshot checks that a snapshot holds every write acknowledged
// before it was taken, none after, with every kind of record, and bodies
// that match their hashes, also a large one and one whose message is
// expunged or whose account is deleted after the snapshot.
func testSnapshot(t *testing.T, h Harness) {
	s := newStore(t, h)
	sner := snapshotter(t, s)
	a, inbox := account(t, s, "snap@example.org")
	other, _ := account(t, s, "other@example.org")
	ok(t, s.SetAccountSetting(ctx, a.ID, "pop3.delete", "hide"))
	ok(t, s.SetQuota(ctx, a.ID, store.Quota{Bytes: 1 << 30, Messages: store.QuotaDefault}))
	cr := s.(store.Credentials)
	_ = must[bool](t)(cr.SetAccountSCRAM(ctx, a.ID, "hash", "scram-keys"))
	_ = must[*store.Device](t)(cr.AddDevice(ctx, a.ID, "phone", "devhash", "devscram"))
	res := appendMsgs(t, s, a.ID, inbox.ID, 3, `\Seen`, "$Label1")
	big := strings.Repeat("x", 300<<10)
	bigRes := must[*store.AppendResult](t)(s.Append(ctx, a.ID, inbox.ID, []store.NewMessage{{
		Body: stage(t, s, Msg("big", big)), InternalDate: time.Date(2020, 1, 2, 3, 4, 5, 0, time.FixedZone("", 3600)), POPUID: "uidl-1"}}))
	_ = must[*store.ExpungeResult](t)(s.Expunge(ctx, a.ID, inbox.ID, mail.NewUIDSet(res.UIDs[0]), false))
	ok(t, s.HidePOP3(ctx, a.ID, "phone", inbox.ID, mail.NewUIDSet(res.UIDs[1])))
	ok(t, s.SetMetadata(ctx, a.ID, inbox.ID, map[string][]byte{"/private/comment": []byte("hi")}, 0, 0))
	ok(t, s.SetMetadata(ctx, a.ID, 0, map[string][]byte{"/private/vendor/x": []byte("server")}, 0, 0))
	key := must[[]byte](t)(s.(store.AccessKeys).EnsureAccessKey(ctx, a.ID, inbox.ID))
	_ = must[*store.Alias](t)(s.(store.Aliases).AddAlias(ctx, "family@example.org", []store.AccountID{a.ID, other.ID}))
	gone := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Gone", nil))
	appendMsgs(t, s, a.ID, gone.ID, 1)
	ok(t, s.DeleteMailbox(ctx, a.ID, gone.ID))
	before := list(t, s, a.ID, inbox.ID, all, store.ListOptions{})
	ibx := must[*store.Mailbox](t)(s.MailboxByID(ctx, a.ID, inbox.ID))

	sn := must[store.Snapshot](t)(sner.Snapshot(ctx))
	defer sn.Close()

	// Writes after the snapshot are not in it.
	late := appendMsgs(t, s, a.ID, inbox.ID, 1)
	_ = must[*store.StoreFlagsResult](t)(s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{UIDs: all, Op: store.FlagsAdd, Flags: mail.Flags{`\Flagged`}}))
	_ = must[*store.ExpungeResult](t)(s.Expunge(ctx, a.ID, inbox.ID, mail.NewUIDSet(bigRes.UIDs[0]), false))
	ok(t, s.DeleteAccount(ctx, other.ID))

	accts := must[[]store.AccountRecord](t)(sn.Accounts(ctx))
	if len(accts) != 2 || accts[1].Name != "snap@example.org" || accts[0].Name != "other@example.org" {
		t.Fatalf("snapshot accounts = %+v", accts)
	}
	ar := accts[1]
	if ar.PasswordHash != "hash" || ar.SCRAM != "scram-keys" || ar.Settings["pop3.delete"] != "hide" ||
		ar.Quota != (store.Quota{Bytes: 1 << 30, Messages: store.QuotaDefault}) || ar.ID != a.ID {
		t.Fatalf("snapshot account = %+v", ar)
	}
	mbs := must[[]store.Mailbox](t)(sn.Mailboxes(ctx, a.ID))
	i := slices.IndexFunc(mbs, func(m store.Mailbox) bool { return m.Name == "INBOX" })
	if len(mbs) != len(store.DefaultMailboxes) || i < 0 || mbs[i].UIDNext != ibx.UIDNext || mbs[i].HighestModSeq != ibx.HighestModSeq ||
		mbs[i].UIDValidity != ibx.UIDValidity || !mbs[i].Subscribed {
		t.Fatalf("snapshot mailboxes = %+v, inbox was %+v", mbs, ibx)
	}
	got := snapMessages(t, sn, a.ID, inbox.ID)
	if len(got) != len(before) {
		t.Fatalf("snapshot has %d messages, want %d", len(got), len(before))
	}
	for i, m := range got {
		w := before[i]
		if m.UID != w.UID || m.ModSeq != w.ModSeq || !m.Flags.Equal(w.Flags) || !m.InternalDate.Equal(w.InternalDate) ||
			m.EmailID != w.EmailID || m.POPUID != w.POPUID || m.Size != w.Size || !m.SaveDate.Equal(w.SaveDate) {
			t.Fatalf("snapshot message %+v, want %+v", m.Message, *w)
		}
		if _, off := m.InternalDate.Zone(); m.UID == bigRes.UIDs[0] && off != 3600 {
			t.Fatalf("internal date zone lost: %v", m.InternalDate)
		}
		body := snapBody(t, sn, m.BlobID)
		if int64(len(body)) != m.Size || hexSHA(body) != m.Hash {
			t.Fatalf("snapshot body of UID %d: %d bytes, hash %s; want %d, %s", m.UID, len(body), hexSHA(body), m.Size, m.Hash)
		}
	}
	if slices.ContainsFunc(got, func(m *store.SnapshotMessage) bool { return m.UID == late.UIDs[0] }) {
		t.Fatal("snapshot holds a message appended after it")
	}
	var exp []*store.ExpungedMessage
	for m, err := range sn.Expunged(ctx, a.ID) {
		ok(t, err)
		exp = append(exp, m)
	}
	if len(exp) != 2 || exp[0].Mailbox != inbox.ID || exp[0].UID != res.UIDs[0] || exp[0].MailboxName != "INBOX" ||
		exp[1].MailboxName != "Gone" || exp[0].Expunged.IsZero() || !exp[0].Flags.Has("$Label1") {
		t.Fatalf("snapshot expunged = %+v", exp)
	}
	for _, e := range exp {
		if hexSHA(snapBody(t, sn, e.BlobID)) != e.Hash {
			t.Fatalf("expunged body of UID %d does not match its hash", e.UID)
		}
	}
	devs := must[[]store.Device](t)(sn.Devices(ctx, a.ID))
	if len(devs) != 1 || devs[0].Name != "phone" || devs[0].PasswordHash != "devhash" || devs[0].SCRAM != "devscram" {
		t.Fatalf("snapshot devices = %+v", devs)
	}
	views := must[[]store.POP3View](t)(sn.POP3Views(ctx, a.ID))
	if len(views) != 1 || views[0].Device != "phone" || views[0].Mailbox != inbox.ID || !slices.Equal(views[0].Hidden.UIDs(), []mail.UID{res.UIDs[1]}) {
		t.Fatalf("snapshot pop3 views = %+v", views)
	}
	md := must[[]store.MetadataEntry](t)(sn.Metadata(ctx, a.ID))
	if len(md) != 2 || md[0].Mailbox != 0 || string(md[0].Value) != "server" || md[1].Mailbox != inbox.ID || string(md[1].Value) != "hi" {
		t.Fatalf("snapshot metadata = %+v", md)
	}
	keys := must[[]store.AccessKey](t)(sn.AccessKeys(ctx, a.ID))
	if len(keys) != 1 || keys[0].Mailbox != inbox.ID || !bytes.Equal(keys[0].Key, key) {
		t.Fatalf("snapshot access keys = %+v", keys)
	}
	als := must[[]store.Alias](t)(sn.Aliases(ctx))
	if len(als) != 1 || len(als[0].Targets) != 2 {
		t.Fatalf("snapshot aliases = %+v", als)
	}
	subs := must[[]string](t)(sn.Subscriptions(ctx, a.ID))
	if !slices.Contains(subs, "INBOX") {
		t.Fatalf("snapshot subscriptions = %v", subs)
	}
	_, err := sn.OpenBody(ctx, "no such body")
	wantErr(t, err, store.ErrNotFound)
	ok(t, sn.Close())
}

// testSnapshotConcurrent takes a snapshot while appends run: every append
// acknowledged before Snapshot was called is in it.
func testSnapshotConcurrent(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "busy@example.org")
	var mu sync.Mutex
	var acked []mail.UID
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				b, err := s.Stage(ctx, strings.NewReader(Msg(fmt.Sprintf("w%d-%d", w, i), "body")), 0)
				if err != nil {
					t.Error(err)
					return
				}
				r, err := s.Append(ctx, a.ID, inbox.ID, []store.NewMessage{{Body: b}})
				b.Discard()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, r.UIDs...)
				mu.Unlock()
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 20 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	want := slices.Clone(acked)
	mu.Unlock()
	sn, err := snapshotter(t, s).Snapshot(ctx)
	close(stop)
	wg.Wait()
	ok(t, err)
	defer sn.Close()
	have := map[mail.UID]bool{}
	for _, m := range snapMessages(t, sn, a.ID, inbox.ID) {
		have[m.UID] = true
	}
	for _, u := range want {
		if !have[u] {
			t.Fatalf("UID %d was acknowledged before the snapshot but is not in it", u)
		}
	}
}

// testRestore restores what a snapshot holds into an empty store and
// checks that everything kept its identity, that the restored mailboxes
// go on from their UIDNEXT and HIGHESTMODSEQ, and what RestoreMessages
// refuses.
func testRestore(t *testing.T, h Harness) {
	src := newStore(t, h)
	a, inbox := account(t, src, "rest@example.org")
	res := appendMsgs(t, src, a.ID, inbox.ID, 4, "$Work")
	_ = must[*store.StoreFlagsResult](t)(src.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{UIDs: mail.NewUIDSet(res.UIDs[1]), Op: store.FlagsAdd, Flags: mail.Flags{`\Seen`, `\Deleted`}}))
	_ = must[*store.ExpungeResult](t)(src.Expunge(ctx, a.ID, inbox.ID, mail.NewUIDSet(res.UIDs[0]), false))
	_ = must[*store.AppendResult](t)(src.Append(ctx, a.ID, inbox.ID, []store.NewMessage{{Body: stage(t, src, Msg("big", strings.Repeat("y", 200<<10)))}}))
	ok(t, src.HidePOP3(ctx, a.ID, "laptop", inbox.ID, mail.NewUIDSet(res.UIDs[2])))
	key := must[[]byte](t)(src.(store.AccessKeys).EnsureAccessKey(ctx, a.ID, inbox.ID))
	_ = must[*store.Device](t)(src.(store.Credentials).AddDevice(ctx, a.ID, "laptop", "lh", "ls"))
	ok(t, src.(store.Credentials).RevokeDevice(ctx, a.ID, "laptop"))
	sn := must[store.Snapshot](t)(snapshotter(t, src).Snapshot(ctx))
	defer sn.Close()

	dst := newStore(t, h)
	r := restorer(t, dst)
	const margin = 1000
	rec := must[[]store.AccountRecord](t)(sn.Accounts(ctx))[0]
	na := must[*store.Account](t)(r.RestoreAccount(ctx, rec))
	_, err := r.RestoreAccount(ctx, rec)
	wantErr(t, err, store.ErrExists)
	if got := must[[]store.Mailbox](t)(dst.Mailboxes(ctx, na.ID)); len(got) != 0 {
		t.Fatalf("RestoreAccount made mailboxes: %v", got)
	}
	ids := map[store.MailboxID]store.MailboxID{}
	var maxUV uint32
	for _, m := range must[[]store.Mailbox](t)(sn.Mailboxes(ctx, a.ID)) {
		want := m
		m.UIDNext += margin
		m.HighestModSeq += margin
		nm := must[*store.Mailbox](t)(r.RestoreMailbox(ctx, na.ID, m))
		ids[want.ID] = nm.ID
		maxUV = max(maxUV, m.UIDValidity)
		if nm.UIDValidity != want.UIDValidity || nm.UIDNext != want.UIDNext+margin || nm.HighestModSeq != want.HighestModSeq+margin {
			t.Fatalf("restored mailbox %+v from %+v", nm, want)
		}
		var msgs []store.RestoreMessage
		for sm := range sn.Messages(ctx, a.ID, want.ID) {
			body, err := dst.Stage(ctx, bytes.NewReader(snapBody(t, sn, sm.BlobID)), 0)
			ok(t, err)
			defer body.Discard()
			msgs = append(msgs, store.RestoreMessage{Body: body, UID: sm.UID, ModSeq: sm.ModSeq, Flags: sm.Flags,
				InternalDate: sm.InternalDate, SaveDate: sm.SaveDate, EmailID: sm.EmailID, POPUID: sm.POPUID})
		}
		ok(t, r.RestoreMessages(ctx, na.ID, nm.ID, msgs))
	}
	for e, err := range sn.Expunged(ctx, a.ID) {
		ok(t, err)
		body := stage(t, dst, string(snapBody(t, sn, e.BlobID)))
		ok(t, r.RestoreMessages(ctx, na.ID, ids[e.Mailbox], []store.RestoreMessage{{Body: body, UID: e.UID, ModSeq: e.ModSeq,
			Flags: e.Flags, InternalDate: e.InternalDate, EmailID: e.EmailID, Expunged: e.Expunged}}))
	}
	for _, v := range must[[]store.POP3View](t)(sn.POP3Views(ctx, a.ID)) {
		v.Mailbox = ids[v.Mailbox]
		ok(t, r.RestorePOP3View(ctx, na.ID, v))
	}
	for _, d := range must[[]store.Device](t)(sn.Devices(ctx, a.ID)) {
		ok(t, r.RestoreDevice(ctx, na.ID, d))
	}
	for _, k := range must[[]store.AccessKey](t)(sn.AccessKeys(ctx, a.ID)) {
		ok(t, r.RestoreAccessKey(ctx, na.ID, ids[k.Mailbox], k.Key))
	}

	// Everything as it was.
	nInbox := must[*store.Mailbox](t)(dst.Mailbox(ctx, na.ID, "INBOX"))
	srcMsgs := list(t, src, a.ID, inbox.ID, all, store.ListOptions{})
	dstMsgs := list(t, dst, na.ID, nInbox.ID, all, store.ListOptions{})
	if len(srcMsgs) != len(dstMsgs) {
		t.Fatalf("restored %d messages, want %d", len(dstMsgs), len(srcMsgs))
	}
	for i, m := range dstMsgs {
		w := srcMsgs[i]
		if m.UID != w.UID || m.ModSeq != w.ModSeq || !m.Flags.Equal(w.Flags) || !m.InternalDate.Equal(w.InternalDate) ||
			m.EmailID != w.EmailID || m.Size != w.Size || !m.SaveDate.Equal(w.SaveDate) || readBody(t, dst, m.BlobID) != readBody(t, src, w.BlobID) {
			t.Fatalf("restored message %+v, want %+v", *m, *w)
		}
	}
	st := must[*store.Status](t)(dst.Status(ctx, na.ID, nInbox.ID))
	sst := must[*store.Status](t)(src.Status(ctx, a.ID, inbox.ID))
	if st.Messages != sst.Messages || st.Unseen != sst.Unseen || st.Deleted != sst.Deleted || st.Size != sst.Size ||
		st.DeletedSize != sst.DeletedSize || st.FirstRecent != st.UIDNext {
		t.Fatalf("restored status %+v, source %+v", st, sst)
	}
	if u, su := must[*store.Usage](t)(dst.Usage(ctx, na.ID)), must[*store.Usage](t)(src.Usage(ctx, a.ID)); u.Bytes != su.Bytes || u.Messages != su.Messages {
		t.Fatalf("restored usage %+v, source %+v", u, su)
	}
	if sc := must[string](t)(dst.(store.Credentials).AccountSCRAM(ctx, na.ID)); sc != rec.SCRAM {
		t.Fatalf("restored SCRAM %q, want %q", sc, rec.SCRAM)
	}
	devs := must[[]store.Device](t)(dst.(store.Credentials).Devices(ctx, na.ID))
	if len(devs) != 1 || devs[0].Revoked.IsZero() || devs[0].PasswordHash != "" {
		t.Fatalf("restored devices = %+v", devs)
	}
	v := must[*store.POP3View](t)(dst.POP3View(ctx, na.ID, "laptop", nInbox.ID))
	if v.UIDValidity != nInbox.UIDValidity || !slices.Equal(v.Hidden.UIDs(), []mail.UID{res.UIDs[2]}) {
		t.Fatalf("restored pop3 view = %+v", v)
	}
	if k := must[[]byte](t)(dst.(store.AccessKeys).AccessKey(ctx, na.ID, nInbox.ID)); !bytes.Equal(k, key) {
		t.Fatal("access key not restored")
	}
	// A device that knew a MODSEQ below the restored HIGHESTMODSEQ
	// compares UIDs; one at it learns nothing changed.
	cs := must[*store.ChangeSet](t)(dst.Changes(ctx, na.ID, nInbox.ID, nInbox.HighestModSeq-margin))
	if cs.VanishedComplete || len(cs.Changed) != 0 {
		t.Fatalf("changes since the backup's MODSEQ = %+v", cs)
	}
	cs = must[*store.ChangeSet](t)(dst.Changes(ctx, na.ID, nInbox.ID, nInbox.HighestModSeq))
	if !cs.VanishedComplete || len(cs.Changed) != 0 || !cs.Vanished.IsEmpty() {
		t.Fatalf("changes since the restored HIGHESTMODSEQ = %+v", cs)
	}
	// New mail goes on from the raised UIDNEXT and HIGHESTMODSEQ.
	nr := appendMsgs(t, dst, na.ID, nInbox.ID, 1)
	if nr.UIDs[0] != nInbox.UIDNext || nr.ModSeq != nInbox.HighestModSeq+1 {
		t.Fatalf("append after restore: UID %d MODSEQ %d; want %d, %d", nr.UIDs[0], nr.ModSeq, nInbox.UIDNext, nInbox.HighestModSeq+1)
	}
	if nm := must[*store.Mailbox](t)(dst.CreateMailbox(ctx, na.ID, "Fresh", nil)); nm.UIDValidity <= maxUV {
		t.Fatalf("new mailbox UIDVALIDITY %d not above the restored %d", nm.UIDValidity, maxUV)
	}
	// What RestoreMessages refuses, changing nothing.
	for _, bad := range []store.RestoreMessage{
		{UID: res.UIDs[2]},                   // in use
		{UID: res.UIDs[0]},                   // a tombstone
		{UID: nr.UIDs[0] + margin*10},        // past UIDNEXT
		{UID: 9999, ModSeq: nr.ModSeq + 100}, // past HIGHESTMODSEQ
	} {
		bad.Body = stage(t, dst, Msg("bad", "x"))
		if bad.ModSeq == 0 {
			bad.ModSeq = 1
		}
		if err := r.RestoreMessages(ctx, na.ID, nInbox.ID, []store.RestoreMessage{{Body: stage(t, dst, Msg("ok", "x")), UID: 9998, ModSeq: 1}, bad}); err == nil {
			t.Fatalf("RestoreMessages accepted %+v", bad)
		}
	}
	if n := len(list(t, dst, na.ID, nInbox.ID, mail.NewUIDSet(9998), store.ListOptions{})); n != 0 {
		t.Fatal("a refused RestoreMessages stored part of its messages")
	}
	err = r.RestoreMessages(ctx, na.ID, nInbox.ID, []store.RestoreMessage{{Body: stage(t, dst, Msg("dup", "x")), UID: res.UIDs[2], ModSeq: 1}})
	wantErr(t, err, store.ErrExists)
	_, err = r.RestoreMailbox(ctx, na.ID, store.Mailbox{Name: "INBOX", UIDValidity: 5, UIDNext: 1, HighestModSeq: 1})
	wantErr(t, err, store.ErrExists)
	_, err = r.RestoreMailbox(ctx, na.ID, store.Mailbox{Name: "bad/", UIDValidity: 5, UIDNext: 1, HighestModSeq: 1})
	if !errors.Is(err, store.ErrInvalidName) {
		t.Fatalf("RestoreMailbox of a bad name: %v", err)
	}
	// Another account's mailbox is not found.
	b, _ := account(t, dst, "b@example.org")
	err = r.RestoreMessages(ctx, b.ID, nInbox.ID, []store.RestoreMessage{{Body: stage(t, dst, Msg("x", "x")), UID: 9997, ModSeq: 1}})
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, r.RestoreAccessKey(ctx, b.ID, nInbox.ID, key), store.ErrNotFound)
	checkClean(t, dst)
	dst = h.Reopen(t, dst)
	t.Cleanup(func() { dst.Close() })
	if got := list(t, dst, na.ID, nInbox.ID, all, store.ListOptions{}); len(got) != len(srcMsgs)+1 {
		t.Fatalf("after reopen %d messages, want %d", len(got), len(srcMsgs)+1)
	}
}
