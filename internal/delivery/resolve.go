package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// Errors of recipient resolution. Map them to protocol replies with
// errors.Is.
var (
	// ErrNotLocal: the recipient's domain is not one of the local domains.
	ErrNotLocal = errors.New("recipient domain is not local")
	// ErrUnknownUser: a local domain, but no account or alias of that
	// address, and no catch-all.
	ErrUnknownUser = errors.New("no such user")
	// ErrBadAddress: the recipient is not a valid address.
	ErrBadAddress = errors.New("invalid address")
)

// Via says how Resolve found a recipient's accounts.
type Via int

// The ways an address resolves, in the order Resolve tries them.
const (
	// ViaAccount: the address, without its +detail, is an account.
	ViaAccount Via = iota + 1
	// ViaAlias: the address, without its +detail, is an alias.
	ViaAlias
	// ViaPostmaster: postmaster@ a local domain that has no account or
	// alias of that name goes to the postmaster account.
	ViaPostmaster
	// ViaCatchAll: the domain's catch-all alias ("@example.org").
	ViaCatchAll
)

func (v Via) String() string {
	switch v {
	case ViaAccount:
		return "account"
	case ViaAlias:
		return "alias"
	case ViaPostmaster:
		return "postmaster"
	case ViaCatchAll:
		return "catch-all"
	}
	return "unknown"
}

// Target is one mailbox of one account that a recipient's mail goes to.
type Target struct {
	// Account is the account; Name its name, for logs and errors.
	Account store.AccountID
	Name    string
	// Mailbox names the destination; "" is INBOX. A mailbox that does not
	// exist falls back to INBOX (the store's rule).
	Mailbox string
	// SpecialUse, when set (store.UseJunk for a quarantine, store.UseSent
	// for the sender's copy), chooses the account's mailbox with that
	// attribute (RFC 6154) whatever its name; Mailbox when it has none.
	SpecialUse string
	// Flags are set on the stored message (say \Seen on a copy in Sent).
	Flags mail.Flags
}

// Recipient is a resolved recipient address.
type Recipient struct {
	// Address is the recipient as the client gave it.
	Address string
	// Via says how it was resolved; Alias is the alias that matched
	// ("family@example.org", or "@example.org" for a catch-all), "" for
	// ViaAccount and ViaPostmaster.
	Via   Via
	Alias string
	// Targets are the mailboxes it delivers to, one per account: one for
	// an account, one or more for an alias. Callers may change a target's
	// Mailbox, SpecialUse and Flags before Deliver (SetMailbox,
	// SetSpecialUse), and add targets of their own.
	Targets []Target
}

// SetMailbox makes every target of r deliver into the mailbox name ("" is
// INBOX).
func (r *Recipient) SetMailbox(name string) {
	for i := range r.Targets {
		r.Targets[i].Mailbox = name
	}
}

// SetSpecialUse makes every target of r deliver into the mailbox with the
// special-use attribute use (store.UseJunk), or "" for Mailbox again.
func (r *Recipient) SetSpecialUse(use string) {
	for i := range r.Targets {
		r.Targets[i].SpecialUse = use
	}
}

// Has reports whether r delivers to the account acct.
func (r *Recipient) Has(acct store.AccountID) bool {
	return slices.ContainsFunc(r.Targets, func(t Target) bool { return t.Account == acct })
}

// IsLocal reports whether domain is one of the local domains.
func (d *Deliverer) IsLocal(domain string) bool {
	return slices.ContainsFunc(d.opt.Domains, func(x string) bool { return strings.EqualFold(x, domain) })
}

// Resolve maps a recipient address to its accounts: local domains only;
// "+detail" is dropped, so alice+x@ is alice@ and family+x@ is the alias
// family@; then an account, an alias, postmaster@ any local domain (RFC
// 5321 §4.5.1; a bare "postmaster" is postmaster@ the first domain, RFC
// 5321 §4.1.1.3) and the domain's catch-all, in that order. Errors:
// ErrBadAddress, ErrNotLocal, ErrUnknownUser, or a wrapped store error
// (temporary).
func (d *Deliverer) Resolve(ctx context.Context, addr string) (*Recipient, error) {
	a, err := mail.ParseAddress(addr)
	if err != nil {
		// RFC 5321 §4.1.1.3: "postmaster" without a domain must be accepted.
		if strings.EqualFold(addr, "postmaster") && len(d.opt.Domains) > 0 {
			a = mail.Address{Local: "postmaster", Domain: d.opt.Domains[0]}
		} else {
			return nil, fmt.Errorf("%w: %q", ErrBadAddress, addr)
		}
	}
	if !d.IsLocal(a.Domain) {
		return nil, fmt.Errorf("%w: %s", ErrNotLocal, a.Domain)
	}
	base := a.WithoutDetail()
	r := &Recipient{Address: addr}

	acct, err := d.opt.Store.Account(ctx, base.String())
	switch {
	case err == nil:
		r.Via = ViaAccount
		r.Targets = []Target{{Account: acct.ID, Name: acct.Name}}
		return r, nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("look up recipient: %w", err)
	}
	if ok, err := d.alias(ctx, base.String(), r); err != nil || ok {
		if ok {
			r.Via = ViaAlias
		}
		return r, err
	}
	if strings.EqualFold(base.Local, "postmaster") {
		acct, err := d.postmaster(ctx)
		switch {
		case err == nil:
			r.Via = ViaPostmaster
			r.Targets = []Target{{Account: acct.ID, Name: acct.Name}}
			return r, nil
		case !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("look up recipient: %w", err)
		}
	}
	if ok, err := d.alias(ctx, "@"+a.Domain, r); err != nil || ok {
		if ok {
			r.Via = ViaCatchAll
		}
		return r, err
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownUser, base)
}

// alias fills r's targets from the alias address, and reports whether
// there is one.
func (d *Deliverer) alias(ctx context.Context, address string, r *Recipient) (bool, error) {
	if d.opt.Aliases == nil {
		return false, nil
	}
	al, err := d.opt.Aliases.Alias(ctx, address)
	if errors.Is(err, store.ErrNotFound) || err == nil && len(al.Targets) == 0 {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up recipient: %w", err)
	}
	r.Alias = al.Address
	r.Targets = make([]Target, len(al.Targets))
	for i, t := range al.Targets {
		r.Targets[i] = Target{Account: t.Account, Name: t.Name}
	}
	return true, nil
}

// postmaster returns the configured postmaster account, or the first
// account created.
func (d *Deliverer) postmaster(ctx context.Context) (*store.Account, error) {
	if d.opt.Postmaster != "" {
		return d.opt.Store.Account(ctx, d.opt.Postmaster)
	}
	accts, err := d.opt.Store.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	if len(accts) == 0 {
		return nil, store.ErrNotFound
	}
	first := slices.MinFunc(accts, func(a, b store.Account) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return &first, nil
}

// SendAs reports whether the account acct may use address as its sender
// (submission: MAIL FROM and From:). It may use every address that
// delivers to it, except through a catch-all: its own name and its
// "+detail" forms (in any domain, also one that is not local), the
// aliases that include it, and postmaster@ a local domain when it is the
// postmaster account and no alias of that name exists. A catch-all
// receives anything of its domain and is not a licence to send as anyone
// there. err is for store failures (temporary).
func (d *Deliverer) SendAs(ctx context.Context, acct *store.Account, address string) (bool, error) {
	a, err := mail.ParseAddress(address)
	if err != nil {
		return false, nil
	}
	if mail.NameKey(a.WithoutDetail().String()) == mail.NameKey(acct.Name) {
		return true, nil
	}
	r, err := d.Resolve(ctx, address)
	switch {
	case errors.Is(err, ErrUnknownUser), errors.Is(err, ErrNotLocal), errors.Is(err, ErrBadAddress):
		return false, nil
	case err != nil:
		return false, err
	}
	return r.Via != ViaCatchAll && r.Has(acct.ID), nil
}

// CheckAlias checks an address to be made an alias (the alias commands):
// local@domain, or "@domain" for the domain's catch-all, in a local
// domain (ErrNotLocal), without "+" (a "+detail" of the alias reaches it,
// as for an account) or "#" (ErrBadAddress).
func (d *Deliverer) CheckAlias(address string) error {
	a, err := mail.ParseAddress(address)
	if strings.HasPrefix(address, "@") {
		a, err = mail.ParseAddress("catch-all" + address)
		a.Local = ""
	}
	if err == nil && (strings.Count(address, "@") != 1 || strings.ContainsAny(address, `"\`)) {
		// Only a plain address can be reached: RCPT TO takes a local
		// part that needs quoting for no address here (smtpserver).
		err = mail.ErrBadAddress
	}
	switch {
	case err != nil:
		return fmt.Errorf("%w: %q is not an address (want local@domain, or @domain for a catch-all)", ErrBadAddress, address)
	case strings.Contains(a.Local, "+"):
		return fmt.Errorf("%w: %q: an alias has no +detail (mail to %s reaches the alias %s anyway)", ErrBadAddress, address,
			address, a.WithoutDetail())
	case strings.Contains(a.Local, "#"):
		return fmt.Errorf("%w: %q: # names a device, not an address", ErrBadAddress, address)
	case !d.IsLocal(a.Domain):
		return fmt.Errorf("%w: %s is not one of the local domains (%s): mail for it never reaches this server's aliases",
			ErrNotLocal, a.Domain, strings.Join(d.opt.Domains, ", "))
	}
	return nil
}
