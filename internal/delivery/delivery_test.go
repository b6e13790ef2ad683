package delivery

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

var ctx = context.Background()

// family is the store most tests use: three accounts in two domains, a
// family alias, a catch-all for example.org and an alias for
// postmaster@example.net.
func family(t *testing.T) (*fakeStore, *Deliverer) {
	t.Helper()
	fs := newFakeStore("alice@example.org", "bob@example.org", "carol@example.net")
	fs.addAlias("Family@example.org", "alice@example.org", "bob@example.org")
	fs.addAlias("@example.org", "bob@example.org")
	fs.addAlias("postmaster@example.net", "carol@example.net")
	d := New(Options{Store: fs, Aliases: fs, Hostname: "mx.example.org", Domains: []string{"example.org", "example.net"}, MaxMessageSize: 1000})
	return fs, d
}

func names(r *Recipient) []string {
	var out []string
	for _, t := range r.Targets {
		out = append(out, t.Name)
	}
	return out
}

func resolve(t *testing.T, d *Deliverer, addr string) *Recipient {
	t.Helper()
	r, err := d.Resolve(ctx, addr)
	if err != nil {
		t.Fatalf("resolve %s: %v", addr, err)
	}
	return r
}

// TestResolve: an account, then an alias, then postmaster, then the
// catch-all; +detail dropped for each; only local domains.
func TestResolve(t *testing.T) {
	_, d := family(t)
	for _, tt := range []struct {
		addr    string
		via     Via
		alias   string
		targets []string
		err     error
	}{
		{"alice@example.org", ViaAccount, "", []string{"alice@example.org"}, nil},
		{"Alice+news@EXAMPLE.org", ViaAccount, "", []string{"alice@example.org"}, nil},
		{"family@example.org", ViaAlias, "Family@example.org", []string{"alice@example.org", "bob@example.org"}, nil},
		{"FAMILY+school@example.org", ViaAlias, "Family@example.org", []string{"alice@example.org", "bob@example.org"}, nil},
		// postmaster@ without an alias of that name: the postmaster
		// account (the first created), not the catch-all.
		{"postmaster@example.org", ViaPostmaster, "", []string{"alice@example.org"}, nil},
		{"postmaster", ViaPostmaster, "", []string{"alice@example.org"}, nil},
		{"postmaster@example.net", ViaAlias, "postmaster@example.net", []string{"carol@example.net"}, nil},
		{"nobody@example.org", ViaCatchAll, "@example.org", []string{"bob@example.org"}, nil},
		{"nobody+x@Example.ORG", ViaCatchAll, "@example.org", []string{"bob@example.org"}, nil},
		{"nobody@example.net", 0, "", nil, ErrUnknownUser},
		{"alice@other.example", 0, "", nil, ErrNotLocal},
		{"not an address", 0, "", nil, ErrBadAddress},
		{"@example.org", 0, "", nil, ErrBadAddress},
	} {
		r, err := d.Resolve(ctx, tt.addr)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: %v, want %v", tt.addr, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.addr, err)
			continue
		}
		if r.Address != tt.addr || r.Via != tt.via || r.Alias != tt.alias || !slices.Equal(names(r), tt.targets) {
			t.Errorf("%s: %+v (via %s), want via %s alias %q targets %v", tt.addr, r, r.Via, tt.via, tt.alias, tt.targets)
		}
	}

	// Without aliases (a store that keeps none), the same addresses are
	// unknown.
	fs := newFakeStore("alice@example.org")
	d = New(Options{Store: fs, Domains: []string{"example.org"}, Postmaster: "alice@example.org"})
	if _, err := d.Resolve(ctx, "nobody@example.org"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("without aliases: %v", err)
	}
	if r := resolve(t, d, "POSTMASTER@example.org"); r.Via != ViaPostmaster || r.Targets[0].Name != "alice@example.org" {
		t.Errorf("configured postmaster: %+v", r)
	}
}

func deliver(t *testing.T, d *Deliverer, env *Envelope, body string) *Result {
	t.Helper()
	res, err := d.Deliver(ctx, env, strings.NewReader(body))
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	return res
}

// TestTraceHeaders: Return-Path:, the caller's header fields, Received:
// (naming the recipient only when there is one), then the message with
// CRLF line endings.
func TestTraceHeaders(t *testing.T) {
	fs, d := family(t)
	env := &Envelope{From: "sender@remote.example", Recipients: []*Recipient{resolve(t, d, "family+x@example.org")},
		Protocol: "ESMTPS", Helo: "mail.remote.example", RemoteIP: "192.0.2.1", ID: "abc",
		Headers: "Authentication-Results: mx.example.org; spf=pass\r\n"}
	deliver(t, d, env, "Subject: hi\n\nbody\n")
	got := fs.stored["alice@example.org/"][0].body
	want := "Return-Path: <sender@remote.example>\r\n" +
		"Authentication-Results: mx.example.org; spf=pass\r\n" +
		"Received: from mail.remote.example ([192.0.2.1])\r\n\tby mx.example.org (postfach) with ESMTPS id abc\r\n\tfor <family+x@example.org>;\r\n\t"
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "\r\nSubject: hi\r\n\r\nbody\r\n") {
		t.Fatalf("stored:\n%q\nwant prefix\n%q", got, want)
	}
	if b := fs.stored["bob@example.org/"][0].body; b != got {
		t.Fatalf("bob's copy differs from alice's:\n%q\n%q", b, got)
	}

	// Two recipients: no "for"; a null sender; a quoted local part kept,
	// a hostile one defused.
	env = &Envelope{From: `"john doe"@remote.example`, Recipients: []*Recipient{resolve(t, d, "alice@example.org"), resolve(t, d, "carol@example.net")}, Protocol: "local"}
	deliver(t, d, env, "x\n")
	got = fs.stored["carol@example.net/"][0].body
	if !strings.HasPrefix(got, "Return-Path: <\"john doe\"@remote.example>\r\nReceived: by mx.example.org (postfach) with local;\r\n\t") {
		t.Fatalf("stored %q", got)
	}
	env.From = "evil>\r\nBcc: x@y"
	deliver(t, d, env, "x\n")
	if got := fs.stored["carol@example.net/"][1].body; !strings.HasPrefix(got, "Return-Path: <evil???Bcc:?x@y>\r\n") {
		t.Fatalf("stored %q", got)
	}
}

func TestHeaderSafe(t *testing.T) {
	if got := headerSafe("evil\r\nBcc: x"); strings.ContainsAny(got, "\r\n ") {
		t.Errorf("headerSafe kept line breaks: %q", got)
	}
}

// TestOneCopyPerAccount: recipients that are the same account, directly,
// by +detail or through an alias, give it one copy, in both modes.
func TestOneCopyPerAccount(t *testing.T) {
	for _, all := range []bool{false, true} {
		fs, d := family(t)
		rcpts := []*Recipient{resolve(t, d, "family@example.org"), resolve(t, d, "alice+x@example.org"),
			resolve(t, d, "bob@example.org"), resolve(t, d, "nobody@example.org"), resolve(t, d, "carol@example.net")}
		res := deliver(t, d, &Envelope{Recipients: rcpts, AllOrNothing: all}, "Subject: once\n\nx\n")
		for i, e := range res.Errs {
			if e != nil {
				t.Errorf("all %v: recipient %s: %v", all, rcpts[i].Address, e)
			}
		}
		for _, k := range []string{"alice@example.org/", "bob@example.org/", "carol@example.net/"} {
			if n := fs.count(k); n != 1 {
				t.Errorf("all %v: %s has %d copies, want 1", all, k, n)
			}
		}
		// An alias ties its accounts together: without AllOrNothing
		// they are stored in a call of their own.
		calls := []string{"DeliverAll2", "Deliver1"}
		if all {
			calls = []string{"DeliverAll3"}
		}
		if len(res.Targets) != 3 || !slices.Equal(fs.calls, calls) {
			t.Errorf("all %v: targets %+v, store calls %v", all, res.Targets, fs.calls)
		}
		if res.Targets[0].Target.Name != "alice@example.org" || res.Targets[0].Stored.UIDs[0] != 1 {
			t.Errorf("all %v: target result %+v", all, res.Targets[0])
		}
	}
}

// TestAliasStoredTogether: without AllOrNothing, each recipient succeeds
// or fails on its own, but the accounts of an alias (and a recipient
// that shares one of them) are stored together: were one member stored
// and another not, the retry of the alias would give the first a second
// copy.
func TestAliasStoredTogether(t *testing.T) {
	fs, d := family(t)
	boom := errors.New("disk on fire")
	fs.failFor["bob@example.org"] = boom
	rcpts := []*Recipient{resolve(t, d, "carol@example.net"), resolve(t, d, "family@example.org"), resolve(t, d, "alice@example.org")}
	res := deliver(t, d, &Envelope{Recipients: rcpts}, "x\n")
	if res.Errs[0] != nil || !errors.Is(res.Errs[1], boom) || !errors.Is(res.Errs[2], store.ErrNotDelivered) {
		t.Fatalf("errors %v", res.Errs)
	}
	if fs.count("alice@example.org/") != 0 || fs.count("carol@example.net/") != 1 {
		t.Fatalf("stored %v", fs.stored)
	}
	if !slices.Equal(fs.calls, []string{"DeliverAll2", "Deliver1"}) {
		t.Fatalf("store calls %v", fs.calls)
	}
	// Without a failure the same recipients are stored, once each.
	delete(fs.failFor, "bob@example.org")
	res = deliver(t, d, &Envelope{Recipients: rcpts}, "x\n")
	if slices.ContainsFunc(res.Errs, func(e error) bool { return e != nil }) || fs.count("alice@example.org/") != 1 || fs.count("bob@example.org/") != 1 {
		t.Fatalf("errors %v, stored %v", res.Errs, fs.stored)
	}

	// All or nothing: nobody gets it.
	fs, d = family(t)
	fs.failFor["bob@example.org"] = boom
	rcpts = []*Recipient{resolve(t, d, "carol@example.net"), resolve(t, d, "family@example.org")}
	res = deliver(t, d, &Envelope{Recipients: rcpts, AllOrNothing: true}, "x\n")
	if !errors.Is(res.Errs[0], store.ErrNotDelivered) || !errors.Is(res.Errs[1], boom) || len(fs.stored) != 0 {
		t.Fatalf("errors %v, stored %v", res.Errs, fs.stored)
	}
}

// TestTargetMailbox: a recipient can be sent to a mailbox by name or by
// special use (the account's Junk, whatever it is called), with flags;
// the same account in two mailboxes gets two copies.
func TestTargetMailbox(t *testing.T) {
	fs, d := family(t)
	fs.mailboxes[fs.id("bob@example.org")] = []store.Mailbox{{Name: "INBOX"}, {Name: "Spam", SpecialUse: []string{store.UseJunk}}}
	fs.mailboxes[fs.id("carol@example.net")] = []store.Mailbox{{Name: "INBOX"}}
	junk := resolve(t, d, "family@example.org")
	junk.SetSpecialUse(store.UseJunk)
	noJunk := resolve(t, d, "carol@example.net")
	noJunk.SetSpecialUse(store.UseJunk)
	named := resolve(t, d, "alice@example.org")
	named.SetMailbox("Lists")
	sent := resolve(t, d, "alice@example.org")
	sent.SetSpecialUse(store.UseSent)
	sent.Targets[0].Flags = mail.Flags{mail.FlagSeen}
	inbox := resolve(t, d, "alice+x@example.org")
	res := deliver(t, d, &Envelope{Recipients: []*Recipient{junk, noJunk, named, sent, inbox}}, "x\n")
	for k, n := range map[string]int{"alice@example.org/Junk": 1, "bob@example.org/Spam": 1, "carol@example.net/": 1,
		"alice@example.org/Lists": 1, "alice@example.org/Sent": 1, "alice@example.org/": 1} {
		if fs.count(k) != n {
			t.Errorf("%s has %d messages, want %d (%v)", k, fs.count(k), n, fs.stored)
		}
	}
	if f := fs.stored["alice@example.org/Sent"][0].flags; !slices.Equal(f, mail.Flags{mail.FlagSeen}) {
		t.Errorf("flags in Sent %v", f)
	}
	if f := fs.stored["alice@example.org/"][0].flags; len(f) != 0 {
		t.Errorf("flags in INBOX %v", f)
	}
	if slices.ContainsFunc(res.Errs, func(e error) bool { return e != nil }) {
		t.Errorf("errors %v", res.Errs)
	}
	if i := slices.IndexFunc(res.Targets, func(r TargetResult) bool {
		return r.Target.SpecialUse == store.UseJunk && r.Target.Name == "bob@example.org"
	}); i < 0 || res.Targets[i].Target.Mailbox != "Spam" {
		t.Errorf("target results %+v", res.Targets)
	}
}

// TestDeliverErrors: failures that concern the whole message.
func TestDeliverErrors(t *testing.T) {
	fs, d := family(t)
	rcpts := []*Recipient{resolve(t, d, "alice@example.org")}
	if _, err := d.Deliver(ctx, &Envelope{Recipients: rcpts}, strings.NewReader(strings.Repeat("x", 1001))); !errors.Is(err, store.ErrTooBig) {
		t.Errorf("over the size limit: %v", err)
	}
	if _, err := d.Deliver(ctx, &Envelope{Recipients: rcpts}, strings.NewReader(strings.Repeat("x", 1000))); err != nil {
		t.Errorf("at the size limit: %v", err)
	}
	if _, err := d.Deliver(ctx, &Envelope{Recipients: rcpts}, strings.NewReader("")); !errors.Is(err, store.ErrEmptyMessage) {
		t.Errorf("empty: %v", err)
	}
	if _, err := d.Deliver(ctx, &Envelope{}, strings.NewReader("x")); err == nil {
		t.Error("no recipients: no error")
	}
	if _, err := d.Deliver(ctx, &Envelope{Recipients: []*Recipient{{Address: "x@example.org"}}}, strings.NewReader("x")); err == nil {
		t.Error("a recipient without targets: no error")
	}
	if n := fs.count("alice@example.org/"); n != 1 {
		t.Errorf("alice has %d messages, want 1", n)
	}
}

// TestCheckQuotaAlias: an alias is accepted only when every account it
// names can take the message; a member whose quota is smaller than the
// message refuses it for good.
func TestCheckQuotaAlias(t *testing.T) {
	fs, d := family(t)
	r := resolve(t, d, "family@example.org")
	if err := d.CheckQuota(ctx, r, 100); err != nil {
		t.Fatalf("under quota: %v", err)
	}
	fs.usage["bob@example.org"] = store.Usage{Bytes: 1000, Limit: store.Quota{Bytes: 1000}}
	if err := d.CheckQuota(ctx, r, 0); !errors.Is(err, ErrMailboxFull) || !strings.Contains(err.Error(), "bob@example.org") {
		t.Fatalf("one member full: %v", err)
	}
	fs.usage["alice@example.org"] = store.Usage{Limit: store.Quota{Bytes: 50}}
	if err := d.CheckQuota(ctx, r, 100); !errors.Is(err, ErrQuotaTooSmall) || !errors.Is(err, store.ErrOverQuota) {
		t.Fatalf("one member's quota too small: %v", err)
	}
	if err := d.CheckQuota(ctx, resolve(t, d, "carol@example.net"), 100); err != nil {
		t.Fatalf("another account: %v", err)
	}
}

// TestSendAs: an account may send as itself, its +detail forms and the
// aliases that include it, and as postmaster@ when it receives that;
// never through a catch-all, and never as another account.
func TestSendAs(t *testing.T) {
	fs, d := family(t)
	fs.accounts = append(fs.accounts, store.Account{ID: 4, Name: "dave@elsewhere.example", Created: time.Unix(2000, 0)})
	acct := func(name string) *store.Account {
		a, err := fs.Account(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tt := range []struct {
		acct, addr string
		ok         bool
	}{
		{"alice@example.org", "alice@example.org", true},
		{"alice@example.org", "ALICE+news@example.org", true},
		{"alice@example.org", "family@example.org", true},
		{"bob@example.org", "Family+x@example.org", true},
		{"carol@example.net", "family@example.org", false},
		{"alice@example.org", "bob@example.org", false},
		{"alice@example.org", "bob+alice@example.org", false},
		// The catch-all delivers nobody@ to bob; that does not let him
		// send as nobody@.
		{"bob@example.org", "nobody@example.org", false},
		{"alice@example.org", "postmaster@example.org", true},
		{"bob@example.org", "postmaster@example.org", false},
		{"carol@example.net", "postmaster@example.net", true},
		{"alice@example.org", "postmaster@example.net", false},
		{"dave@elsewhere.example", "dave+x@elsewhere.example", true},
		{"alice@example.org", "alice@other.example", false},
		{"alice@example.org", "alice", false},
		{"alice@example.org", "", false},
	} {
		ok, err := d.SendAs(ctx, acct(tt.acct), tt.addr)
		if err != nil || ok != tt.ok {
			t.Errorf("%s as %q: %v %v, want %v", tt.acct, tt.addr, ok, err, tt.ok)
		}
	}
}

// TestCheckAlias: what may be made an alias.
func TestCheckAlias(t *testing.T) {
	_, d := family(t)
	for _, tt := range []struct {
		addr string
		err  error
	}{
		{"team@example.org", nil},
		{"Team@EXAMPLE.net", nil},
		{"@example.org", nil},
		{"postmaster@example.org", nil},
		{"team+x@example.org", ErrBadAddress},
		{"team#phone@example.org", ErrBadAddress},
		{"team@elsewhere.example", ErrNotLocal},
		{"@elsewhere.example", ErrNotLocal},
		{"@", ErrBadAddress},
		{"@@example.org", ErrBadAddress},
		{"a@b@example.org", ErrBadAddress},
		{`"a b"@example.org`, ErrBadAddress},
		{"team", ErrBadAddress},
		{"", ErrBadAddress},
		{"te am@example.org", ErrBadAddress},
	} {
		if err := d.CheckAlias(tt.addr); !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("%q: %v, want %v", tt.addr, err, tt.err)
		}
	}
}
