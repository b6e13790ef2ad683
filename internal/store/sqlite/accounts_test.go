package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/postfach/postfach/internal/store"
)

// TestAccountLookupSeesWrites: Account answers from a cache, and every
// change to an account is seen by the next lookup: a new password, a
// setting, a deletion, a new account of the same name; and a caller that
// changes the Settings map it got does not change what others get.
func TestAccountLookupSeesWrites(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	a, err := s.CreateAccount(ctx, "Alice@example.org", "hash-1")
	if err != nil {
		t.Fatal(err)
	}
	lookup := func() *store.Account {
		t.Helper()
		got, err := s.Account(ctx, "alice@EXAMPLE.org")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := lookup(); got.ID != a.ID || got.PasswordHash != "hash-1" {
		t.Fatalf("lookup: %+v", got)
	}
	lookup().Settings["pop3.delete"] = "changed by a caller"
	if got := lookup(); len(got.Settings) != 0 {
		t.Fatalf("a caller's change of Settings reached the store's answer: %v", got.Settings)
	}
	if err := s.SetPassword(ctx, a.ID, "hash-2"); err != nil {
		t.Fatal(err)
	}
	if got := lookup(); got.PasswordHash != "hash-2" {
		t.Fatalf("after SetPassword: %q", got.PasswordHash)
	}
	if err := s.SetAccountSetting(ctx, a.ID, "pop3.delete", "false"); err != nil {
		t.Fatal(err)
	}
	if got := lookup(); got.Settings["pop3.delete"] != "false" {
		t.Fatalf("after SetAccountSetting: %v", got.Settings)
	}
	if err := s.DeleteAccount(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Account(ctx, "alice@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after DeleteAccount: %v", err)
	}
	b, err := s.CreateAccount(ctx, "alice@example.org", "hash-3")
	if err != nil {
		t.Fatal(err)
	}
	if got := lookup(); got.ID != b.ID || got.PasswordHash != "hash-3" {
		t.Fatalf("after re-creating the account: %+v (want id %d)", got, b.ID)
	}
}

// TestAccountLookupRacesPasswordChange: lookups running while the password
// changes never see an older password once SetPassword has returned.
func TestAccountLookupRacesPasswordChange(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	a, err := s.CreateAccount(ctx, "bob@example.org", "hash-0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Account(ctx, "bob@example.org"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 1; i <= 50; i++ {
		want := fmt.Sprintf("hash-%d", i)
		if err := s.SetPassword(ctx, a.ID, want); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			got, err := s.Account(ctx, "bob@example.org")
			if err != nil {
				t.Fatal(err)
			}
			if got.PasswordHash != want {
				close(stop)
				wg.Wait()
				t.Fatalf("after SetPassword(%q) a lookup gave %q", want, got.PasswordHash)
			}
		}
	}
	close(stop)
	wg.Wait()
}
