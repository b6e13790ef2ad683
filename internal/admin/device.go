package admin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/store"
)

// Device is one device of an account (docs/devices.md): a client with a
// password of its own, one that signed in as "ADDRESS#NAME", or a POP3
// device view (issue 5); one name is one device.
type Device struct {
	Name string `json:"name"`
	// Password says the device has a password of its own.
	Password bool `json:"password"`
	// Revoked is when its password was revoked; zero when it was not.
	Revoked time.Time `json:"revoked,omitzero"`
	// The last sign-in: when, from where, by which protocol, with which
	// client (IMAP ID); zero when unknown.
	LastLogin  time.Time `json:"last_login,omitzero"`
	LastRemote string    `json:"last_remote,omitempty"`
	LastProto  string    `json:"last_proto,omitempty"`
	LastClient string    `json:"last_client,omitempty"`
	// Hidden is the number of INBOX messages the device is done with in
	// its POP3 view.
	Hidden int `json:"hidden"`
	// Created is when the device (or its first POP3 view) was made;
	// LastUsed when its POP3 view last changed (zero without one).
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

// NewDevice is the answer to DeviceAdd and DeviceSetup.
type NewDevice struct {
	Device Device `json:"device"`
	// Password is the generated password in its canonical form; it is
	// shown once and kept nowhere in clear.
	Password string `json:"password"`
	// SetupLink is the device's setup link (docs/devices.md), usable once
	// until SetupExpires; "" when setup links are off (listen.web), or
	// when making it failed (SetupError says why; the password works).
	SetupLink    string    `json:"setup_link,omitempty"`
	SetupExpires time.Time `json:"setup_expires,omitzero"`
	SetupError   string    `json:"setup_error,omitempty"`
}

// ErrNoDevice is returned by DeviceForget and DeviceRevoke for a device
// the account does not have.
var ErrNoDevice = errors.New("no such device")

// ErrNoCredentials is returned by the device commands on a store that
// does not keep devices.
var ErrNoCredentials = errors.New("this store does not keep device passwords")

// ErrNoSetupLinks is returned by DeviceSetup when setup links are off: no
// web listener (listen.web), or a store that does not keep them.
var ErrNoSetupLinks = errors.New("setup links are off: they need the web listener (listen.web)")

// canonicalDevice validates a device name and returns it in lower case,
// as the POP3 server stores it (device names are case-insensitive).
func canonicalDevice(device string) (string, error) {
	if !auth.ValidDeviceName(device) {
		return "", fmt.Errorf("%w: %q is not a valid device name (1 to 64 letters, digits, '.', '_', '-')", ErrInvalid, device)
	}
	return strings.ToLower(device), nil
}

// DeviceList implements API.
func (o *Ops) DeviceList(ctx context.Context, name string) ([]Device, error) {
	a, err := o.account(ctx, name)
	if err != nil {
		return nil, err
	}
	byName := map[string]*Device{}
	if o.Credentials != nil {
		devs, err := o.Credentials.Devices(ctx, a.ID)
		if err != nil {
			return nil, fmt.Errorf("devices of %s: %w", a.Name, err)
		}
		for _, d := range devs {
			byName[d.Name] = &Device{Name: d.Name, Password: d.PasswordHash != "", Revoked: d.Revoked, Created: d.Created,
				LastLogin: d.LastLogin, LastRemote: d.LastRemote, LastProto: d.LastProto, LastClient: d.LastClient}
		}
	}
	views, err := o.Store.POP3Views(ctx, a.ID)
	if err != nil {
		return nil, fmt.Errorf("devices of %s: %w", a.Name, err)
	}
	for _, v := range views {
		if v.Device == "" {
			continue // the plain maildrop's hidden set (pop3.delete=hide)
		}
		d := byName[v.Device]
		if d == nil {
			d = &Device{Name: v.Device, Created: v.Created}
			byName[v.Device] = d
		}
		d.Hidden += v.Hidden.Len()
		if v.LastUsed.After(d.LastUsed) {
			d.LastUsed = v.LastUsed
		}
		if d.Created.IsZero() || v.Created.Before(d.Created) {
			d.Created = v.Created
		}
	}
	out := make([]Device, 0, len(byName))
	for _, d := range byName {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeviceForget implements API.
func (o *Ops) DeviceForget(ctx context.Context, name, device string) error {
	dev, err := canonicalDevice(device)
	if err != nil {
		return err
	}
	a, err := o.account(ctx, name)
	if err != nil {
		return err
	}
	found := false
	switch err := o.Store.ForgetPOP3View(ctx, a.ID, dev); {
	case err == nil:
		found = true
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("forget device %s of %s: %w", dev, a.Name, err)
	}
	if o.Credentials != nil {
		switch err := o.Credentials.ForgetDevice(ctx, a.ID, dev); {
		case err == nil:
			found = true
		case errors.Is(err, store.ErrExists):
			found = true // it has a password: it stays, only its views go
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("forget device %s of %s: %w", dev, a.Name, err)
		}
	}
	if !found {
		return fmt.Errorf("%w: %s has no device %q", ErrNoDevice, a.Name, dev)
	}
	return nil
}

// DeviceAdd implements API.
func (o *Ops) DeviceAdd(ctx context.Context, name, device string) (*NewDevice, error) {
	dev, err := canonicalDevice(device)
	if err != nil {
		return nil, err
	}
	if o.Credentials == nil {
		return nil, ErrNoCredentials
	}
	a, err := o.account(ctx, name)
	if err != nil {
		return nil, err
	}
	pw, d, err := auth.AddDevice(ctx, o.Credentials, a, dev)
	if errors.Is(err, store.ErrExists) {
		return nil, fmt.Errorf("%s has a device %q with a password already (revoke it first to give it a new one): %w", a.Name, dev, err)
	}
	if err != nil {
		return nil, err
	}
	nd := &NewDevice{Password: pw, Device: newDeviceInfo(d)}
	if o.setupLinksOn() {
		// The device exists with its password now; a link that cannot be
		// made is reported beside it (device setup makes another).
		if err := o.addSetupLink(ctx, a, dev, pw, "", "", nd); err != nil {
			nd.SetupError = err.Error()
			if o.Logger != nil {
				o.Logger.Error("could not make a setup link", "user", a.Name, "device", dev, "err", err)
			}
		}
	}
	if o.Logger != nil {
		o.Logger.Info("device added", "user", a.Name, "device", dev, "setup_link", nd.SetupLink != "")
	}
	return nd, nil
}

func newDeviceInfo(d *store.Device) Device {
	return Device{Name: d.Name, Password: d.PasswordHash != "", Created: d.Created, Revoked: d.Revoked,
		LastLogin: d.LastLogin, LastRemote: d.LastRemote, LastProto: d.LastProto, LastClient: d.LastClient}
}

func (o *Ops) setupLinksOn() bool { return o.SetupLinks != nil && o.SetupURL != "" }

func (o *Ops) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// addSetupLink makes a setup link for a device whose password is pw and
// stores it (with the new password's hash and scram keys when hash is not
// ""), filling in nd.
func (o *Ops) addSetupLink(ctx context.Context, a *store.Account, dev, pw, hash, scram string, nd *NewDevice) error {
	token, link, err := auth.NewSetupLink(a.ID, dev, pw, o.now())
	if err != nil {
		return err
	}
	d, err := o.SetupLinks.AddSetupLink(ctx, link, hash, scram)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s has no device %q with a password (give it one with postfach device add %s %s)",
			ErrNoDevice, a.Name, dev, a.Name, dev)
	}
	if err != nil {
		return err
	}
	nd.Device = newDeviceInfo(d)
	nd.SetupLink = strings.TrimSuffix(o.SetupURL, "/") + "/setup/" + token
	nd.SetupExpires = link.Expires
	return nil
}

// DeviceSetup implements API.
func (o *Ops) DeviceSetup(ctx context.Context, name, device string) (*NewDevice, error) {
	dev, err := canonicalDevice(device)
	if err != nil {
		return nil, err
	}
	if o.Credentials == nil {
		return nil, ErrNoCredentials
	}
	if !o.setupLinksOn() {
		return nil, ErrNoSetupLinks
	}
	a, err := o.account(ctx, name)
	if err != nil {
		return nil, err
	}
	pw, hash, scram, err := auth.NewDevicePassword(ctx, o.Credentials, a)
	if err != nil {
		return nil, err
	}
	nd := &NewDevice{Password: pw}
	if err := o.addSetupLink(ctx, a, dev, pw, hash, scram, nd); err != nil {
		return nil, err
	}
	if o.Auth != nil {
		o.Auth.Invalidate(a.Name)
	}
	if o.Logger != nil {
		o.Logger.Info("device given a new password and setup link", "user", a.Name, "device", dev)
	}
	return nd, nil
}

// DeviceRevoke implements API. The store publishes EventDeviceRevoked,
// which ends the device's sessions.
func (o *Ops) DeviceRevoke(ctx context.Context, name, device string) error {
	dev, err := canonicalDevice(device)
	if err != nil {
		return err
	}
	if o.Credentials == nil {
		return ErrNoCredentials
	}
	a, err := o.account(ctx, name)
	if err != nil {
		return err
	}
	if err := o.Credentials.RevokeDevice(ctx, a.ID, dev); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %s has no device %q", ErrNoDevice, a.Name, dev)
		}
		return err
	}
	if o.Logger != nil {
		o.Logger.Info("device revoked", "user", a.Name, "device", dev)
	}
	return nil
}

// DeviceList implements API.
func (c *Client) DeviceList(ctx context.Context, name string) ([]Device, error) {
	resp, err := c.do(ctx, &Request{Op: "device.list", Name: name}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Devices, nil
}

// DeviceForget implements API.
func (c *Client) DeviceForget(ctx context.Context, name, device string) error {
	_, err := c.do(ctx, &Request{Op: "device.forget", Name: name, Device: device}, nil)
	return err
}

// DeviceAdd implements API.
func (c *Client) DeviceAdd(ctx context.Context, name, device string) (*NewDevice, error) {
	resp, err := c.do(ctx, &Request{Op: "device.add", Name: name, Device: device}, nil)
	if err != nil {
		return nil, err
	}
	if resp.NewDevice == nil {
		return nil, errors.New("admin socket: device.add answer without the device")
	}
	return resp.NewDevice, nil
}

// DeviceSetup implements API.
func (c *Client) DeviceSetup(ctx context.Context, name, device string) (*NewDevice, error) {
	resp, err := c.do(ctx, &Request{Op: "device.setup", Name: name, Device: device}, nil)
	if err != nil {
		return nil, err
	}
	if resp.NewDevice == nil {
		return nil, errors.New("admin socket: device.setup answer without the device")
	}
	return resp.NewDevice, nil
}

// DeviceRevoke implements API.
func (c *Client) DeviceRevoke(ctx context.Context, name, device string) error {
	_, err := c.do(ctx, &Request{Op: "device.revoke", Name: name, Device: device}, nil)
	return err
}
