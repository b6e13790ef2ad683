// Package auth verifies credentials: password hashing (argon2id), a cache of
// recent successful verifications, SASL server mechanisms shared by IMAP,
// POP3 and submission, and the protection against password guessing
// (guard.go): delays and blocks per client (IPv4 address, IPv6 /64), at
// most a short delay per account, so a guesser cannot lock the owner out.
package auth

import (
	"errors"
	"net/netip"

	"github.com/postfach/postfach/internal/store"
)

// Errors returned by Service.Login and SASL exchanges. Protocol servers map
// them to responses; the text they send stays generic.
var (
	// ErrFailed: unknown user or wrong password. Never say which.
	ErrFailed = errors.New("authentication failed")
	// ErrRateLimited: the client is blocked after too many recent
	// failures; it should wait.
	ErrRateLimited = errors.New("too many failed logins, try later")
	// ErrUnavailable: a temporary failure (store error); try again.
	ErrUnavailable = errors.New("authentication temporarily unavailable")
	// ErrMalformed: a SASL response that does not parse.
	ErrMalformed = errors.New("malformed authentication exchange")
	// ErrAborted: the client cancelled a SASL exchange ("*").
	ErrAborted = errors.New("authentication aborted")
)

// Credentials are what a client presents for a password login.
type Credentials struct {
	// Username as typed; "ADDRESS#DEVICE" names a device (see Principal).
	Username string
	Password string
	// Remote is the client's IP, for rate limiting and logs.
	Remote netip.Addr
	// Service is "imap", "pop3" or "submission", for logs and metrics.
	Service string
}

// Principal is an authenticated identity.
type Principal struct {
	Account store.AccountID
	// Name is the account name as stored (not as typed).
	Name string
	// Device is the device that signed in, in lower case: named after "#"
	// in the login name, or found by its password (docs/devices.md); ""
	// for the account password with the plain address.
	Device string
	// Named says that the login name named the device ("ADDRESS#NAME"),
	// rather than its password.
	Named bool
}
