package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/store"
)

// Device is one POP3 device view of an account (issue 5): a client that
// logs in as "ADDRESS#DEVICE" and is offered INBOX minus what it has
// retrieved and deleted.
type Device struct {
	Name string `json:"name"`
	// Hidden is the number of INBOX messages the device is done with.
	Hidden   int       `json:"hidden"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"`
}

// ErrNoDevice is returned by DeviceForget for a device without state.
var ErrNoDevice = errors.New("no such device")

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
	views, err := o.Store.POP3Views(ctx, a.ID)
	if err != nil {
		return nil, fmt.Errorf("devices of %s: %w", a.Name, err)
	}
	var out []Device
	for _, v := range views {
		if v.Device == "" {
			continue // the plain maildrop's hidden set (pop3.delete=hide)
		}
		if n := len(out); n > 0 && out[n-1].Name == v.Device {
			d := &out[n-1]
			d.Hidden += v.Hidden.Len()
			if v.LastUsed.After(d.LastUsed) {
				d.LastUsed = v.LastUsed
			}
			continue
		}
		out = append(out, Device{Name: v.Device, Hidden: v.Hidden.Len(), Created: v.Created, LastUsed: v.LastUsed})
	}
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
	if err := o.Store.ForgetPOP3View(ctx, a.ID, dev); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %s has no device %q", ErrNoDevice, a.Name, dev)
		}
		return fmt.Errorf("forget device %s of %s: %w", dev, a.Name, err)
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
