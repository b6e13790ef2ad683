package storetest

import (
	"slices"
	"sync"
	"testing"

	"github.com/postfach/postfach/internal/store"
)

// aliasNames returns the names of an alias's targets, in order.
func aliasNames(a *store.Alias) []string {
	if a == nil {
		return nil
	}
	var out []string
	for _, t := range a.Targets {
		out = append(out, t.Name)
	}
	return out
}

// testAliases checks store.Aliases: targets added and removed, lookups
// case-insensitive, an account's address never an alias, deleting an
// account takes it out of its aliases, and aliases survive a reopen.
func testAliases(t *testing.T, h Harness) {
	s := newStore(t, h)
	al, isAliases := s.(store.Aliases)
	if !isAliases {
		t.Fatalf("%T does not implement store.Aliases", s)
	}
	alice, _ := account(t, s, "alice@example.org")
	bob, _ := account(t, s, "Bob@example.org")
	carol, _ := account(t, s, "carol@example.org")

	_, err := al.Alias(ctx, "family@example.org")
	wantErr(t, err, store.ErrNotFound)
	if as := must[[]store.Alias](t)(al.Aliases(ctx)); len(as) != 0 {
		t.Fatalf("new store has aliases %+v", as)
	}

	// Created with its first targets, ordered by name; adding again is
	// harmless, and adds the new ones.
	a := must[*store.Alias](t)(al.AddAlias(ctx, "Family@example.org", []store.AccountID{carol.ID, alice.ID}))
	if a.Address != "Family@example.org" || !slices.Equal(aliasNames(a), []string{"alice@example.org", "carol@example.org"}) ||
		a.Targets[0].Account != alice.ID || a.Created.IsZero() {
		t.Fatalf("new alias %+v", a)
	}
	a = must[*store.Alias](t)(al.AddAlias(ctx, "FAMILY@example.org", []store.AccountID{alice.ID, bob.ID}))
	if a.Address != "Family@example.org" || !slices.Equal(aliasNames(a), []string{"alice@example.org", "Bob@example.org", "carol@example.org"}) {
		t.Fatalf("alias after adding bob %+v", a)
	}
	got := must[*store.Alias](t)(al.Alias(ctx, "family@EXAMPLE.org"))
	if got.Address != "Family@example.org" || !slices.Equal(aliasNames(got), aliasNames(a)) {
		t.Fatalf("looked up %+v", got)
	}

	// An account's address is never an alias; an unknown account is no
	// target, and then nothing is added.
	_, err = al.AddAlias(ctx, "bob@EXAMPLE.org", []store.AccountID{alice.ID})
	wantErr(t, err, store.ErrExists)
	_, err = al.AddAlias(ctx, "team@example.org", []store.AccountID{alice.ID, 999999})
	wantErr(t, err, store.ErrNotFound)
	_, err = al.Alias(ctx, "team@example.org")
	wantErr(t, err, store.ErrNotFound)
	_, err = al.AddAlias(ctx, "team@example.org", nil)
	if err == nil {
		t.Fatal("alias without accounts added")
	}

	// A catch-all is an alias like any other.
	must[*store.Alias](t)(al.AddAlias(ctx, "@example.org", []store.AccountID{carol.ID}))
	as := must[[]store.Alias](t)(al.Aliases(ctx))
	if len(as) != 2 || as[0].Address != "@example.org" || as[1].Address != "Family@example.org" || len(as[1].Targets) != 3 {
		t.Fatalf("aliases %+v", as)
	}

	// Removing targets: one that is not there removes nothing.
	_, err = al.RemoveAlias(ctx, "family@example.org", []store.AccountID{bob.ID, 999999})
	wantErr(t, err, store.ErrNotFound)
	a = must[*store.Alias](t)(al.RemoveAlias(ctx, "family@example.org", []store.AccountID{bob.ID}))
	if !slices.Equal(aliasNames(a), []string{"alice@example.org", "carol@example.org"}) {
		t.Fatalf("alias after removing bob %+v", a)
	}
	_, err = al.RemoveAlias(ctx, "nosuch@example.org", nil)
	wantErr(t, err, store.ErrNotFound)

	// Deleting an account takes it out of its aliases; the last one
	// takes the alias with it.
	ok(t, s.DeleteAccount(ctx, carol.ID))
	if as := must[[]store.Alias](t)(al.Aliases(ctx)); len(as) != 1 || !slices.Equal(aliasNames(&as[0]), []string{"alice@example.org"}) {
		t.Fatalf("aliases after deleting carol %+v", as)
	}
	_, err = al.Alias(ctx, "@example.org")
	wantErr(t, err, store.ErrNotFound)
	// A new account of the same name is not in the alias.
	carol2, _ := account(t, s, "carol@example.org")
	if a := must[*store.Alias](t)(al.Alias(ctx, "family@example.org")); a.Targets[0].Account == carol2.ID || len(a.Targets) != 1 {
		t.Fatalf("alias after re-creating carol %+v", a)
	}

	// Removing the last target removes the alias.
	if a := must[*store.Alias](t)(al.RemoveAlias(ctx, "family@example.org", []store.AccountID{alice.ID})); a != nil {
		t.Fatalf("alias without targets %+v", a)
	}
	_, err = al.Alias(ctx, "family@example.org")
	wantErr(t, err, store.ErrNotFound)

	// Concurrent additions to one alias all land.
	var wg sync.WaitGroup
	for _, id := range []store.AccountID{alice.ID, bob.ID, carol2.ID} {
		wg.Go(func() {
			if _, err := al.AddAlias(ctx, "team@example.org", []store.AccountID{id}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if a := must[*store.Alias](t)(al.Alias(ctx, "team@example.org")); len(a.Targets) != 3 {
		t.Fatalf("alias after concurrent additions %+v", a)
	}
	// A whole alias goes at once.
	if a := must[*store.Alias](t)(al.RemoveAlias(ctx, "TEAM@example.org", nil)); a != nil {
		t.Fatalf("removed alias returned %+v", a)
	}

	// Durable.
	must[*store.Alias](t)(al.AddAlias(ctx, "kept@example.org", []store.AccountID{bob.ID}))
	if h.Reopen == nil {
		return
	}
	s = h.Reopen(t, s)
	t.Cleanup(func() { s.Close() })
	al = s.(store.Aliases)
	if a := must[*store.Alias](t)(al.Alias(ctx, "kept@example.org")); !slices.Equal(aliasNames(a), []string{"Bob@example.org"}) {
		t.Fatalf("alias after reopen %+v", a)
	}
}
