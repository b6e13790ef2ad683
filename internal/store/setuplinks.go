package store

import (
	"context"
	"time"
)

// SetupLink is a device's setup link (docs/devices.md, docs/security.md
// "Device setup links"): the way a new phone fetches its settings and its
// password once, over HTTPS, by a link or QR code. The link carries a
// secret token; the store keeps only the token's hash (ID) and the
// device's password encrypted under a key derived from the token
// (auth.SealSetupPassword), so that neither the database nor a backup of
// it reveals the password, and nothing but the link opens it.
type SetupLink struct {
	// ID is the SHA-256 of the link's token (auth.SetupLinkID).
	ID []byte
	// Account and Device are whose link it is (Device in lower case).
	Account AccountID
	Device  string
	// Sealed is the device's password, encrypted; nil once the link was
	// used, or expired and was wiped.
	Sealed []byte
	// Created and Expires bound the time the link works.
	Created time.Time
	Expires time.Time
	// Used is when the link was used; zero while it was not.
	Used time.Time
}

// SetupLinkKeep is how long a used or expired setup link is remembered
// after it expires, so that opening it again says "used" or "expired"
// rather than "unknown". Only its hash, device and times are kept.
const SetupLinkKeep = 30 * 24 * time.Hour

// SetupLinks is implemented by stores that keep device setup links. A
// device has at most one link at a time: a new one replaces the old, and
// revoking the device (Credentials.RevokeDevice) or deleting the account
// removes it. Methods fail with ErrNotFound for an unknown account.
type SetupLinks interface {
	// AddSetupLink stores l for the device l.Device of l.Account, which
	// must have a password (ErrNotFound otherwise: no such device, or it
	// has none), and deletes that device's earlier links. When
	// passwordHash is not "", the device's password and SCRAM keys are
	// first replaced by passwordHash and scram, in the same transaction (a
	// new password with a new link: `postfach device setup`). It returns
	// the device as it is then.
	AddSetupLink(ctx context.Context, l SetupLink, passwordHash, scram string) (*Device, error)
	// SetupLink returns the link whose ID is id, whether it is pending,
	// used or expired; ErrNotFound when there is none (never made,
	// replaced by a newer one, its device revoked, or forgotten
	// SetupLinkKeep after it expired).
	SetupLink(ctx context.Context, id []byte) (*SetupLink, error)
	// UseSetupLink uses the link whose ID is id at now, once: atomically,
	// a pending link that has not expired (now before Expires) is marked
	// used, its sealed password removed from the store, and returned with
	// Sealed set; of concurrent calls exactly one gets it. A link that was
	// used already, or has expired (its sealed password is then wiped), is
	// returned as it is, without Sealed. ErrNotFound when there is none.
	UseSetupLink(ctx context.Context, id []byte, now time.Time) (*SetupLink, error)
	// ExpireSetupLinks wipes the sealed passwords of the links that have
	// expired at now, and forgets the links that expired SetupLinkKeep
	// before now.
	ExpireSetupLinks(ctx context.Context, now time.Time) error
}
