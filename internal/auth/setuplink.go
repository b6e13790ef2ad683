package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// Setup links (docs/security.md, "Device setup links"): `postfach device
// add` prints a link https://HOST/setup/TOKEN from which the new device
// fetches its settings and its password once. The token is the only key:
//
//   - the store keeps SetupLinkID(token), a SHA-256 of it, to find the
//     link, and never the token;
//   - the device's password is kept encrypted with AES-256-GCM under a key
//     derived from the token by HKDF-SHA-256 (RFC 5869), so the database,
//     or a backup of it, does not reveal the password, and nothing but the
//     link opens it. The link is used once and works for SetupLinkTTL.
//
// A token is SetupTokenBytes random bytes (160 bits): guessing one over
// the network, under the guessing protection, is hopeless.
const (
	SetupTokenBytes = 20
	SetupLinkTTL    = 24 * time.Hour
	// setupSealVersion is the first byte of a sealed password.
	setupSealVersion = 1
	setupKeyInfo     = "postfach setup link password v1"
)

// setupB64 writes tokens in the URL; Strict, so that each token has one
// spelling (27 characters carry 162 bits, the last two must be zero).
var setupB64 = base64.RawURLEncoding.Strict()

// SetupTokenLen is the length of a token's URL form.
var SetupTokenLen = setupB64.EncodedLen(SetupTokenBytes)

// NewSetupLink makes a setup link for a device of an account whose
// password is password (canonical form): the token for the URL, and the
// record the store keeps.
func NewSetupLink(acct store.AccountID, device, password string, now time.Time) (token string, l store.SetupLink, err error) {
	raw := make([]byte, SetupTokenBytes)
	rand.Read(raw) // never fails (crypto/rand)
	sealed, err := SealSetupPassword(raw, acct, device, password)
	if err != nil {
		return "", store.SetupLink{}, err
	}
	now = now.Truncate(time.Second)
	return setupB64.EncodeToString(raw), store.SetupLink{ID: SetupLinkID(raw), Account: acct, Device: device,
		Sealed: sealed, Created: now, Expires: now.Add(SetupLinkTTL)}, nil
}

// ParseSetupToken decodes the URL form of a token; ok is false when s
// cannot be one.
func ParseSetupToken(s string) (token []byte, ok bool) {
	if len(s) != SetupTokenLen {
		return nil, false
	}
	raw, err := setupB64.DecodeString(s)
	if err != nil || len(raw) != SetupTokenBytes {
		return nil, false
	}
	return raw, true
}

// SetupLinkID is what the store finds a token's link by: its SHA-256.
func SetupLinkID(token []byte) []byte {
	h := sha256.Sum256(token)
	return h[:]
}

// setupAEAD is the cipher keyed by a token.
func setupAEAD(token []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, token, nil, setupKeyInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// setupAAD binds a sealed password to its link's account and device, so a
// sealed value moved to another row does not open.
func setupAAD(acct store.AccountID, device string) []byte {
	return []byte(strconv.FormatInt(int64(acct), 10) + "\x00" + device)
}

// SealSetupPassword encrypts a device's password under a key derived from
// the token: version byte, 12-byte random nonce, AES-256-GCM ciphertext.
func SealSetupPassword(token []byte, acct store.AccountID, device, password string) ([]byte, error) {
	aead, err := setupAEAD(token)
	if err != nil {
		return nil, fmt.Errorf("seal setup password: %w", err)
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(password)+aead.Overhead())
	out[0] = setupSealVersion
	rand.Read(out[1:])
	return aead.Seal(out, out[1:], []byte(password), setupAAD(acct, device)), nil
}

// ErrSetupSeal is returned by OpenSetupPassword for a sealed value that
// the token does not open.
var ErrSetupSeal = errors.New("sealed setup password does not open with this token")

// OpenSetupPassword decrypts what SealSetupPassword made.
func OpenSetupPassword(token []byte, acct store.AccountID, device string, sealed []byte) (string, error) {
	aead, err := setupAEAD(token)
	if err != nil {
		return "", fmt.Errorf("open setup password: %w", err)
	}
	n := aead.NonceSize()
	if len(sealed) < 1+n+aead.Overhead() || sealed[0] != setupSealVersion {
		return "", ErrSetupSeal
	}
	pw, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], setupAAD(acct, device))
	if err != nil {
		return "", ErrSetupSeal
	}
	return string(pw), nil
}
