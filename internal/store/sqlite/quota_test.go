package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

func quotaOpen(t *testing.T, dir string, def store.Quota) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Dir: dir, SweepInterval: -1, ReadConns: 1, OpsOptions: OpsOptions{Quota: def}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func quotaAppend(t *testing.T, s *Store, acct store.AccountID, mb store.MailboxID, raw string, flags ...string) (*store.AppendResult, error) {
	t.Helper()
	b, err := s.Stage(context.Background(), strings.NewReader(raw), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Discard()
	return s.Append(context.Background(), acct, mb, []store.NewMessage{{Body: b, Flags: flags}})
}

// TestQuotaDefault: an account without its own quota gets the store's
// default; its own replaces it, resource by resource.
func TestQuotaDefault(t *testing.T) {
	ctx := context.Background()
	s := quotaOpen(t, t.TempDir(), store.Quota{Bytes: 1000, Messages: 0})
	defer s.Close()
	a, err := s.CreateAccount(ctx, "a@example.org", "x")
	if err != nil {
		t.Fatal(err)
	}
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	u, err := s.Usage(ctx, a.ID)
	if err != nil || u.Limit != (store.Quota{Bytes: 1000}) || u.Own != (store.Quota{Bytes: store.QuotaDefault, Messages: store.QuotaDefault}) {
		t.Fatalf("usage %+v, %v", u, err)
	}
	if _, err := quotaAppend(t, s, a.ID, inbox.ID, strings.Repeat("x", 600)); err != nil {
		t.Fatal(err)
	}
	if _, err := quotaAppend(t, s, a.ID, inbox.ID, strings.Repeat("x", 600)); !errors.Is(err, store.ErrOverQuota) {
		t.Fatalf("append over the default quota: %v", err)
	}
	// Its own limit of messages, the default for bytes.
	if err := s.SetQuota(ctx, a.ID, store.Quota{Bytes: store.QuotaDefault, Messages: 5}); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Usage(ctx, a.ID); u.Limit != (store.Quota{Bytes: 1000, Messages: 5}) {
		t.Fatalf("limit %+v", u.Limit)
	}
	// No limit of its own (0) beats the default.
	if err := s.SetQuota(ctx, a.ID, store.Quota{Bytes: 0, Messages: store.QuotaDefault}); err != nil {
		t.Fatal(err)
	}
	if _, err := quotaAppend(t, s, a.ID, inbox.ID, strings.Repeat("x", 600)); err != nil {
		t.Fatalf("append with no limit of its own: %v", err)
	}
	if u, _ := s.Usage(ctx, a.ID); u.Limit != (store.Quota{}) || u.Own.Bytes != 0 || u.Bytes != 1200 {
		t.Fatalf("usage %+v", u)
	}
}

// TestQuotaMigration: the migration that adds the quota counters starts
// them from the messages stored: every account's bytes and messages
// (copies counted again, expunged messages not) and every mailbox's size
// of \Deleted messages.
func TestQuotaMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := quotaOpen(t, dir, store.Quota{})
	type state struct {
		usage   store.Usage
		deleted map[store.MailboxID]int64
	}
	snapshot := func(s *Store, accts []store.AccountID) []state {
		var out []state
		for _, id := range accts {
			u, err := s.Usage(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			st := state{usage: *u, deleted: map[store.MailboxID]int64{}}
			mbs, err := s.Mailboxes(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			for _, mb := range mbs {
				status, err := s.Status(ctx, id, mb.ID)
				if err != nil {
					t.Fatal(err)
				}
				st.deleted[mb.ID] = status.DeletedSize
			}
			out = append(out, st)
		}
		return out
	}
	var accts []store.AccountID
	for i, name := range []string{"a@example.org", "b@example.org", "empty@example.org"} {
		a, err := s.CreateAccount(ctx, name, "x")
		if err != nil {
			t.Fatal(err)
		}
		accts = append(accts, a.ID)
		if i == 2 {
			continue
		}
		inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
		arch, _ := s.Mailbox(ctx, a.ID, "Archive")
		for j := range 4 {
			var flags []string
			if j%2 == 0 {
				flags = []string{mail.FlagDeleted}
			}
			if _, err := quotaAppend(t, s, a.ID, inbox.ID, strings.Repeat("y", 100*(i+1)+j), flags...); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Copy(ctx, a.ID, inbox.ID, mail.NewUIDSet(1, 2), arch.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Expunge(ctx, a.ID, inbox.ID, mail.NewUIDSet(4), false); err != nil {
			t.Fatal(err)
		}
	}
	want := snapshot(s, accts)
	if want[0].usage.Messages != 5 || want[2].usage.Messages != 0 {
		t.Fatalf("before: %+v", want)
	}
	s.Close()

	// Back to the schema before the migration, then run it alone.
	db, err := sql.Open("sqlite", "file:"+dir+"/postfach.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`ALTER TABLE accounts DROP COLUMN used_bytes`, `ALTER TABLE accounts DROP COLUMN used_messages`,
		`ALTER TABLE accounts DROP COLUMN quota_bytes`, `ALTER TABLE accounts DROP COLUMN quota_messages`,
		`ALTER TABLE mailboxes DROP COLUMN deleted_size`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	n := 0
	for _, m := range migrations {
		if strings.Contains(m, "ADD COLUMN used_bytes") {
			if _, err := db.Exec(m); err != nil {
				t.Fatalf("quota migration: %v", err)
			}
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d quota migrations", n)
	}
	db.Close()

	s = quotaOpen(t, dir, store.Quota{})
	defer s.Close()
	got := snapshot(s, accts)
	for i := range want {
		if got[i].usage != want[i].usage {
			t.Errorf("account %d: usage %+v after the migration, %+v before", accts[i], got[i].usage, want[i].usage)
		}
		for mb, size := range want[i].deleted {
			if got[i].deleted[mb] != size {
				t.Errorf("mailbox %d: DeletedSize %d after the migration, %d before", mb, got[i].deleted[mb], size)
			}
		}
	}
	if probs, err := s.Check(ctx); err != nil || len(probs) != 0 {
		t.Fatalf("check after the migration: %+v %v", probs, err)
	}
}
