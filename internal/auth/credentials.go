package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/postfach/postfach/internal/store"
)

// accountSalt returns the SCRAM salt and iteration count that new
// credentials of the account use: those of its password's keys, else of
// its devices' keys, else new ones. Sharing them lets one SCRAM exchange
// check every credential of the account (scram.go).
func accountSalt(acctSCRAM string, devs []store.Device) ([]byte, int) {
	if k, err := parseSCRAM(acctSCRAM); err == nil {
		return k.salt, k.iter
	}
	for _, d := range devs {
		if k, err := parseSCRAM(d.SCRAM); err == nil {
			return k.salt, k.iter
		}
	}
	return newSCRAMSalt(), ScramIterations
}

// AccountPassword returns the stored forms of a new password for an
// account: its argon2id hash, and its SCRAM keys salted like the account's
// other credentials (acct may be nil for a new account, and creds nil for
// a store without them; the keys are then salted afresh).
func AccountPassword(ctx context.Context, creds store.Credentials, acct *store.Account, password string) (hash, scram string, err error) {
	hash, err = HashPassword(password)
	if err != nil {
		return "", "", err
	}
	var cur string
	var devs []store.Device
	if creds != nil && acct != nil {
		if cur, err = creds.AccountSCRAM(ctx, acct.ID); err != nil {
			return "", "", err
		}
		if devs, err = creds.Devices(ctx, acct.ID); err != nil {
			return "", "", err
		}
	}
	salt, iter := accountSalt(cur, devs)
	return hash, ComputeSCRAM(password, salt, iter), nil
}

// AddDevice gives a device of an account a new generated password and
// returns it (canonical form; FormatDevicePassword shows it in groups). The
// password is stored hashed (device.go) with its SCRAM keys.
func AddDevice(ctx context.Context, creds store.Credentials, acct *store.Account, name string) (string, *store.Device, error) {
	if !ValidDeviceName(name) {
		return "", nil, fmt.Errorf("invalid device name %q", name)
	}
	pw, hash, scram, err := NewDevicePassword(ctx, creds, acct)
	if err != nil {
		return "", nil, err
	}
	d, err := creds.AddDevice(ctx, acct.ID, strings.ToLower(name), hash, scram)
	if err != nil {
		return "", nil, err
	}
	return pw, d, nil
}

// NewDevicePassword generates a device password for an account and returns
// it (canonical form) with its stored forms: the hash (device.go) and the
// SCRAM keys, salted like the account's other credentials.
func NewDevicePassword(ctx context.Context, creds store.Credentials, acct *store.Account) (pw, hash, scram string, err error) {
	cur, err := creds.AccountSCRAM(ctx, acct.ID)
	if err != nil {
		return "", "", "", err
	}
	devs, err := creds.Devices(ctx, acct.ID)
	if err != nil {
		return "", "", "", err
	}
	salt, iter := accountSalt(cur, devs)
	pw = GenerateDevicePassword()
	return pw, HashDevicePassword(pw), ComputeSCRAM(pw, salt, iter), nil
}

// upgradeSCRAM stores SCRAM keys for an account that has none (made before
// SCRAM, or whose keys were lost), after a successful login with its
// password (PLAIN, LOGIN, USER/PASS): the only moment the server has the
// password. A failure is only logged; the next login tries again.
func (s *Service) upgradeSCRAM(ctx context.Context, acct *store.Account, devs []store.Device, password string) {
	if s.creds == nil {
		return
	}
	cur, err := s.creds.AccountSCRAM(ctx, acct.ID)
	if err != nil || cur != "" {
		return
	}
	salt, iter := accountSalt("", devs)
	if _, err := s.creds.SetAccountSCRAM(ctx, acct.ID, acct.PasswordHash, ComputeSCRAM(password, salt, iter)); err != nil {
		s.log.Warn("could not store scram keys", "user", acct.Name, "err", err)
		return
	}
	s.log.Info("scram keys computed for an account that had none", "user", acct.Name)
}

// candidates are what a SCRAM exchange checks the client's proof against.
type candidates struct {
	account string         // the address as typed, without "#NAME"
	device  string         // the device named with "#NAME", lower case
	acct    *store.Account // nil: fail at the end (unknown user, no keys)
	salt    []byte
	iter    int
	keys    []scramKeys
	devices []string // per key: its device, "" for the account password
	// failReason is logged when the proof matches no key.
	failReason string
}

// scramCandidates finds the SCRAM keys that may sign in as username. A
// user that does not exist, or has no keys that may sign in this way, gets
// a fake salt that is stable and a dummy key, so that the exchange goes on
// and fails at the end like a wrong password (RFC 5802 §9).
func (s *Service) scramCandidates(ctx context.Context, username string) (candidates, error) {
	name, device := SplitDevice(username)
	c := candidates{account: name, device: strings.ToLower(device)}
	fake := func(reason string) (candidates, error) {
		c.acct, c.salt, c.iter = nil, s.fakeSalt(name), ScramIterations
		c.keys, c.devices = []scramKeys{dummySCRAM}, []string{""}
		c.failReason = reason
		return c, nil
	}
	acct, err := s.store.Account(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return fake("unknown user")
	}
	if err != nil {
		s.log.Error("scram: account lookup failed", "err", err)
		return c, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if s.creds == nil {
		return fake("no scram keys")
	}
	acctSCRAM, err := s.creds.AccountSCRAM(ctx, acct.ID)
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	devs, err := s.creds.Devices(ctx, acct.ID)
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	type cred struct {
		device string
		k      scramKeys
	}
	var all []cred
	if s.accountPasswordRefused(acct, devs, c.device) == "" {
		if k, err := parseSCRAM(acctSCRAM); err == nil {
			all = append(all, cred{"", k})
		}
	}
	for _, d := range devs {
		if d.SCRAM == "" || c.device != "" && d.Name != c.device {
			continue
		}
		if k, err := parseSCRAM(d.SCRAM); err == nil {
			all = append(all, cred{d.Name, k})
		}
	}
	if len(all) == 0 {
		return fake("no scram keys for this sign-in (log in once with PLAIN or LOGIN, or set the password again)")
	}
	// One salt per exchange: the first credential's (the account
	// password's when it may sign in); keys made with another salt cannot
	// be checked in this exchange.
	c.acct, c.salt, c.iter = acct, all[0].k.salt, all[0].k.iter
	for _, cr := range all {
		if cr.k.iter == c.iter && bytes.Equal(cr.k.salt, c.salt) {
			c.keys = append(c.keys, cr.k)
			c.devices = append(c.devices, cr.device)
		}
	}
	c.failReason = "wrong password"
	return c, nil
}
