package msgauth

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/store"
)

// KeySource is the part of store.DKIMKeys the signer reads.
type KeySource interface {
	DKIMKeys(ctx context.Context, domain string) ([]store.DKIMKey, error)
}

var _ KeySource = store.DKIMKeys(nil)

// DKIMSigner signs outgoing mail with every key of the From: domain
// (delivery.Signer). It is safe for concurrent use.
type DKIMSigner struct {
	keys KeySource
	log  *slog.Logger

	mu     sync.Mutex               // guards parsed
	parsed map[string]crypto.Signer // by the key's PKCS #8 bytes
}

// maxParsedKeys bounds the cache of parsed keys; past it the cache is
// emptied and filled again (keys are few: two per domain).
const maxParsedKeys = 256

// signer returns k parsed. Parsing an RSA key checks it and precomputes
// its CRT values, which costs about as much as a signature: it is done
// once per key, not once per message. The cache is keyed by the key's
// bytes, so a deleted and remade key is never served stale.
func (s *DKIMSigner) signer(k *store.DKIMKey) (crypto.Signer, error) {
	id := k.Algorithm + "\x00" + string(k.PrivateKey)
	s.mu.Lock()
	sg, ok := s.parsed[id]
	s.mu.Unlock()
	if ok {
		return sg, nil
	}
	sg, err := Signer(k)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.parsed) >= maxParsedKeys {
		clear(s.parsed)
	}
	s.parsed[id] = sg
	s.mu.Unlock()
	return sg, nil
}

var _ delivery.Signer = (*DKIMSigner)(nil)

// NewSigner returns a signer that takes its keys from keys; log may be
// nil.
func NewSigner(keys KeySource, log *slog.Logger) *DKIMSigner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DKIMSigner{keys: keys, log: log, parsed: map[string]crypto.Signer{}}
}

// signedFields are the header fields signed when present (RFC 6376
// §5.4.1's list, with Message-ID and the MIME fields that say how the
// body is to be read). From is signed always, and once more than it
// occurs (oversigned, §5.4.2), so that no second From: can be added
// without breaking the signature; the others are signed as often as they
// occur.
var signedFields = []string{
	"From", "Reply-To", "Subject", "Date", "To", "Cc",
	"Resent-Date", "Resent-From", "Resent-To", "Resent-Cc",
	"In-Reply-To", "References", "Message-ID",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
}

// maxSignHeader bounds the header the signer reads to choose the fields
// to sign.
const maxSignHeader = 1 << 20

// Sign implements delivery.Signer: one DKIM-Signature per key of domain
// (RSA and ed25519 when `postfach dkim keygen` made them), relaxed/relaxed
// (RFC 6376 §3.4.2, §3.4.4: survives the header refolding and
// whitespace changes of relays), sha256.
func (s *DKIMSigner) Sign(ctx context.Context, domain string, msg io.Reader) ([]byte, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if domain == "" {
		return nil, nil
	}
	keys, err := s.keys.DKIMKeys(ctx, domain)
	if err != nil {
		return nil, fmt.Errorf("dkim sign: %w", err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	br := bufio.NewReader(msg)
	header, err := readHeaderBytes(br, maxSignHeader)
	if err != nil {
		return nil, fmt.Errorf("dkim sign: %w", err)
	}
	fields := fieldsToSign(header)
	var signers []*dkim.Signer
	var writers []io.Writer
	defer func() {
		for _, sg := range signers {
			sg.Close()
		}
	}()
	for i := range keys {
		k := &keys[i]
		key, err := s.signer(k)
		if err != nil {
			// A damaged key must not stop the mail: the other key
			// still signs. Logged without the key.
			s.log.Error("dkim key unusable", "domain", k.Domain, "selector", k.Selector, "err", err)
			continue
		}
		sg, err := dkim.NewSigner(&dkim.SignOptions{
			Domain:                 k.Domain,
			Selector:               k.Selector,
			Signer:                 key,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed,
			BodyCanonicalization:   dkim.CanonicalizationRelaxed,
			HeaderKeys:             fields,
		})
		if err != nil {
			return nil, fmt.Errorf("dkim sign with %s: %w", k.Selector, err)
		}
		signers = append(signers, sg)
		writers = append(writers, sg)
	}
	if len(signers) == 0 {
		return nil, errors.New("dkim sign: no usable key for " + domain)
	}
	w := io.MultiWriter(writers...)
	if _, err := w.Write(header); err != nil {
		return nil, fmt.Errorf("dkim sign: %w", err)
	}
	if _, err := io.Copy(w, br); err != nil {
		return nil, fmt.Errorf("dkim sign: %w", err)
	}
	var out bytes.Buffer
	for _, sg := range signers {
		if err := sg.Close(); err != nil {
			return nil, fmt.Errorf("dkim sign: %w", err)
		}
		out.WriteString(sg.Signature())
	}
	signers = nil
	return out.Bytes(), nil
}

// fieldsToSign lists the signedFields present in header, each as often as
// it occurs, and From once more.
func fieldsToSign(header []byte) []string {
	count := map[string]int{}
	for _, f := range splitFields(header) {
		count[strings.ToLower(f.name)]++
	}
	var out []string
	for _, name := range signedFields {
		n := count[strings.ToLower(name)]
		if name == "From" {
			n++ // RFC 6376 §5.4.2: oversign From
		}
		for range n {
			out = append(out, name)
		}
	}
	return out
}
