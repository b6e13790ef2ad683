package storetest

import (
	"bytes"
	"sync"
	"testing"

	"github.com/postfach/postfach/internal/store"
)

// testAccessKeys checks store.AccessKeys (URLAUTH, RFC 4467 §2.2): a key
// per mailbox, random and of AccessKeySize bytes, made once also under
// concurrent calls, kept across a reopen, reset per mailbox and per
// account, never reachable through another account, and gone with its
// mailbox (a mailbox made later under the name, or a \Noselect name left
// behind, does not inherit it).
func testAccessKeys(t *testing.T, h Harness) {
	s := newStore(t, h)
	ak, isKeys := s.(store.AccessKeys)
	if !isKeys {
		t.Fatalf("%T does not implement store.AccessKeys", s)
	}
	a, inbox := account(t, s, "a@example.org")
	b, bInbox := account(t, s, "b@example.org")
	drafts := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "Drafts"))

	_, err := ak.AccessKey(ctx, a.ID, inbox.ID)
	wantErr(t, err, store.ErrNotFound)

	// Concurrent first uses make one key.
	const n = 8
	keys := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := ak.EnsureAccessKey(ctx, a.ID, inbox.ID)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	k1 := keys[0]
	if len(k1) != store.AccessKeySize || bytes.Equal(k1, make([]byte, store.AccessKeySize)) {
		t.Fatalf("key %x: want %d random bytes", k1, store.AccessKeySize)
	}
	for _, k := range keys {
		if !bytes.Equal(k, k1) {
			t.Fatalf("concurrent EnsureAccessKey made two keys: %x and %x", k1, k)
		}
	}
	if got := must[[]byte](t)(ak.AccessKey(ctx, a.ID, inbox.ID)); !bytes.Equal(got, k1) {
		t.Fatalf("AccessKey %x, EnsureAccessKey %x", got, k1)
	}
	if got := must[[]byte](t)(ak.EnsureAccessKey(ctx, a.ID, inbox.ID)); !bytes.Equal(got, k1) {
		t.Fatalf("a second EnsureAccessKey made a new key")
	}

	// Each mailbox and each account has its own.
	kd := must[[]byte](t)(ak.EnsureAccessKey(ctx, a.ID, drafts.ID))
	kb := must[[]byte](t)(ak.EnsureAccessKey(ctx, b.ID, bInbox.ID))
	if bytes.Equal(kd, k1) || bytes.Equal(kb, k1) || bytes.Equal(kb, kd) {
		t.Fatal("two mailboxes share a key")
	}

	// Another account's mailbox is not found through a.
	_, err = ak.AccessKey(ctx, a.ID, bInbox.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = ak.EnsureAccessKey(ctx, a.ID, bInbox.ID)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, ak.ResetAccessKeys(ctx, a.ID, bInbox.ID), store.ErrNotFound)
	wantErr(t, ak.ResetAccessKeys(ctx, 999999, 0), store.ErrNotFound)
	_, err = ak.EnsureAccessKey(ctx, a.ID, 999999)
	wantErr(t, err, store.ErrNotFound)
	if got := must[[]byte](t)(ak.AccessKey(ctx, b.ID, bInbox.ID)); !bytes.Equal(got, kb) {
		t.Fatal("b's key changed by a's calls")
	}

	// Keys survive a reopen.
	if h.Reopen != nil {
		s = h.Reopen(t, s)
		t.Cleanup(func() { s.Close() })
		ak = s.(store.AccessKeys)
		if got := must[[]byte](t)(ak.AccessKey(ctx, a.ID, inbox.ID)); !bytes.Equal(got, k1) {
			t.Fatal("key lost by a reopen")
		}
	}

	// Resetting one mailbox leaves the others; the next key is new.
	ok(t, ak.ResetAccessKeys(ctx, a.ID, inbox.ID))
	_, err = ak.AccessKey(ctx, a.ID, inbox.ID)
	wantErr(t, err, store.ErrNotFound)
	if got := must[[]byte](t)(ak.AccessKey(ctx, a.ID, drafts.ID)); !bytes.Equal(got, kd) {
		t.Fatal("reset of INBOX changed Drafts' key")
	}
	k2 := must[[]byte](t)(ak.EnsureAccessKey(ctx, a.ID, inbox.ID))
	if bytes.Equal(k2, k1) {
		t.Fatal("the key after a reset is the old one")
	}
	// Resetting the account removes all of its keys, and no one else's.
	ok(t, ak.ResetAccessKeys(ctx, a.ID, 0))
	for _, mb := range []store.MailboxID{inbox.ID, drafts.ID} {
		_, err = ak.AccessKey(ctx, a.ID, mb)
		wantErr(t, err, store.ErrNotFound)
	}
	if got := must[[]byte](t)(ak.AccessKey(ctx, b.ID, bInbox.ID)); !bytes.Equal(got, kb) {
		t.Fatal("a's RESETKEY removed b's key")
	}

	// A deleted mailbox's key goes with it: a mailbox of the same name
	// made later has none.
	x := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "x", nil))
	must[[]byte](t)(ak.EnsureAccessKey(ctx, a.ID, x.ID))
	ok(t, s.DeleteMailbox(ctx, a.ID, x.ID))
	_, err = ak.AccessKey(ctx, a.ID, x.ID)
	wantErr(t, err, store.ErrNotFound)
	x2 := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "x", nil))
	_, err = ak.AccessKey(ctx, a.ID, x2.ID)
	wantErr(t, err, store.ErrNotFound)
	// So does the key of a mailbox that stays as a \Noselect name for
	// its children; the name itself gets none.
	p := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "p", nil))
	must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "p/c", nil))
	must[[]byte](t)(ak.EnsureAccessKey(ctx, a.ID, p.ID))
	ok(t, s.DeleteMailbox(ctx, a.ID, p.ID))
	_, err = ak.AccessKey(ctx, a.ID, p.ID)
	wantErr(t, err, store.ErrNotFound)
	if pn, err := s.Mailbox(ctx, a.ID, "p"); err == nil && pn.NoSelect {
		_, err = ak.EnsureAccessKey(ctx, a.ID, pn.ID)
		wantErr(t, err, store.ErrNoSelect)
	}
	// A renamed mailbox keeps its key.
	kr := must[[]byte](t)(ak.EnsureAccessKey(ctx, a.ID, drafts.ID))
	ok(t, s.RenameMailbox(ctx, a.ID, "Drafts", "Entwürfe"))
	if got := must[[]byte](t)(ak.AccessKey(ctx, a.ID, drafts.ID)); !bytes.Equal(got, kr) {
		t.Fatal("a rename changed the key")
	}

	// Deleting an account removes its keys.
	ok(t, s.DeleteAccount(ctx, b.ID))
	_, err = ak.AccessKey(ctx, b.ID, bInbox.ID)
	wantErr(t, err, store.ErrNotFound)
}
