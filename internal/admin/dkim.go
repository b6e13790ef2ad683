package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/msgauth"
	"github.com/postfach/postfach/internal/store"
)

// DKIM keys (docs/sending.md, "DKIM"): each local domain can have
// signing keys, made by `postfach dkim keygen`, an RSA and an ed25519
// one. The private keys stay in the store: no operation returns them,
// and they never cross the admin socket (keygen makes them on the
// server's side of it).

// DKIMKey is a DKIM key as the dkim operations show it: never the
// private key.
type DKIMKey struct {
	Domain    string    `json:"domain"`
	Selector  string    `json:"selector"`
	Algorithm string    `json:"algorithm"` // rsa, ed25519
	Created   time.Time `json:"created"`
	// DNSName and DNSValue are the TXT record that publishes the public
	// key: DNSName without a trailing dot.
	DNSName  string `json:"dns_name"`
	DNSValue string `json:"dns_value"`
}

func dkimKeyOf(k *store.DKIMKey) (DKIMKey, error) {
	rec, err := msgauth.DNSRecord(k)
	if err != nil {
		return DKIMKey{}, err
	}
	return DKIMKey{Domain: k.Domain, Selector: k.Selector, Algorithm: k.Algorithm, Created: k.Created,
		DNSName: rec.Name, DNSValue: rec.Value}, nil
}

func (o *Ops) dkimKeys() (store.DKIMKeys, error) {
	if o.DKIMKeys == nil {
		return nil, errors.New("dkim keys: not supported by this store")
	}
	return o.DKIMKeys, nil
}

// DKIMKeygen implements API.
func (o *Ops) DKIMKeygen(ctx context.Context, domain, selector string) ([]DKIMKey, error) {
	dk, err := o.dkimKeys()
	if err != nil {
		return nil, err
	}
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if o.Deliverer == nil || !o.Deliverer.IsLocal(domain) {
		return nil, fmt.Errorf("%w: %s is not a local domain (the domains setting): postfach signs only mail from its own domains", ErrInvalid, domain)
	}
	if selector == "" {
		selector = msgauth.DefaultSelector
	}
	if err := msgauth.ValidSelector(selector); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	keys, err := msgauth.GenerateKeys(domain, selector)
	if err != nil {
		return nil, err
	}
	have, err := dk.DKIMKeys(ctx, domain)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		for _, h := range have {
			if h.Selector == k.Selector {
				return nil, fmt.Errorf("%s has a key of selector %s already: choose another selector (--selector) to add new keys, "+
					"and delete the old ones once the new records are published: %w", domain, k.Selector, store.ErrExists)
			}
		}
	}
	var out []DKIMKey
	for i := range keys {
		if err := dk.AddDKIMKey(ctx, keys[i]); err != nil {
			return nil, err
		}
		k, err := dkimKeyOf(&keys[i])
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if o.Logger != nil {
		o.Logger.Info("dkim keys made", "domain", domain, "selector", selector)
	}
	return out, nil
}

// DKIMList implements API.
func (o *Ops) DKIMList(ctx context.Context, domain string) ([]DKIMKey, error) {
	dk, err := o.dkimKeys()
	if err != nil {
		return nil, err
	}
	keys, err := dk.DKIMKeys(ctx, domain)
	if err != nil {
		return nil, err
	}
	out := []DKIMKey{}
	for i := range keys {
		k, err := dkimKeyOf(&keys[i])
		if err != nil {
			// A damaged key is listed, so that it can be deleted.
			k = DKIMKey{Domain: keys[i].Domain, Selector: keys[i].Selector, Algorithm: keys[i].Algorithm, Created: keys[i].Created,
				DNSValue: "(damaged key: " + err.Error() + ")"}
		}
		out = append(out, k)
	}
	return out, nil
}

// DKIMDelete implements API.
func (o *Ops) DKIMDelete(ctx context.Context, domain, selector string) ([]DKIMKey, error) {
	dk, err := o.dkimKeys()
	if err != nil {
		return nil, err
	}
	keys, err := dk.DKIMKeys(ctx, domain)
	if err != nil {
		return nil, err
	}
	// The selector of one key, or the one keygen was given: both keys.
	var del []store.DKIMKey
	for _, k := range keys {
		if k.Selector == selector || k.Selector == selector+msgauth.SuffixRSA || k.Selector == selector+msgauth.SuffixEd25519 {
			del = append(del, k)
		}
	}
	if len(del) > 1 {
		for _, k := range del {
			if k.Selector == selector {
				del = []store.DKIMKey{k}
				break
			}
		}
	}
	if len(del) == 0 {
		return nil, fmt.Errorf("%s has no dkim key of selector %s: %w", domain, selector, store.ErrNotFound)
	}
	var out []DKIMKey
	for i := range del {
		if err := dk.DeleteDKIMKey(ctx, del[i].Domain, del[i].Selector); err != nil {
			return nil, err
		}
		out = append(out, DKIMKey{Domain: del[i].Domain, Selector: del[i].Selector, Algorithm: del[i].Algorithm, Created: del[i].Created})
	}
	if o.Logger != nil {
		o.Logger.Info("dkim keys deleted", "domain", domain, "selector", selector, "keys", len(out))
	}
	return out, nil
}

// DKIMKeygen implements API.
func (c *Client) DKIMKeygen(ctx context.Context, domain, selector string) ([]DKIMKey, error) {
	resp, err := c.do(ctx, &Request{Op: "dkim.keygen", Name: domain, Selector: selector}, nil)
	if err != nil {
		return nil, err
	}
	return resp.DKIMKeys, nil
}

// DKIMList implements API.
func (c *Client) DKIMList(ctx context.Context, domain string) ([]DKIMKey, error) {
	resp, err := c.do(ctx, &Request{Op: "dkim.list", Name: domain}, nil)
	if err != nil {
		return nil, err
	}
	return resp.DKIMKeys, nil
}

// DKIMDelete implements API.
func (c *Client) DKIMDelete(ctx context.Context, domain, selector string) ([]DKIMKey, error) {
	resp, err := c.do(ctx, &Request{Op: "dkim.delete", Name: domain, Selector: selector}, nil)
	if err != nil {
		return nil, err
	}
	return resp.DKIMKeys, nil
}
