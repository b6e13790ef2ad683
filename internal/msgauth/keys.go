package msgauth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// DefaultSelector is the selector `postfach dkim keygen` uses when none
// is given. Each domain gets two keys, one RSA and one ed25519, whose
// selectors are the selector with SuffixRSA and SuffixEd25519: both are
// published, and a verifier checks the one it knows (RFC 8463 §4: a
// signer that adds ed25519 keeps an RSA signature for older verifiers).
const (
	DefaultSelector = "postfach"
	SuffixRSA       = "-rsa"
	SuffixEd25519   = "-ed25519"
)

// RSABits is the size of generated RSA keys (RFC 8301 §3.2: at least
// 1024, 2048 recommended).
const RSABits = 2048

// GenerateKeys makes the RSA and the ed25519 key of domain under
// selector (selector+SuffixRSA, selector+SuffixEd25519).
func GenerateKeys(domain, selector string) ([]store.DKIMKey, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if err := ValidSelector(selector); err != nil {
		return nil, err
	}
	now := time.Now()
	rk, err := rsa.GenerateKey(rand.Reader, RSABits)
	if err != nil {
		return nil, fmt.Errorf("generate rsa key: %w", err)
	}
	_, ek, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	var out []store.DKIMKey
	for _, k := range []struct {
		alg, suffix string
		key         crypto.Signer
	}{{"rsa", SuffixRSA, rk}, {"ed25519", SuffixEd25519, ek}} {
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			return nil, fmt.Errorf("encode %s key: %w", k.alg, err)
		}
		out = append(out, store.DKIMKey{Domain: domain, Selector: selector + k.suffix, Algorithm: k.alg, PrivateKey: der, Created: now})
	}
	return out, nil
}

// ValidSelector checks a selector given by an operator: a dot-separated
// sequence of labels of letters, digits and hyphens (RFC 6376 §3.1,
// sub-domain), short enough to leave room for the suffixes.
func ValidSelector(s string) error {
	if s == "" || len(s) > 40 {
		return fmt.Errorf("selector %q: want 1 to 40 letters, digits, hyphens and dots", s)
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("selector %q: empty label, or one that begins or ends with a hyphen", s)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("selector %q: want letters, digits, hyphens and dots", s)
			}
		}
	}
	return nil
}

// Signer returns the private key of k as a crypto.Signer.
func Signer(k *store.DKIMKey) (crypto.Signer, error) {
	pk, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
	if err != nil {
		// The parser's error says nothing of the key's bytes.
		return nil, fmt.Errorf("dkim key %s %s: bad private key: %w", k.Domain, k.Selector, err)
	}
	s, ok := pk.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("dkim key %s %s: not a signing key", k.Domain, k.Selector)
	}
	switch s.(type) {
	case *rsa.PrivateKey:
		if k.Algorithm != "rsa" {
			return nil, fmt.Errorf("dkim key %s %s: an rsa key stored as %s", k.Domain, k.Selector, k.Algorithm)
		}
	case ed25519.PrivateKey:
		if k.Algorithm != "ed25519" {
			return nil, fmt.Errorf("dkim key %s %s: an ed25519 key stored as %s", k.Domain, k.Selector, k.Algorithm)
		}
	default:
		return nil, fmt.Errorf("dkim key %s %s: unsupported key type %T", k.Domain, k.Selector, s)
	}
	return s, nil
}

// Record is a key's DNS record to publish.
type Record struct {
	// Name is the owner name, SELECTOR._domainkey.DOMAIN (RFC 6376
	// §3.6.2.1), without a trailing dot.
	Name string
	// Value is the TXT record's text (RFC 6376 §3.6.1): v=DKIM1, k=, p=.
	Value string
}

// DNSRecord returns the TXT record that publishes k's public key.
func DNSRecord(k *store.DKIMKey) (Record, error) {
	s, err := Signer(k)
	if err != nil {
		return Record{}, err
	}
	var pub []byte
	switch p := s.Public().(type) {
	case *rsa.PublicKey:
		// RFC 6376 §3.6.1: p= is the base64 of the SubjectPublicKeyInfo
		// for RSA.
		if pub, err = x509.MarshalPKIXPublicKey(p); err != nil {
			return Record{}, fmt.Errorf("dkim key %s %s: %w", k.Domain, k.Selector, err)
		}
	case ed25519.PublicKey:
		// RFC 8463 §4.2: the raw 32-byte public key.
		pub = p
	default:
		return Record{}, errors.New("unsupported key type")
	}
	return Record{
		Name:  k.Selector + "._domainkey." + k.Domain,
		Value: "v=DKIM1; k=" + k.Algorithm + "; p=" + base64.StdEncoding.EncodeToString(pub),
	}, nil
}

// ZoneLine is r as a line of a zone file, its text split into strings of
// at most 255 bytes (RFC 1035 §3.3.14; a 2048-bit RSA key does not fit in
// one).
func (r Record) ZoneLine() string {
	var parts []string
	for v := r.Value; v != ""; {
		n := min(len(v), 255)
		parts = append(parts, `"`+v[:n]+`"`)
		v = v[n:]
	}
	return r.Name + ". IN TXT " + strings.Join(parts, " ")
}
