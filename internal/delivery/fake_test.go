package delivery

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// fakeStore is the part of the store the pipeline uses, in memory, with
// aliases and failure injection.
type fakeStore struct {
	mu       sync.Mutex
	accounts []store.Account
	aliases  map[string]*store.Alias // by mail.NameKey
	// mailboxes per account ID; an account without an entry has the
	// default ones.
	mailboxes map[store.AccountID][]store.Mailbox
	// stored holds the delivered bodies per "account/mailbox" (lower
	// case; mailbox "" is INBOX) with their flags.
	stored map[string][]storedMsg
	// failFor makes the store fail the targets of that account name.
	failFor map[string]error
	usage   map[string]store.Usage
	// calls counts Deliver and DeliverAll calls.
	calls []string
}

type storedMsg struct {
	body  string
	flags mail.Flags
}

func newFakeStore(names ...string) *fakeStore {
	f := &fakeStore{aliases: map[string]*store.Alias{}, mailboxes: map[store.AccountID][]store.Mailbox{},
		stored: map[string][]storedMsg{}, failFor: map[string]error{}, usage: map[string]store.Usage{}}
	for i, n := range names {
		f.accounts = append(f.accounts, store.Account{ID: store.AccountID(i + 1), Name: n, Created: time.Unix(int64(1000+i), 0)})
	}
	return f
}

func (f *fakeStore) id(name string) store.AccountID {
	for _, a := range f.accounts {
		if strings.EqualFold(a.Name, name) {
			return a.ID
		}
	}
	panic("no account " + name)
}

func (f *fakeStore) addAlias(addr string, names ...string) {
	a := &store.Alias{Address: addr}
	for _, n := range names {
		a.Targets = append(a.Targets, store.AliasTarget{Account: f.id(n), Name: n})
	}
	f.aliases[mail.NameKey(addr)] = a
}

func (f *fakeStore) Alias(ctx context.Context, address string) (*store.Alias, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.aliases[mail.NameKey(address)]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("alias %s: %w", address, store.ErrNotFound)
}

func (f *fakeStore) Account(ctx context.Context, name string) (*store.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.accounts {
		if mail.NameKey(a.Name) == mail.NameKey(name) {
			return &a, nil
		}
	}
	return nil, fmt.Errorf("account %q: %w", name, store.ErrNotFound)
}

func (f *fakeStore) Accounts(ctx context.Context) ([]store.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.accounts), nil
}

func (f *fakeStore) Mailboxes(ctx context.Context, acct store.AccountID) ([]store.Mailbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if mbs, ok := f.mailboxes[acct]; ok {
		return mbs, nil
	}
	var out []store.Mailbox
	for _, d := range store.DefaultMailboxes {
		mb := store.Mailbox{Account: acct, Name: d.Name}
		if d.SpecialUse != "" {
			mb.SpecialUse = []string{d.SpecialUse}
		}
		out = append(out, mb)
	}
	return out, nil
}

func (f *fakeStore) Usage(ctx context.Context, acct store.AccountID) (*store.Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.usage[mail.NameKey(f.accounts[acct-1].Name)]
	return &u, nil
}

type fakeStaged struct{ body []byte }

func (s *fakeStaged) BlobID() string            { return "blob" }
func (s *fakeStaged) Size() int64               { return int64(len(s.body)) }
func (s *fakeStaged) Summary() *message.Summary { return nil }
func (s *fakeStaged) Discard()                  {}

func (f *fakeStore) Stage(ctx context.Context, r io.Reader, maxSize int64) (store.Staged, error) {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return &fakeStaged{body: buf.Bytes()}, nil
}

func (f *fakeStore) key(t store.DeliveryTarget) string {
	return mail.NameKey(f.accounts[t.Account-1].Name) + "/" + t.Mailbox
}

func (f *fakeStore) Deliver(ctx context.Context, body store.Staged, targets []store.DeliveryTarget) ([]store.DeliveryResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("Deliver%d", len(targets)))
	out := make([]store.DeliveryResult, len(targets))
	for i, t := range targets {
		if err := f.failFor[mail.NameKey(f.accounts[t.Account-1].Name)]; err != nil {
			out[i].Err = err
			continue
		}
		f.stored[f.key(t)] = append(f.stored[f.key(t)], storedMsg{string(body.(*fakeStaged).body), t.Flags})
		out[i].UIDs = []mail.UID{mail.UID(len(f.stored[f.key(t)]))}
	}
	return out, nil
}

func (f *fakeStore) DeliverAll(ctx context.Context, body store.Staged, targets []store.DeliveryTarget) ([]store.DeliveryResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("DeliverAll%d", len(targets)))
	out := make([]store.DeliveryResult, len(targets))
	for i, t := range targets {
		if err := f.failFor[mail.NameKey(f.accounts[t.Account-1].Name)]; err != nil {
			for j := range out {
				out[j].Err = store.ErrNotDelivered
			}
			out[i].Err = err
			return out, nil
		}
	}
	for i, t := range targets {
		f.stored[f.key(t)] = append(f.stored[f.key(t)], storedMsg{string(body.(*fakeStaged).body), t.Flags})
		out[i].UIDs = []mail.UID{mail.UID(len(f.stored[f.key(t)]))}
	}
	return out, nil
}

// count returns how many messages "account/mailbox" holds.
func (f *fakeStore) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.stored[key])
}
