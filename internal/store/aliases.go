package store

import (
	"context"
	"time"
)

// Alias is an address that delivers to one or more accounts
// (docs/running.md, "Aliases"): a family list, a role address, or a
// domain's catch-all.
type Alias struct {
	// Address is the alias as created: "family@example.org", or
	// "@example.org" for the catch-all of a domain. Lookups are by
	// mail.NameKey, like account names.
	Address string
	// Targets are the accounts it delivers to, ordered by name; never
	// empty (an alias without targets does not exist).
	Targets []AliasTarget
	Created time.Time
}

// AliasTarget is one account of an alias.
type AliasTarget struct {
	Account AccountID
	// Name is the account's name.
	Name string
}

// Aliases is implemented by stores that keep aliases. An alias names
// accounts by ID, so it follows an account's fate: deleting the account
// removes it from every alias, and an alias left without accounts is gone.
// Which addresses make sense as aliases (local domains, no "+") is the
// caller's business; the store keeps any non-empty address without
// blanks.
type Aliases interface {
	// AddAlias adds the accounts to the alias address, creating the alias
	// when it does not exist; accounts it names already stay (no error).
	// In one transaction: ErrExists when address is the name of an
	// account (an alias never captures an account's mail), ErrNotFound
	// when one of the accounts does not exist (nothing is added then). It
	// returns the alias as it is afterwards.
	AddAlias(ctx context.Context, address string, accts []AccountID) (*Alias, error)
	// RemoveAlias removes the accounts from the alias, or the whole alias
	// when accts is empty, and returns what is left (nil when the alias
	// is gone). ErrNotFound when there is no such alias, or when one of
	// the accounts is not among its targets (nothing is removed then).
	RemoveAlias(ctx context.Context, address string, accts []AccountID) (*Alias, error)
	// Alias returns the alias address (case-insensitively, as
	// mail.NameKey); ErrNotFound when there is none.
	Alias(ctx context.Context, address string) (*Alias, error)
	// Aliases lists every alias, ordered by address key.
	Aliases(ctx context.Context) ([]Alias, error)
}
