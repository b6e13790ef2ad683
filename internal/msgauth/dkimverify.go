package msgauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// DKIM verification (RFC 6376 §6.1) of all signatures of a message, one
// after the other, on the bytes the checks already hold. It gives the
// results go-msgauth's dkim.VerifyWithOptions gives (the same checks in
// the same order, the same failure classes and texts; a differential
// fuzz test holds it to that), and does less work for them, which was
// the cost of the checks on the MX (issue 16, docs/benchmarks.md):
//   - no goroutine and pipe per signature: the signatures are verified
//     in turn;
//   - the body is canonicalized and hashed once per canonicalization, not
//     once per signature, by canonicalizers that copy runs of bytes
//     rather than one byte at a time;
//   - a public key record is parsed once: parsed keys are kept by the
//     record's text (keyCache), so a changed record, or one that went
//     away after its TTL, is parsed anew.

// dkimErr is the failure of one signature: its class (RFC 6376 §6.1:
// PERMFAIL, TEMPFAIL, or a signature that does not verify) and its
// text.
type dkimErr struct {
	kind dkimKind
	msg  string
}

type dkimKind int

const (
	dkimPerm dkimKind = iota
	dkimTemp
	dkimFail
)

func (e *dkimErr) Error() string { return "dkim: " + e.msg }

func permErr(s string) *dkimErr { return &dkimErr{dkimPerm, s} }

// errDKIMRead is a failure that is no result of a signature (the
// message could not be read): no signature counts.
var errDKIMRead = errors.New("dkim: read message")

// dkimHeader is the header as DKIM sees it: one string per field, its
// lines joined, each line ending in CRLF (a bare LF counts as CRLF).
type dkimHeader []string

// parseDKIMHeader splits raw (the header with its ending empty line, as
// readHeaderBytes returns it). ok is false when raw does not end with
// the empty line: a header that ends the message is not one DKIM can
// verify.
func parseDKIMHeader(raw []byte) (h dkimHeader, ok bool) {
	for off := 0; off < len(raw); {
		end := bytes.IndexByte(raw[off:], '\n')
		if end < 0 {
			return h, false
		}
		line := raw[off : off+end]
		off += end + 1
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case len(line) == 0:
			return h, true
		case len(h) > 0 && (line[0] == ' ' || line[0] == '\t'):
			h[len(h)-1] += string(line) + "\r\n"
		default:
			h = append(h, string(line)+"\r\n")
		}
	}
	return h, false
}

// fieldKV splits a field into its trimmed name and value.
func fieldKV(s string) (string, string) {
	k, v, _ := strings.Cut(s, ":")
	return strings.TrimSpace(k), strings.TrimSpace(v)
}

// tagList parses a tag=value list (RFC 6376 §3.2).
func tagList(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			if strings.TrimSpace(p) == "" {
				continue
			}
			return out, errors.New("dkim: malformed header params")
		}
		k = strings.TrimSpace(k)
		if _, dup := out[k]; dup {
			return out, errors.New("dkim: duplicate tag name")
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// colonList splits a colon-separated tag value (h=, q=) without its
// white space.
func colonList(s string) []string {
	l := strings.Split(s, ":")
	for i := range l {
		l[i] = noSpace(l[i])
	}
	return l
}

func noSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// dkimKey is a parsed key record (RFC 6376 §3.6.1).
type dkimKey struct {
	rsa      *rsa.PublicKey
	ed       ed25519.PublicKey
	alg      string   // k=
	hashes   []string // h=, nil: any
	services []string // s=, nil: any
}

// keyCache keeps parsed key records by their text. It never answers a
// lookup: the record is asked of the resolver every time (which caches
// it for its TTL), and only its parse is reused.
type keyCache struct {
	mu sync.Mutex // guards m
	m  map[string]keyEntry
	// parses counts the records parsed (for the tests).
	parses int
}

type keyEntry struct {
	key *dkimKey
	err *dkimErr
}

// maxKeyCache bounds keyCache; past it the cache starts afresh.
const maxKeyCache = 1000

// parsed returns how many records were parsed.
func (c *keyCache) parsed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.parses
}

func (c *keyCache) get(txt string) (*dkimKey, *dkimErr) {
	c.mu.Lock()
	e, ok := c.m[txt]
	c.mu.Unlock()
	if ok {
		return e.key, e.err
	}
	k, err := parseKeyRecord(txt)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxKeyCache {
		c.m = map[string]keyEntry{}
	}
	c.m[txt] = keyEntry{k, err}
	c.parses++
	c.mu.Unlock()
	return k, err
}

// parseKeyRecord parses a DKIM key record.
func parseKeyRecord(s string) (*dkimKey, *dkimErr) {
	tags, err := tagList(s)
	if err != nil {
		return nil, permErr("key record error: " + err.Error())
	}
	if v, ok := tags["v"]; ok && v != "DKIM1" {
		return nil, permErr("incompatible public key version")
	}
	p, ok := tags["p"]
	if !ok {
		return nil, permErr("key syntax error: missing public key data")
	}
	if p == "" {
		// RFC 6376 §3.6.1: an empty p= is a revoked key.
		return nil, permErr("key revoked")
	}
	der, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(p, " ", ""))
	if err != nil {
		return nil, permErr("key syntax error: " + err.Error())
	}
	k := &dkimKey{}
	switch tags["k"] {
	case "rsa", "":
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			// Some publish the bare RSAPublicKey (RFC 6376 erratum 3017).
			if pub, err = x509.ParsePKCS1PublicKey(der); err != nil {
				return nil, permErr("key syntax error: " + err.Error())
			}
		}
		r, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, permErr("key syntax error: not an RSA public key")
		}
		// RFC 8301 §3.2: no RSA keys under 1024 bits.
		if r.Size()*8 < 1024 {
			return nil, permErr(fmt.Sprintf("key is too short: want 1024 bits, has %v bits", r.Size()*8))
		}
		k.rsa, k.alg = r, "rsa"
	case "ed25519":
		// RFC 8463 §4.2: the raw key.
		if len(der) != ed25519.PublicKeySize {
			return nil, permErr(fmt.Sprintf("invalid Ed25519 public key size: %v bytes", len(der)))
		}
		k.ed, k.alg = ed25519.PublicKey(der), "ed25519"
	default:
		return nil, permErr("unsupported key algorithm")
	}
	if h, ok := tags["h"]; ok {
		k.hashes = colonList(h)
	}
	if s, ok := tags["s"]; ok {
		if l := colonList(s); !containsStr(l, "*") {
			k.services = l
		}
	}
	return k, nil
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// bodyHashes computes the body hashes of one message, once per body
// canonicalization.
type bodyHashes struct {
	msg  io.ReaderAt
	off  int64 // where the body starts
	size int64
	sums map[string][]byte
}

func (b *bodyHashes) get(canon string) ([]byte, error) {
	if s, ok := b.sums[canon]; ok {
		return s, nil
	}
	h := sha256.New()
	scratch := bodyBufs.Get().(*[2][]byte)
	defer bodyBufs.Put(scratch)
	buf, out := scratch[0], scratch[1][:0]
	var w bodyCanon
	if canon == "relaxed" {
		w = &relaxedBody{h: h, out: out}
	} else {
		w = &simpleBody{h: h, out: out}
	}
	for off := b.off; off < b.size; {
		n, err := b.msg.ReadAt(buf[:min(int64(len(buf)), b.size-off)], off)
		w.write(buf[:n])
		off += int64(n)
		if err != nil && !(errors.Is(err, io.EOF) && off == b.size) {
			return nil, fmt.Errorf("%w: %w", errDKIMRead, err)
		}
	}
	w.close()
	if b.sums == nil {
		b.sums = map[string][]byte{}
	}
	sum := h.Sum(nil)
	b.sums[canon] = sum
	return sum, nil
}

// bodyBufs are the read buffer and the output buffer of a body
// canonicalization: the output of one read is at most its size and a few
// held line breaks longer.
var bodyBufs = sync.Pool{New: func() any { return &[2][]byte{make([]byte, 32<<10), make([]byte, 0, 33<<10)} }}

// bodyCanon is a body canonicalization (RFC 6376 §3.4.3, §3.4.4) that
// writes to a hash. A bare LF counts as CRLF, as it does in the header.
type bodyCanon interface {
	write(p []byte)
	close()
}

// simpleBody is the simple body canonicalization (RFC 6376 §3.4.3): the
// body as it is, without the empty lines at its end, ending in one CRLF.
type simpleBody struct {
	h      hash.Hash
	out    []byte
	prevCR bool
	held   []byte // the CRs and LFs at the end of what was written
}

func (c *simpleBody) write(p []byte) {
	out := c.out[:0]
	out = append(out, c.held...)
	start := 0
	for i := 0; i < len(p); {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			break
		}
		j += i
		prevCR := c.prevCR
		if j > 0 {
			prevCR = p[j-1] == '\r'
		}
		if !prevCR {
			out = append(out, p[start:j]...)
			out = append(out, '\r')
			start = j
		}
		i = j + 1
	}
	out = append(out, p[start:]...)
	if len(p) > 0 {
		c.prevCR = p[len(p)-1] == '\r'
	}
	// Hold back CRLFs at the end (and a CR that may begin one): they are
	// written only when something follows them.
	end := len(out)
	if end > 0 && out[end-1] == '\r' {
		end--
	}
	for end >= 2 && out[end-2] == '\r' && out[end-1] == '\n' {
		end -= 2
	}
	c.h.Write(out[:end])
	c.held = append(c.held[:0], out[end:]...)
	c.out = out
}

func (c *simpleBody) close() {
	if n := len(c.held); n > 0 && c.held[n-1] == '\r' {
		c.h.Write(c.held)
	}
	c.h.Write([]byte("\r\n"))
}

// relaxedBody is the relaxed body canonicalization (RFC 6376 §3.4.4):
// white space at line ends removed, runs of it made one space, empty
// lines at the end removed, and a final CRLF unless the body is empty.
type relaxedBody struct {
	h       hash.Hash
	out     []byte
	crlf    []byte // line breaks not yet written
	wsp     bool
	prevCR  bool
	written bool
}

func (c *relaxedBody) write(p []byte) {
	out := c.out[:0]
	for i := 0; i < len(p); {
		ch := p[i]
		switch ch {
		case ' ', '\t':
			c.wsp = true
			c.prevCR = false
			i++
			continue
		case '\r':
			c.wsp = false
			c.crlf = append(c.crlf, '\r')
			c.prevCR = true
			i++
			continue
		case '\n':
			c.wsp = false
			if !c.prevCR {
				c.crlf = append(c.crlf, '\r')
			}
			c.crlf = append(c.crlf, '\n')
			c.prevCR = false
			i++
			continue
		}
		if len(c.crlf) > 0 {
			out = append(out, c.crlf...)
			c.crlf = c.crlf[:0]
		}
		if c.wsp {
			out = append(out, ' ')
			c.wsp = false
		}
		// The run of ordinary bytes up to the next space or line break.
		j := i + 1
		for j < len(p) && !relaxedStop[p[j]] {
			j++
		}
		out = append(out, p[i:j]...)
		c.prevCR = false
		i = j
	}
	if len(out) > 0 {
		c.written = true
		c.h.Write(out)
	}
	c.out = out
}

// relaxedStop are the bytes that end a run of ordinary ones in
// relaxedBody.
var relaxedStop = [256]bool{' ': true, '\t': true, '\r': true, '\n': true}

func (c *relaxedBody) close() {
	if c.written {
		c.h.Write([]byte("\r\n"))
	}
}

// canonHeader canonicalizes one header field (RFC 6376 §3.4.1, §3.4.2).
func canonHeader(canon, s string) string {
	if canon != "relaxed" {
		return s
	}
	k, v, ok := strings.Cut(s, ":")
	if !ok {
		return strings.TrimSpace(strings.ToLower(s)) + ":\r\n"
	}
	k = strings.TrimSpace(strings.ToLower(k))
	v = strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }), " ")
	return k + ":" + v + "\r\n"
}

// sigValue matches the b= tag's value, which the signature's own hash
// leaves empty (RFC 6376 §3.7).
var sigValue = regexp.MustCompile(`(b\s*=)[^;]+`)

// verifyDKIMSig verifies the signature in field i of h (value sig).
func (c *Checker) verifyDKIMSig(ctx context.Context, h dkimHeader, i int, sig string, body *bodyHashes) error {
	tags, err := tagList(sig)
	if err != nil {
		return permErr("malformed signature tags: " + err.Error())
	}
	if tags["v"] != "1" {
		return permErr("incompatible signature version")
	}
	domain := noSpace(tags["d"])
	for _, t := range [...]string{"v", "a", "b", "bh", "d", "h", "s"} {
		if _, ok := tags[t]; !ok {
			return permErr("signature missing required tag")
		}
	}
	if id, ok := tags["i"]; ok {
		// RFC 6376 §3.5: i= is in d= or below it.
		id = noSpace(id)
		if !strings.HasSuffix(id, "@"+domain) && !strings.HasSuffix(id, "."+domain) {
			return permErr("domain mismatch")
		}
	}
	signed := colonList(tags["h"])
	if !containsFold(signed, "from") {
		return permErr("From field not signed")
	}
	if t, ok := tags["t"]; ok {
		if _, err := strconv.ParseInt(noSpace(t), 10, 64); err != nil {
			return permErr("malformed time: " + err.Error())
		}
	}
	if x, ok := tags["x"]; ok {
		sec, err := strconv.ParseInt(noSpace(x), 10, 64)
		if err != nil {
			return permErr("malformed expiration time: " + err.Error())
		}
		if time.Now().After(time.Unix(sec, 0)) {
			return permErr("signature has expired")
		}
	}
	methods := []string{"dns/txt"}
	if q, ok := tags["q"]; ok {
		methods = colonList(q)
	}
	var key *dkimKey
	queried := false
	for _, m := range methods {
		if m != "dns/txt" {
			continue
		}
		queried = true
		k, kerr := c.queryKey(ctx, domain, noSpace(tags["s"]))
		if kerr != nil {
			return kerr
		}
		key = k
		break
	}
	if !queried {
		return permErr("unsupported public key query method")
	}
	keyAlg, hashAlg, ok := strings.Cut(noSpace(tags["a"]), "-")
	if !ok {
		return permErr("malformed algorithm name")
	}
	if key.hashes != nil && !containsStr(key.hashes, hashAlg) {
		return permErr("inappropriate hash algorithm")
	}
	switch hashAlg {
	case "sha1":
		// RFC 8301 §3.1: rsa-sha1 is not verified.
		return permErr("hash algorithm too weak: sha1")
	case "sha256":
	default:
		return permErr("unsupported hash algorithm")
	}
	if key.alg != keyAlg {
		return permErr("inappropriate key algorithm")
	}
	if key.services != nil && !containsStr(key.services, "email") {
		return permErr("inappropriate service")
	}
	hCanon, bCanon := "simple", "simple"
	cans := strings.SplitN(noSpace(tags["c"]), "/", 2)
	if cans[0] != "" {
		hCanon = cans[0]
	}
	if len(cans) > 1 {
		bCanon = cans[1]
	}
	if !validCanon(hCanon) {
		return permErr("unsupported header canonicalization algorithm")
	}
	if !validCanon(bCanon) {
		return permErr("unsupported body canonicalization algorithm")
	}
	if _, ok := tags["l"]; ok {
		// A body length leaves the rest of the body unsigned.
		return &dkimErr{dkimFail, "message contains an insecure body length tag"}
	}
	bh, err := base64.StdEncoding.DecodeString(noSpace(tags["bh"]))
	if err != nil {
		return permErr("malformed body hash: " + err.Error())
	}
	b, err := base64.StdEncoding.DecodeString(noSpace(tags["b"]))
	if err != nil {
		return permErr("malformed signature: " + err.Error())
	}
	sum, err := body.get(bCanon)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(sum, bh) != 1 {
		return &dkimErr{dkimFail, "body hash did not verify"}
	}

	// RFC 6376 §5.4.2: the signed fields, each occurrence taken from the
	// bottom up, then the signature field with b= empty.
	hh := sha256.New()
	picked := map[string]int{}
	for _, name := range signed {
		name = strings.ToLower(name)
		skip := picked[name]
		for j := len(h) - 1; j >= 0; j-- {
			if k, _ := fieldKV(h[j]); !strings.EqualFold(k, name) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			picked[name]++
			io.WriteString(hh, canonHeader(hCanon, h[j]))
			break
		}
	}
	own := canonHeader(hCanon, sigValue.ReplaceAllString(h[i], "$1"))
	io.WriteString(hh, strings.TrimRight(own, "\r\n"))
	digest := hh.Sum(nil)
	if key.rsa != nil {
		if err := rsa.VerifyPKCS1v15(key.rsa, crypto.SHA256, digest, b); err != nil {
			return &dkimErr{dkimFail, "signature did not verify: " + err.Error()}
		}
	} else if !ed25519.Verify(key.ed, digest, b) {
		return &dkimErr{dkimFail, "signature did not verify: dkim: invalid Ed25519 signature"}
	}
	return nil
}

func validCanon(s string) bool { return s == "simple" || s == "relaxed" }

func containsFold(l []string, s string) bool {
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// queryKey looks up and parses the key of selector in domain (RFC 6376
// §3.6.2.2): a DNS failure is a TEMPFAIL, no record a PERMFAIL.
func (c *Checker) queryKey(ctx context.Context, domain, selector string) (*dkimKey, *dkimErr) {
	txts, err := c.net.LookupTXT(ctx, selector+"._domainkey."+domain)
	if ne, ok := err.(net.Error); ok && ne.Temporary() { //nolint:staticcheck // the resolver marks DNS failures Temporary
		return nil, &dkimErr{dkimTemp, "key unavailable: " + err.Error()}
	} else if err != nil {
		return nil, permErr("no key for signature: " + err.Error())
	}
	switch len(txts) {
	case 0:
		return nil, permErr("no valid key found")
	case 1:
		return c.keys.get(txts[0])
	default:
		// RFC 6376 §3.6.2.2: several records are undefined; refused.
		return nil, permErr("multiple TXT records found for key")
	}
}
