package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// Aliases (docs/running.md, "Aliases"): an address that delivers to one
// or more accounts of this server, or a domain's catch-all ("@domain").
// Its targets are accounts, never other aliases (so no alias can loop)
// and never addresses elsewhere (forwarding needs the outbound queue).

// Alias is one alias as the alias operations show it.
type Alias struct {
	// Address is the alias ("family@example.org", "@example.org").
	Address string `json:"address"`
	// Targets are the names of its accounts, ordered by name.
	Targets []string `json:"targets"`
}

func aliasOf(a *store.Alias) *Alias {
	if a == nil {
		return nil
	}
	out := &Alias{Address: a.Address, Targets: make([]string, len(a.Targets))}
	for i, t := range a.Targets {
		out.Targets[i] = t.Name
	}
	return out
}

func (o *Ops) aliases() (store.Aliases, error) {
	if o.Aliases == nil || o.Deliverer == nil {
		return nil, errors.New("aliases: not supported by this store")
	}
	return o.Aliases, nil
}

// aliasTarget returns the account a target of an alias names, or an error
// that says why it cannot be one.
func (o *Ops) aliasTarget(ctx context.Context, al store.Aliases, target string) (store.AccountID, error) {
	a, err := mail.ParseAddress(target)
	if err != nil {
		return 0, fmt.Errorf("%w: target %q is not an address", ErrInvalid, target)
	}
	if strings.ContainsAny(a.Local, "+#") {
		return 0, fmt.Errorf("%w: target %s: name the account itself, without +detail or #device", ErrInvalid, target)
	}
	acct, err := o.Store.Account(ctx, target)
	if err == nil {
		return acct.ID, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	if !o.Deliverer.IsLocal(a.Domain) {
		return 0, fmt.Errorf("%w: target %s is not an account of this server: an alias delivers to local accounts only "+
			"(forwarding to other servers is not offered: resent mail would fail the original sender's SPF and DMARC checks)", ErrInvalid, target)
	}
	if other, err := al.Alias(ctx, target); err == nil {
		return 0, fmt.Errorf("%w: target %s is an alias, and an alias names accounts, not other aliases: name its accounts (%s)",
			ErrInvalid, target, strings.Join(aliasOf(other).Targets, ", "))
	}
	return 0, fmt.Errorf("target %s: no such account: %w", target, store.ErrNotFound)
}

// AliasAdd implements API.
func (o *Ops) AliasAdd(ctx context.Context, address string, targets []string) (*Alias, error) {
	al, err := o.aliases()
	if err != nil {
		return nil, err
	}
	if err := o.Deliverer.CheckAlias(address); err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w: alias %s: no target account", ErrInvalid, address)
	}
	// Isolation: an alias never takes an account's address (the store
	// refuses it too; this says so in words).
	if _, err := o.Store.Account(ctx, address); err == nil {
		return nil, fmt.Errorf("%w: %s is an account; an alias cannot take its address, or its mail would no longer reach it", ErrInvalid, address)
	}
	var ids []store.AccountID
	for _, t := range targets {
		id, err := o.aliasTarget(ctx, al, t)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	a, err := al.AddAlias(ctx, address, ids)
	if err != nil {
		return nil, err
	}
	return aliasOf(a), nil
}

// AliasDel implements API.
func (o *Ops) AliasDel(ctx context.Context, address string, targets []string) (*Alias, error) {
	al, err := o.aliases()
	if err != nil {
		return nil, err
	}
	cur, err := al.Alias(ctx, address)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("no alias %s: %w", address, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var ids []store.AccountID
	for _, t := range targets {
		i := slices.IndexFunc(cur.Targets, func(x store.AliasTarget) bool { return mail.NameKey(x.Name) == mail.NameKey(t) })
		if i < 0 {
			return nil, fmt.Errorf("%s is not a target of the alias %s (%s): %w", t, cur.Address,
				strings.Join(aliasOf(cur).Targets, ", "), store.ErrNotFound)
		}
		ids = append(ids, cur.Targets[i].Account)
	}
	a, err := al.RemoveAlias(ctx, address, ids)
	if err != nil {
		return nil, err
	}
	return aliasOf(a), nil
}

// AliasList implements API.
func (o *Ops) AliasList(ctx context.Context, filter string) ([]Alias, error) {
	al, err := o.aliases()
	if err != nil {
		return nil, err
	}
	all, err := al.Aliases(ctx)
	if err != nil {
		return nil, err
	}
	key := mail.NameKey(filter)
	out := []Alias{}
	for _, a := range all {
		addr := mail.NameKey(a.Address)
		switch {
		case filter == "":
		case !strings.Contains(filter, "@"):
			// A domain: its aliases and its catch-all.
			if addr[strings.LastIndexByte(addr, '@')+1:] != key {
				continue
			}
		case addr == key:
		case !slices.ContainsFunc(a.Targets, func(t store.AliasTarget) bool { return mail.NameKey(t.Name) == key }):
			// An address: the alias itself, or the aliases of that
			// account.
			continue
		}
		out = append(out, *aliasOf(&a))
	}
	return out, nil
}

// AliasAdd implements API.
func (c *Client) AliasAdd(ctx context.Context, address string, targets []string) (*Alias, error) {
	resp, err := c.do(ctx, &Request{Op: "alias.add", Name: address, Targets: targets}, nil)
	if err != nil {
		return nil, err
	}
	if resp.Alias == nil {
		return nil, errors.New("admin socket: alias answer without alias")
	}
	return resp.Alias, nil
}

// AliasDel implements API.
func (c *Client) AliasDel(ctx context.Context, address string, targets []string) (*Alias, error) {
	resp, err := c.do(ctx, &Request{Op: "alias.del", Name: address, Targets: targets}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Alias, nil
}

// AliasList implements API.
func (c *Client) AliasList(ctx context.Context, filter string) ([]Alias, error) {
	resp, err := c.do(ctx, &Request{Op: "alias.list", Name: filter}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Aliases, nil
}
