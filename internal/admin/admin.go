// Package admin implements postfach's administrative operations (accounts,
// local delivery, store check) once, and carries them over the admin
// socket: a unix socket in the data directory (mode 0600) through which the
// CLI reaches a running server, so that its changes raise store events
// (IDLE wakes up, a new password takes effect at once).
//
// API is the set of operations. Ops implements it on a store directly (the
// server uses it behind the socket, the CLI when no server runs); Client
// implements it over the socket.
//
// # Wire protocol
//
// One request per connection. The client sends one JSON Request on a line;
// for "deliver" the raw message follows and the client half-closes its
// side at the end. The server answers with one JSON Response line and
// closes.
package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/backup"
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// SocketName is the admin socket's file name inside the data directory.
const SocketName = "admin.sock"

// User is one account as listed by UserList.
type User struct {
	Name string `json:"name"`
	// Inbox is the number of messages in INBOX.
	Inbox    int               `json:"inbox"`
	Created  time.Time         `json:"created"`
	Settings map[string]string `json:"settings,omitempty"`
}

// DeliverRequest is a local delivery (`postfach deliver`).
type DeliverRequest struct {
	To []string `json:"to"`
	// From sets Return-Path; "" is the null sender.
	From string `json:"from,omitempty"`
	// Mailbox is the destination; "" is INBOX (a missing mailbox falls back
	// to INBOX).
	Mailbox string `json:"mailbox,omitempty"`
}

// DeliverResult reports a local delivery.
type DeliverResult struct {
	// Errs has one entry per recipient, "" when delivered.
	Errs []string `json:"errs"`
	// Codes has one error code per recipient (see ErrorCode), "" when
	// delivered.
	Codes []string `json:"codes"`
}

// API is the set of admin operations.
type API interface {
	// UserAdd creates an account with the default mailboxes. The
	// password is stored as an argon2id hash and SCRAM keys (auth package);
	// it crosses the admin socket, which only the server's user and root
	// may use, because the SCRAM keys must share the account's salt.
	UserAdd(ctx context.Context, name, password string) error
	// UserPasswd replaces an account's password.
	UserPasswd(ctx context.Context, name, password string) error
	// UserDel deletes an account and its mail and ends its sessions.
	UserDel(ctx context.Context, name string) error
	// UserList lists the accounts.
	UserList(ctx context.Context) ([]User, error)
	// UserSet sets (or with value "" clears) a per-account setting.
	UserSet(ctx context.Context, name, key, value string) error
	// UserQuota returns what an account's mail takes and its quota.
	UserQuota(ctx context.Context, name string) (*store.Usage, error)
	// UserSetQuota sets an account's own quota (store.SetQuota).
	UserSetQuota(ctx context.Context, name string, q store.Quota) error
	// Deliver delivers one message read from body.
	Deliver(ctx context.Context, req DeliverRequest, body io.Reader) (*DeliverResult, error)
	// Check verifies the store.
	Check(ctx context.Context) ([]store.Problem, error)
	// AliasAdd adds accounts (targets) to the alias address, creating it;
	// "@domain" is the domain's catch-all. Targets must be accounts of
	// this server: not other aliases, not addresses elsewhere
	// (ErrInvalid). An account's address cannot be an alias (ErrInvalid).
	// It returns the alias as it is then.
	AliasAdd(ctx context.Context, address string, targets []string) (*Alias, error)
	// AliasDel removes targets from the alias, or the whole alias when
	// none are named, and returns what is left (nil when it is gone).
	// store.ErrNotFound for an unknown alias or target.
	AliasDel(ctx context.Context, address string, targets []string) (*Alias, error)
	// AliasList lists the aliases: all ("" filter), those of a domain
	// (its catch-all included), or for an address the alias of that
	// address and the aliases that deliver to that account.
	AliasList(ctx context.Context, filter string) ([]Alias, error)
	// QueueList lists the outbound queue.
	QueueList(ctx context.Context) ([]QueueEntry, error)
	// QueueShow returns one entry of it; store.ErrNotFound when there is
	// none.
	QueueShow(ctx context.Context, id string) (*QueueEntry, error)
	// QueueRetry makes the entry (every entry for id "") due now and
	// returns how many it changed.
	QueueRetry(ctx context.Context, id string) (int, error)
	// QueueDrop removes an entry without telling its sender.
	QueueDrop(ctx context.Context, id string) error
	// DeviceList lists an account's devices: those with passwords, those
	// that signed in as ADDRESS#NAME, and POP3 device views.
	DeviceList(ctx context.Context, name string) ([]Device, error)
	// DeviceForget removes a device's POP3 views (the device is offered
	// everything in INBOX again at its next login), and the device itself
	// when it has no password. ErrNoDevice if there is nothing to remove.
	DeviceForget(ctx context.Context, name, device string) error
	// DeviceAdd gives a device a generated password and returns it; it is
	// not kept anywhere but as a hash. ErrExists when the device has a
	// password.
	DeviceAdd(ctx context.Context, name, device string) (*NewDevice, error)
	// DeviceRevoke removes a device's password and ends its sessions.
	// ErrNoDevice for an unknown device.
	DeviceRevoke(ctx context.Context, name, device string) error
	// DeviceSetup gives a device that has a password a new one, with a
	// new setup link (the old password is not kept in clear, so a new
	// link needs a new password); the device's earlier link stops
	// working. ErrNoDevice when the device has no password;
	// ErrNoSetupLinks when setup links are off.
	DeviceSetup(ctx context.Context, name, device string) (*NewDevice, error)
	// Backup writes a backup of the store into the backup root dest (an
	// absolute path), beside the backups there (backup.Backup).
	Backup(ctx context.Context, dest string) (*BackupResult, error)
	// Restore adds what sel names from the backup src (an absolute path)
	// to the store: a partial restore (backup.RestorePartial).
	Restore(ctx context.Context, src string, sel backup.Selection) (*backup.PartialResult, error)
	// Undelete lists an account's retained expunged messages, or brings
	// them back (backup.Undelete).
	Undelete(ctx context.Context, req backup.UndeleteRequest) (*backup.UndeleteResult, error)
	// Import brings an mbox file, a Maildir or a tree of them into an
	// account (backup.Import); req.Path is an absolute path outside the
	// data directory.
	Import(ctx context.Context, req backup.ImportRequest) (*backup.ImportResult, error)
	// Export writes an account's mailboxes as mbox files or Maildir++
	// (backup.Export) into req.Dest, an absolute path outside the data
	// directory.
	Export(ctx context.Context, req backup.ExportRequest) (*backup.ExportResult, error)
	// DKIMKeygen makes the DKIM keys of a local domain (an RSA and an
	// ed25519 one, selectors SELECTOR-rsa and SELECTOR-ed25519; ""
	// means msgauth.DefaultSelector) and returns them with their DNS
	// records. store.ErrExists when the domain has keys of that selector.
	DKIMKeygen(ctx context.Context, domain, selector string) ([]DKIMKey, error)
	// DKIMList lists the DKIM keys of domain, or of every domain ("").
	DKIMList(ctx context.Context, domain string) ([]DKIMKey, error)
	// DKIMDelete deletes the key of domain with the selector, or both
	// keys keygen made with it; it returns the keys deleted.
	// store.ErrNotFound when there is none.
	DKIMDelete(ctx context.Context, domain, selector string) ([]DKIMKey, error)
}

// Errors reported by the operations, matched with errors.Is on both sides
// of the socket (see ErrorCode).
var (
	ErrBadRequest = errors.New("bad request")
	ErrInvalid    = errors.New("invalid argument")
	// ErrForbidden refuses a client of another user on the admin socket.
	ErrForbidden = errors.New("permission denied")
)

// Ops implements API directly on a store.
type Ops struct {
	Store store.Store
	// Credentials keeps devices and SCRAM keys (the store, usually); nil
	// means the device commands fail and no SCRAM keys are made.
	Credentials store.Credentials
	// Aliases keeps aliases (the store, usually); nil means the alias
	// commands fail.
	Aliases store.Aliases
	// DKIMKeys keeps DKIM signing keys (the store, usually); nil means
	// the dkim commands fail.
	DKIMKeys store.DKIMKeys
	// Auth, when set, has its cached verifications dropped on password
	// changes and deletions.
	Auth      *auth.Service
	Deliverer *delivery.Deliverer
	// Logger, when set, logs deliveries.
	Logger *slog.Logger
	// Delivered, when set, is called after each delivery that reached the
	// store (a metrics hook, like smtpserver.Metrics.Delivered).
	Delivered func(proto string, ok, failed int, d time.Duration)
	// SetupLinks keeps device setup links, and SetupURL is the public
	// address of listen.web (web.public_url) the links start with; either
	// unset means device add makes no setup link (listen.web is off).
	SetupLinks store.SetupLinks
	SetupURL   string
	// Now is the clock of setup links and queue retries; nil means
	// time.Now.
	Now func() time.Time
	// BackupDone, when set, is told the outcome of each Backup (a
	// metrics hook).
	BackupDone func(start time.Time, res *backup.Result, err error)
	// Queue is the running outbound queue; nil when no server runs (the
	// queue commands then work on the store alone).
	Queue QueueRunner
}

var _ API = (*Ops)(nil)

func validName(name string) error {
	a, err := mail.ParseAddress(name)
	if err != nil || strings.ContainsAny(name, "#+") {
		return fmt.Errorf("%w: %q is not a valid account address (want local@domain, without + or #)", ErrInvalid, name)
	}
	_ = a
	return nil
}

// UserAdd implements API.
func (o *Ops) UserAdd(ctx context.Context, name, password string) error {
	if err := validName(name); err != nil {
		return err
	}
	if o.Aliases != nil {
		// An account would take the alias's mail (accounts come first):
		// say so rather than change where its mail goes.
		if a, err := o.Aliases.Alias(ctx, name); err == nil {
			return fmt.Errorf("%w: %s is an alias (of %s); delete it first (postfach alias del %s)",
				ErrInvalid, name, strings.Join(aliasOf(a).Targets, ", "), a.Address)
		}
	}
	if password == "" {
		return fmt.Errorf("%w: empty password", ErrInvalid)
	}
	hash, scram, err := auth.AccountPassword(ctx, o.Credentials, nil, password)
	if err != nil {
		return err
	}
	// The store's errors say what failed and for which account; the
	// caller names the account again, so nothing is added here (issue 11:
	// error texts that repeat themselves).
	a, err := o.Store.CreateAccount(ctx, name, hash)
	if err != nil {
		return err
	}
	o.setSCRAM(ctx, a, hash, scram)
	return nil
}

// setSCRAM stores the SCRAM keys of a password just set. A failure leaves
// the account without them until its next PLAIN or LOGIN sign-in, so it is
// only logged.
func (o *Ops) setSCRAM(ctx context.Context, a *store.Account, hash, scram string) {
	if o.Credentials == nil {
		return
	}
	if _, err := o.Credentials.SetAccountSCRAM(ctx, a.ID, hash, scram); err != nil && o.Logger != nil {
		o.Logger.Warn("could not store scram keys", "user", a.Name, "err", err)
	}
}

func (o *Ops) account(ctx context.Context, name string) (*store.Account, error) {
	return o.Store.Account(ctx, name)
}

// UserPasswd implements API.
func (o *Ops) UserPasswd(ctx context.Context, name, password string) error {
	if password == "" {
		return fmt.Errorf("%w: empty password", ErrInvalid)
	}
	a, err := o.account(ctx, name)
	if err != nil {
		return err
	}
	hash, scram, err := auth.AccountPassword(ctx, o.Credentials, a, password)
	if err != nil {
		return err
	}
	if err := o.Store.SetPassword(ctx, a.ID, hash); err != nil {
		return err
	}
	o.setSCRAM(ctx, a, hash, scram)
	if o.Auth != nil {
		o.Auth.Invalidate(a.Name)
	}
	return nil
}

// UserDel implements API. The store publishes EventAccountDeleted, which
// ends the account's sessions.
func (o *Ops) UserDel(ctx context.Context, name string) error {
	a, err := o.account(ctx, name)
	if err != nil {
		return err
	}
	if err := o.Store.DeleteAccount(ctx, a.ID); err != nil {
		return err
	}
	if o.Auth != nil {
		o.Auth.Invalidate(a.Name)
	}
	return nil
}

// UserList implements API.
func (o *Ops) UserList(ctx context.Context) ([]User, error) {
	accts, err := o.Store.Accounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	out := make([]User, len(accts))
	for i, a := range accts {
		out[i] = User{Name: a.Name, Created: a.Created, Settings: a.Settings}
		if mb, err := o.Store.Mailbox(ctx, a.ID, "INBOX"); err == nil {
			if st, err := o.Store.Status(ctx, a.ID, mb.ID); err == nil {
				out[i].Inbox = st.Messages
			}
		}
	}
	return out, nil
}

// UserSet implements API.
func (o *Ops) UserSet(ctx context.Context, name, key, value string) error {
	if err := config.ValidateAccountSetting(key, value); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	a, err := o.account(ctx, name)
	if err != nil {
		return err
	}
	if err := o.Store.SetAccountSetting(ctx, a.ID, key, value); err != nil {
		return err
	}
	return nil
}

// Deliver implements API. Recipients that do not resolve get their error in
// the result; the message is stored once for the others, for all of them
// or, when storing fails for one, for none.
func (o *Ops) Deliver(ctx context.Context, req DeliverRequest, body io.Reader) (*DeliverResult, error) {
	if len(req.To) == 0 {
		return nil, fmt.Errorf("%w: no recipient", ErrInvalid)
	}
	res := &DeliverResult{Errs: make([]string, len(req.To)), Codes: make([]string, len(req.To))}
	env := &delivery.Envelope{From: req.From, Protocol: "local", ID: "local"}
	var idx []int
	for i, to := range req.To {
		r, err := o.Deliverer.Resolve(ctx, to)
		if err == nil {
			// As at SMTP's RCPT; the size is not known yet.
			err = o.Deliverer.CheckQuota(ctx, r, 0)
		}
		if err != nil {
			res.Errs[i], res.Codes[i] = err.Error(), ErrorCode(err)
			continue
		}
		r.SetMailbox(req.Mailbox)
		env.Recipients = append(env.Recipients, r)
		idx = append(idx, i)
	}
	if len(env.Recipients) == 0 {
		// Consume the input anyway, so a pipe writer is not left hanging.
		_, _ = io.Copy(io.Discard, body)
		return res, nil
	}
	// `postfach deliver` has one exit status for all its recipients, like
	// SMTP's one reply: store for all or none, so that a retry after a
	// failure does not give the others a second copy.
	env.AllOrNothing = len(env.Recipients) > 1
	start := time.Now()
	dr, err := o.Deliverer.Deliver(ctx, env, body)
	if err != nil {
		if o.Logger != nil {
			o.Logger.Info("message refused", "proto", "local", "from", req.From, "err", err)
		}
		return nil, err
	}
	ok, failed := 0, 0
	for j, e := range dr.Errs {
		if e != nil {
			res.Errs[idx[j]], res.Codes[idx[j]] = e.Error(), ErrorCode(e)
			failed++
		} else {
			ok++
		}
	}
	took := time.Since(start)
	if o.Logger != nil {
		o.Logger.Info("message delivered", "proto", "local", "from", req.From, "rcpts", ok, "failed", failed,
			"size", dr.Size, "blob", dr.BlobID, "took", took.Round(time.Microsecond))
	}
	if o.Delivered != nil {
		o.Delivered("local", ok, failed, took)
	}
	return res, nil
}

// Check implements API.
func (o *Ops) Check(ctx context.Context) ([]store.Problem, error) {
	return o.Store.Check(ctx)
}

// codes maps sentinel errors to wire codes and back.
var codes = []struct {
	code string
	err  error
}{
	{"not_found", store.ErrNotFound},
	{"exists", store.ErrExists},
	{"too_big", store.ErrTooBig},
	{"disk_full", store.ErrDiskFull},
	{"empty", store.ErrEmptyMessage},
	{"not_delivered", store.ErrNotDelivered},
	{"mailbox_full", delivery.ErrMailboxFull},
	{"quota_too_small", delivery.ErrQuotaTooSmall},
	{"over_quota", store.ErrOverQuota},
	{"closed", store.ErrClosed},
	{"unknown_user", delivery.ErrUnknownUser},
	{"not_local", delivery.ErrNotLocal},
	{"bad_address", delivery.ErrBadAddress},
	{"invalid", ErrInvalid},
	{"bad_request", ErrBadRequest},
	{"no_device", ErrNoDevice},
	{"no_credentials", ErrNoCredentials},
	{"no_setup_links", ErrNoSetupLinks},
	{"forbidden", ErrForbidden},
}

// ErrorCode returns the wire code of err ("" for nil, "error" for an error
// without a sentinel).
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "error"
}

// remoteError is an error received over the socket; it matches its
// sentinel with errors.Is.
type remoteError struct {
	msg  string
	code string
}

func (e *remoteError) Error() string { return e.msg }

func (e *remoteError) Is(target error) bool {
	for _, c := range codes {
		if c.code == e.code && c.err == target {
			return true
		}
	}
	return false
}

// ErrorFromCode rebuilds an error from its message and wire code.
func ErrorFromCode(msg, code string) error {
	if code == "" {
		return nil
	}
	return &remoteError{msg: msg, code: code}
}
