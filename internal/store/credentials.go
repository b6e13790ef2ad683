package store

import (
	"context"
	"time"
)

// Device is a client of an account known by name (docs/devices.md): a
// phone, a laptop. A device may have a password of its own, and it is the
// same thing as the POP3 views of that name (POP3View.Device): the device
// "phone" and the POP3 view "phone" are one.
type Device struct {
	// Name is the device's name in lower case (1 to 64 letters, digits,
	// ".", "_", "-").
	Name string
	// PasswordHash is the hash of the device's generated password, in the
	// auth package's format; "" when the device has none (it was never
	// given one, or it was revoked).
	PasswordHash string
	// SCRAM holds the SCRAM-SHA-256 keys of that password (auth's
	// format); "" when none.
	SCRAM   string
	Created time.Time
	// Revoked is when the device's password was revoked; zero when it was
	// not (or was given a new one since).
	Revoked time.Time
	// The last sign-in of the device: when, from which address, by which
	// protocol ("imap", "pop3"), and the client's name as it gave it
	// (IMAP ID, RFC 2971); zero values when unknown.
	LastLogin  time.Time
	LastRemote string
	LastProto  string
	LastClient string
}

// DeviceLogin is one sign-in of a device, for RecordDeviceLogin.
type DeviceLogin struct {
	At     time.Time
	Remote string
	Proto  string
}

// Credentials is implemented by stores that keep sign-in secrets besides
// the account's password hash: devices with passwords of their own, and the
// SCRAM keys of the account password (RFC 5802 §3: what a server keeps so
// that it never needs the password). Its methods fail with ErrNotFound for
// an unknown account.
type Credentials interface {
	// AccountSCRAM returns the SCRAM keys of the account's current
	// password, "" when none were stored for it (SetAccountSCRAM binds
	// them to the password hash; a later SetPassword makes them void).
	AccountSCRAM(ctx context.Context, acct AccountID) (string, error)
	// SetAccountSCRAM stores SCRAM keys for the account password whose
	// hash is passwordHash. When the account's hash is no longer
	// passwordHash (the password changed meanwhile) nothing is stored and
	// ok is false.
	SetAccountSCRAM(ctx context.Context, acct AccountID, passwordHash, scram string) (ok bool, err error)

	// AddDevice gives a device a password: it creates the device, or sets
	// the password of one that has none (a device known from its POP3
	// views or its logins as ADDRESS#NAME, or a revoked one, which is then
	// no longer revoked). ErrExists when the device has a password.
	AddDevice(ctx context.Context, acct AccountID, name, passwordHash, scram string) (*Device, error)
	// Devices lists the account's devices by name. Devices known only
	// from POP3 views are not listed (POP3Views lists those).
	Devices(ctx context.Context, acct AccountID) ([]Device, error)
	// RevokeDevice removes a device's password and SCRAM keys, marks it
	// revoked and publishes EventDeviceRevoked (Event.Name is the device):
	// the device's sessions end; a store that keeps SetupLinks removes the
	// device's setup link in the same transaction. The device keeps its
	// POP3 views and its record of sign-ins. A device known only from POP3 views is recorded
	// as revoked. ErrNotFound when the account has no device or POP3 view
	// of that name.
	RevokeDevice(ctx context.Context, acct AccountID, name string) error
	// RecordDeviceLogin notes a sign-in of a device, creating the device
	// (without a password) when it is new. It need not be durable when it
	// returns.
	RecordDeviceLogin(ctx context.Context, acct AccountID, name string, l DeviceLogin) error
	// SetDeviceClient records the name a device's client gave (IMAP ID).
	// An unknown device is ignored.
	SetDeviceClient(ctx context.Context, acct AccountID, name, client string) error
	// ForgetDevice removes a device that has no password (its record of
	// sign-ins, a revocation). ErrNotFound when there is no such device;
	// ErrExists when it has a password (revoke it first).
	ForgetDevice(ctx context.Context, acct AccountID, name string) error
}
