package store

import (
	"context"
	"time"
)

// DKIMKey is a private key that signs outgoing mail for a domain (RFC
// 6376 §3.1: the signing domain and selector name its public key in DNS,
// at SELECTOR._domainkey.DOMAIN).
//
// PrivateKey is a secret: it never appears in logs, errors, admin
// answers or anything else that leaves the server.
type DKIMKey struct {
	// Domain is the signing domain (d=), lower case, without a trailing
	// dot.
	Domain string
	// Selector (s=) tells the domain's keys apart.
	Selector string
	// Algorithm is the key type: "rsa" or "ed25519" (RFC 8463).
	Algorithm string
	// PrivateKey is the key in PKCS #8 DER form.
	PrivateKey []byte
	Created    time.Time
}

// DKIMKeys is implemented by stores that keep DKIM signing keys. Domains
// are matched case-insensitively (as lower case); selectors exactly.
type DKIMKeys interface {
	// AddDKIMKey keeps k; ErrExists when the domain already has a key
	// of that selector (a key is never replaced in place: the DNS record
	// that verifies it may be cached for a long time).
	AddDKIMKey(ctx context.Context, k DKIMKey) error
	// DKIMKeys returns the keys of domain ordered by selector, or every
	// key ordered by domain and selector when domain is "". No keys is
	// not an error.
	DKIMKeys(ctx context.Context, domain string) ([]DKIMKey, error)
	// DeleteDKIMKey removes the key of domain and selector; ErrNotFound
	// when there is none.
	DeleteDKIMKey(ctx context.Context, domain, selector string) error
}
