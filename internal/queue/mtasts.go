package queue

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// stsPolicy is a domain's MTA-STS policy (RFC 8461 §3.2).
type stsPolicy struct {
	id      string // from the TXT record
	mode    string // "enforce", "testing" or "none"
	mx      []string
	expires time.Time // fetched + max_age
}

// matches reports whether an MX host name matches one of the policy's mx
// patterns (RFC 8461 §4.1): exactly, or "*.example.org" for one label
// more, case-insensitively.
func (p *stsPolicy) matches(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range p.mx {
		pat = strings.ToLower(pat)
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			if i := strings.IndexByte(host, '.'); i > 0 && host[i+1:] == rest {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

// stsCache fetches and keeps MTA-STS policies. A policy is kept until its
// max_age, also when its TXT record vanishes or a refresh fails (RFC 8461
// §3.3, §5.1), and fetched again when the TXT record's id changes. When
// the store keeps policies (store.STSPolicies), each fetched policy is
// written there and a domain's policy is read from there the first time
// it is needed after a start, so that a restart does not forget it
// (RFC 8461 §5.1: an attacker on the path could otherwise strip the
// policy from the first delivery after a restart).
type stsCache struct {
	q      *Queue
	client *http.Client
	stored store.STSPolicies // nil when the store keeps none

	mu sync.Mutex // guards m
	m  map[string]*stsPolicy
}

// maxSTSPolicy bounds a policy body (RFC 8461 §3.3: 64 KiB).
const maxSTSPolicy = 64 << 10

func newSTSCache(q *Queue) *stsCache {
	port := q.opt.STSPort
	if port == 0 {
		port = 443
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: q.opt.RootCAs, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			// The policy host is looked up with our resolver, and the
			// port is STSPort (tests serve policies elsewhere).
			h, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if q.opt.Resolver == nil {
				return nil, errors.New("no resolver")
			}
			ips, _, err := q.opt.Resolver.IP(ctx, h)
			if err != nil {
				return nil, err
			}
			var last error = errors.New("no address")
			for _, ip := range ips {
				c, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), strconv.Itoa(port)))
				if err == nil {
					return c, nil
				}
				last = err
			}
			return nil, last
		},
		ForceAttemptHTTP2:   false,
		TLSHandshakeTimeout: 30 * time.Second,
	}
	stored, _ := q.opt.Store.(store.STSPolicies)
	return &stsCache{q: q, stored: stored, m: map[string]*stsPolicy{}, client: &http.Client{
		Transport: tr,
		Timeout:   time.Minute,
		// RFC 8461 §3.3: redirects are not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// policy returns the domain's policy in effect, or nil when it has none
// (or mode none).
func (c *stsCache) policy(ctx context.Context, domain string) *stsPolicy {
	if c.q.opt.Resolver == nil {
		return nil
	}
	now := c.q.now()
	c.mu.Lock()
	cached := c.m[domain]
	c.mu.Unlock()
	if cached == nil {
		// A domain without a policy costs one indexed read per attempt;
		// its absence is not remembered, so the map holds policies only.
		cached = c.load(ctx, domain)
	}
	if cached != nil && !now.Before(cached.expires) {
		cached = nil
	}
	id, err := c.txtID(ctx, domain)
	if err != nil || id == "" || (cached != nil && cached.id == id) {
		if err != nil {
			c.q.log.Debug("mta-sts record lookup", "domain", domain, "err", err)
		}
		return active(cached)
	}
	p, err := c.fetch(ctx, domain)
	if err != nil {
		c.q.log.Warn("mta-sts policy fetch failed", "domain", domain, "err", err)
		return active(cached)
	}
	p.id = id
	c.mu.Lock()
	c.m[domain] = p
	c.mu.Unlock()
	c.save(ctx, domain, p)
	c.q.log.Info("mta-sts policy", "domain", domain, "mode", p.mode, "mx", strings.Join(p.mx, ","), "expires", p.expires)
	return active(p)
}

// load reads the domain's policy from the store into the cache; nil when
// the store has none (or keeps none).
func (c *stsCache) load(ctx context.Context, domain string) *stsPolicy {
	if c.stored == nil {
		return nil
	}
	sp, err := c.stored.STSPolicy(ctx, domain)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			c.q.log.Warn("mta-sts policy lookup in the store", "domain", domain, "err", err)
		}
		return nil
	}
	p := &stsPolicy{id: sp.ID, mode: sp.Mode, mx: sp.MX, expires: sp.Expires}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.m[domain]; cur != nil {
		return cur // fetched meanwhile
	}
	c.m[domain] = p
	return p
}

// save writes a fetched policy to the store. A failure is logged: the
// policy still applies from memory until the next restart.
func (c *stsCache) save(ctx context.Context, domain string, p *stsPolicy) {
	if c.stored == nil {
		return
	}
	err := c.stored.PutSTSPolicy(ctx, store.STSPolicy{Domain: domain, ID: p.id, Mode: p.mode, MX: p.mx, Expires: p.expires}, c.q.now())
	if err != nil {
		c.q.log.Warn("mta-sts policy not kept in the store", "domain", domain, "err", err)
	}
}

func active(p *stsPolicy) *stsPolicy {
	if p == nil || p.mode == "none" {
		return nil
	}
	return p
}

// txtID returns the id of the domain's _mta-sts TXT record (RFC 8461
// §3.1), "" when there is no single valid one.
func (c *stsCache) txtID(ctx context.Context, domain string) (string, error) {
	txts, _, err := c.q.opt.Resolver.TXT(ctx, "_mta-sts."+domain)
	if err != nil {
		return "", err
	}
	id := ""
	n := 0
	for _, t := range txts {
		if !strings.HasPrefix(t, "v=STSv1") {
			continue
		}
		n++
		for _, f := range strings.Split(t, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
			if k == "id" {
				id = v
			}
		}
	}
	if n != 1 {
		// RFC 8461 §3.1: several records mean none.
		return "", nil
	}
	return id, nil
}

// fetch gets https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461
// §3.3) and parses it.
func (c *stsCache) fetch(ctx context.Context, domain string) (*stsPolicy, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://mta-sts."+domain+"/.well-known/mta-sts.txt", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("policy fetch: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "text/plain") {
		return nil, fmt.Errorf("policy has content type %q, want text/plain", ct)
	}
	p, err := parseSTSPolicy(io.LimitReader(resp.Body, maxSTSPolicy))
	if err != nil {
		return nil, err
	}
	p.expires = c.q.now().Add(p.expires.Sub(time.Time{}))
	return p, nil
}

// parseSTSPolicy parses a policy body (RFC 8461 §3.2). expires is set to
// the zero time plus max_age; the caller adds the fetch time.
func parseSTSPolicy(r io.Reader) (*stsPolicy, error) {
	p := &stsPolicy{}
	sc := bufio.NewScanner(r)
	var version string
	var maxAge int64 = -1
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "version":
			version = v
		case "mode":
			p.mode = v
		case "mx":
			p.mx = append(p.mx, v)
		case "max_age":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("policy max_age %q", v)
			}
			maxAge = min(n, 31557600)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if version != "STSv1" {
		return nil, fmt.Errorf("policy version %q", version)
	}
	switch p.mode {
	case "enforce", "testing":
		if len(p.mx) == 0 {
			return nil, errors.New("policy without mx")
		}
	case "none":
	default:
		return nil, fmt.Errorf("policy mode %q", p.mode)
	}
	if maxAge < 0 {
		return nil, errors.New("policy without max_age")
	}
	p.expires = time.Time{}.Add(time.Duration(maxAge) * time.Second)
	return p, nil
}
