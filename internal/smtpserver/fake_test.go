package smtpserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// fakeStore is the part of store.Store the delivery pipeline uses, in
// memory, with failure injection. Other methods panic (nil embedded).
type fakeStore struct {
	store.Store

	mu       sync.Mutex
	accounts []store.Account
	// delivered bodies per account name (lower case).
	inbox map[string][][]byte
	// stageErr, when set, is returned by Stage after reading the body.
	stageErr error
	// failFor makes Deliver fail for that account name.
	failFor map[string]error
	// stageBlock, when set, is waited on by Stage before it returns.
	stageBlock chan struct{}
	stageStart chan struct{}
	maxRead    int64
	// usage is the quota usage by account name (lower case); an account
	// without an entry has used nothing and has no limit.
	usage map[string]store.Usage
}

func newFakeStore(names ...string) *fakeStore {
	f := &fakeStore{inbox: map[string][][]byte{}, failFor: map[string]error{}}
	for i, n := range names {
		f.accounts = append(f.accounts, store.Account{ID: store.AccountID(i + 1), Name: n, Created: time.Unix(int64(1000+i), 0)})
	}
	return f
}

func (f *fakeStore) Account(ctx context.Context, name string) (*store.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.accounts {
		if strings.EqualFold(a.Name, name) {
			return &a, nil
		}
	}
	return nil, fmt.Errorf("account %q: %w", name, store.ErrNotFound)
}

func (f *fakeStore) Accounts(ctx context.Context) ([]store.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.Account(nil), f.accounts...), nil
}

type fakeStaged struct {
	body []byte
	id   string
}

func (s *fakeStaged) BlobID() string            { return s.id }
func (s *fakeStaged) Size() int64               { return int64(len(s.body)) }
func (s *fakeStaged) Summary() *message.Summary { return nil }
func (s *fakeStaged) Discard()                  {}

func (f *fakeStore) Stage(ctx context.Context, r io.Reader, maxSize int64) (store.Staged, error) {
	if f.stageStart != nil {
		close(f.stageStart)
	}
	// Read in small steps and remember the peak, to show streaming stops
	// at the limit.
	var buf bytes.Buffer
	_, err := io.Copy(&buf, r)
	f.mu.Lock()
	f.maxRead = max(f.maxRead, int64(buf.Len()))
	f.mu.Unlock()
	if f.stageBlock != nil {
		<-f.stageBlock
	}
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if f.stageErr != nil {
		return nil, fmt.Errorf("write blob: %w", f.stageErr)
	}
	if buf.Len() == 0 {
		return nil, store.ErrEmptyMessage
	}
	sum := sha256.Sum256(buf.Bytes())
	return &fakeStaged{body: buf.Bytes(), id: hex.EncodeToString(sum[:])}, nil
}

func (f *fakeStore) Deliver(ctx context.Context, body store.Staged, targets []store.DeliveryTarget) ([]store.DeliveryResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]store.DeliveryResult, len(targets))
	for i, t := range targets {
		a := f.accounts[t.Account-1]
		if err := f.failFor[strings.ToLower(a.Name)]; err != nil {
			out[i].Err = err
			continue
		}
		key := strings.ToLower(a.Name)
		if t.Mailbox != "" {
			key += "/" + t.Mailbox
		}
		f.inbox[key] = append(f.inbox[key], body.(*fakeStaged).body)
	}
	return out, nil
}

// DeliverAll delivers to every target or, when one fails, to none; like
// the SQLite store it stops at the first target that fails.
func (f *fakeStore) DeliverAll(ctx context.Context, body store.Staged, targets []store.DeliveryTarget) ([]store.DeliveryResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]store.DeliveryResult, len(targets))
	for i, t := range targets {
		if err := f.failFor[strings.ToLower(f.accounts[t.Account-1].Name)]; err != nil {
			for j := range out {
				out[j].Err = store.ErrNotDelivered
			}
			out[i].Err = err
			return out, nil
		}
	}
	for _, t := range targets {
		key := strings.ToLower(f.accounts[t.Account-1].Name)
		if t.Mailbox != "" {
			key += "/" + t.Mailbox
		}
		f.inbox[key] = append(f.inbox[key], body.(*fakeStaged).body)
	}
	return out, nil
}

func (f *fakeStore) Usage(ctx context.Context, acct store.AccountID) (*store.Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if int(acct) < 1 || int(acct) > len(f.accounts) {
		return nil, store.ErrNotFound
	}
	u := f.usage[strings.ToLower(f.accounts[acct-1].Name)]
	return &u, nil
}

func (f *fakeStore) setUsage(name string, u store.Usage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.usage == nil {
		f.usage = map[string]store.Usage{}
	}
	f.usage[strings.ToLower(name)] = u
}

func (f *fakeStore) messages(name string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inbox[strings.ToLower(name)]
}
