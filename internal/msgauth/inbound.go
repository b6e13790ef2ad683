package msgauth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/dmarc"

	"github.com/postfach/postfach/internal/dnsr"
)

// CheckOptions configures a Checker.
type CheckOptions struct {
	// Resolver answers the DNS questions (cached, NXDOMAIN told from
	// failure: dnsr.Client).
	Resolver dnsr.Resolver
	// Hostname is this server's name: the authserv-id of the
	// Authentication-Results it writes (RFC 8601 §2.5), and of those it
	// removes from incoming mail.
	Hostname string
	// LocalDomains are this server's domains: mail from outside that
	// claims to be from one of them and is not authenticated goes to
	// Junk, whatever the domain publishes.
	LocalDomains []string
	// SPF, DKIM and DMARC switch the checks on ([inbound] spf, dkim,
	// dmarc).
	SPF, DKIM, DMARC bool
	// DMARCReject refuses mail that fails DMARC under p=reject; false
	// sends it to Junk ([inbound] dmarc_reject).
	DMARCReject bool
	// Metrics, when set, counts each result: mechanism "spf", "dkim",
	// "dmarc" or "action", and the result ("pass", "fail", ...; for
	// "action": "accept", "junk", "reject", "defer").
	Metrics func(mechanism, result string)
	// Percent returns a number in [0, 100) for the pct= sampling of
	// DMARC (RFC 7489 §6.6.4); nil means a random one.
	Percent func() int
	Logger  *slog.Logger
}

// Checker checks the sender authentication of incoming mail. It is safe
// for concurrent use.
type Checker struct {
	opt CheckOptions
	net dnsr.NetResolver
	log *slog.Logger
	// keys are the parsed DKIM key records, by their text.
	keys keyCache
}

// NewChecker returns a Checker.
func NewChecker(o CheckOptions) *Checker {
	c := &Checker{opt: o, net: dnsr.NetResolver{R: o.Resolver}, log: o.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.opt.Percent == nil {
		c.opt.Percent = func() int { return rand.IntN(100) }
	}
	return c
}

// Input is what the SMTP session knows of a message's origin.
type Input struct {
	// RemoteIP is the client's address.
	RemoteIP netip.Addr
	// Helo is the name of HELO/EHLO; MailFrom the reverse-path ("" for
	// the null sender).
	Helo, MailFrom string
}

// Action is what to do with a checked message.
type Action int

// Actions.
const (
	// Accept delivers as usual.
	Accept Action = iota
	// Junk delivers to the recipients' Junk mailboxes.
	Junk
	// Reject refuses the message (550 5.7.1).
	Reject
	// Defer refuses it for now (451 4.4.3): a DNS failure kept the
	// checks from reaching a result that matters.
	Defer
)

func (a Action) String() string {
	return [...]string{"accept", "junk", "reject", "defer"}[a]
}

// Verdict is the outcome of Check.
type Verdict struct {
	Action Action
	// Reason says why, for the log and the reply of Reject and Defer.
	Reason string
	// Header is the Authentication-Results field (RFC 8601) to add on
	// top of the message, with its CRLF.
	Header string
	// SPF, DKIM (one per signature checked) and DMARC are the results,
	// for the log.
	SPF   string
	DKIM  []string
	DMARC string
	// drop are the header fields to remove before delivery: [start,
	// end) byte offsets of Authentication-Results fields that carry our
	// authserv-id (RFC 8601 §5), which only we may write.
	drop [][2]int64
}

// Body returns the message (msg, of size bytes) as it is to be stored:
// without the Authentication-Results fields that claim to be ours.
func (v *Verdict) Body(msg io.ReaderAt, size int64) io.Reader {
	var parts []io.Reader
	off := int64(0)
	for _, d := range v.drop {
		parts = append(parts, io.NewSectionReader(msg, off, d[0]-off))
		off = d[1]
	}
	parts = append(parts, io.NewSectionReader(msg, off, size-off))
	return io.MultiReader(parts...)
}

// maxCheckHeader bounds the header read for the checks; fields past it
// are not looked at (DKIM verification reads the whole message itself).
const maxCheckHeader = 1 << 20

// maxSignatures bounds the DKIM signatures verified per message: each
// costs a DNS lookup and a public-key operation.
const maxSignatures = 5

// Check checks the message msg of size bytes. The error is for failures
// of reading msg; DNS failures are results (temperror), never errors.
func (c *Checker) Check(ctx context.Context, in *Input, msg io.ReaderAt, size int64) (*Verdict, error) {
	header, err := readHeaderBytes(bufio.NewReader(io.NewSectionReader(msg, 0, size)), maxCheckHeader)
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	fields := splitFields(header)
	v := &Verdict{}
	for _, f := range fields {
		if strings.EqualFold(f.name, "Authentication-Results") && strings.EqualFold(authservID(f.value()), c.opt.Hostname) {
			v.drop = append(v.drop, [2]int64{int64(f.start), int64(f.start + len(f.raw))})
		}
	}
	var res []string // method=result clauses of the Authentication-Results

	// SPF (RFC 7208) of MAIL FROM, or of HELO for the null sender
	// (§2.4).
	var spfRes spf.Result
	spfDomain := domainOf(in.MailFrom)
	if spfDomain == "" {
		spfDomain = strings.TrimSuffix(in.Helo, ".")
	}
	if c.opt.SPF {
		spfRes = c.checkSPF(ctx, in)
		v.SPF = string(spfRes)
		c.count("spf", v.SPF)
		prop := "smtp.mailfrom=" + pvalue(in.MailFrom)
		if in.MailFrom == "" {
			prop = "smtp.helo=" + pvalue(in.Helo)
		}
		res = append(res, "spf="+string(spfRes)+" "+prop)
	}

	// DKIM (RFC 6376; RFC 8301: no rsa-sha1, no RSA keys under 1024
	// bits).
	var dkimPass []string // d= of the valid signatures
	dkimTemp := false
	if c.opt.DKIM {
		sigs := dkimSignatures(fields)
		if len(sigs) == 0 {
			v.DKIM = append(v.DKIM, "none")
			c.count("dkim", "none")
			res = append(res, "dkim=none")
		}
		if len(sigs) > 0 {
			results := c.checkDKIM(ctx, msg, size, header, len(sigs))
			for i, r := range results {
				s := sigs[i]
				v.DKIM = append(v.DKIM, r.result+" d="+s.d)
				c.count("dkim", r.result)
				switch r.result {
				case "pass":
					dkimPass = append(dkimPass, s.d)
				case "temperror":
					dkimTemp = true
				}
				clause := "dkim=" + r.result
				if r.reason != "" {
					clause += " reason=" + quote(r.reason)
				}
				clause += " header.d=" + pvalue(s.d) + " header.s=" + pvalue(s.s) + " header.a=" + pvalue(s.a)
				if len(s.b) >= 8 {
					// RFC 6008: the first characters of b= tell
					// signatures of one domain apart.
					clause += " header.b=" + pvalue(s.b[:8])
				}
				res = append(res, clause)
			}
		}
	}

	// DMARC (RFC 7489).
	if c.opt.DMARC {
		c.checkDMARC(ctx, v, fields, &res, spfRes, spfDomain, dkimPass, dkimTemp)
	}

	if len(res) == 0 {
		res = append(res, "none")
	}
	// RFC 8601 §2.2: authserv-id; then the results.
	v.Header = "Authentication-Results: " + c.opt.Hostname + ";\r\n\t" + strings.Join(res, ";\r\n\t") + "\r\n"
	c.count("action", v.Action.String())
	return v, nil
}

func (c *Checker) count(mech, result string) {
	if c.opt.Metrics != nil {
		c.opt.Metrics(mech, result)
	}
}

// checkSPF returns the SPF result; DNS failures are temperror, the lookup
// limits (10 lookups, 2 void lookups, RFC 7208 §4.6.4) permerror.
func (c *Checker) checkSPF(ctx context.Context, in *Input) spf.Result {
	if in.MailFrom == "" && !isDomainName(in.Helo) {
		// RFC 7208 §2.3: a HELO that is no domain name (an address
		// literal) cannot be checked.
		return spf.None
	}
	r, err := spf.CheckHostWithSender(net.IP(in.RemoteIP.Unmap().AsSlice()), in.Helo, in.MailFrom,
		spf.WithResolver(c.net), spf.WithContext(ctx))
	if err != nil && r != spf.Pass {
		c.log.Debug("spf", "result", r, "from", in.MailFrom, "ip", in.RemoteIP, "err", err)
	}
	return r
}

// dkimSig is the tags of a DKIM-Signature field that the results name.
type dkimSig struct{ d, s, a, b string }

// dkimSignatures returns the DKIM-Signature fields in header order, the
// order go-msgauth verifies them in.
func dkimSignatures(fields []field) []dkimSig {
	var out []dkimSig
	for _, f := range fields {
		if !strings.EqualFold(f.name, "DKIM-Signature") {
			continue
		}
		var s dkimSig
		for _, tag := range strings.Split(f.value(), ";") {
			k, val, _ := strings.Cut(tag, "=")
			val = strings.Join(strings.Fields(val), "")
			switch strings.TrimSpace(k) {
			case "d":
				s.d = strings.ToLower(val)
			case "s":
				s.s = val
			case "a":
				s.a = val
			case "b":
				s.b = val
			}
		}
		out = append(out, s)
	}
	return out
}

type dkimResult struct{ result, reason string }

// checkDKIM verifies the first maxSignatures of the n signatures of msg
// (header is its header, as readHeaderBytes read it), one after the
// other (dkimverify.go).
func (c *Checker) checkDKIM(ctx context.Context, msg io.ReaderAt, size int64, header []byte, n int) []dkimResult {
	out := make([]dkimResult, min(n, maxSignatures))
	failAll := func(err error) []dkimResult {
		// Not a result of the signatures: none of them counts.
		c.log.Warn("dkim verification failed", "err", err)
		for i := range out {
			out[i] = dkimResult{"temperror", "verification failed"}
		}
		return out
	}
	h, ok := parseDKIMHeader(header)
	if !ok {
		return failAll(errors.New("dkim: the header does not end before the body"))
	}
	var sigs []int
	for i, f := range h {
		if k, _ := fieldKV(f); strings.EqualFold(k, "DKIM-Signature") && len(sigs) < maxSignatures {
			sigs = append(sigs, i)
		}
	}
	body := &bodyHashes{msg: msg, off: int64(len(header)), size: size}
	errs := make([]error, len(sigs))
	for j, i := range sigs {
		_, v := fieldKV(h[i])
		err := c.verifyDKIMSig(ctx, h, i, v, body)
		if errors.Is(err, errDKIMRead) {
			return failAll(err)
		}
		errs[j] = err
	}
	for i := range out {
		if i >= len(sigs) {
			out[i] = dkimResult{"permerror", "not verified"}
			continue
		}
		var e *dkimErr
		switch {
		case errs[i] == nil:
			out[i] = dkimResult{"pass", ""}
		case !errors.As(errs[i], &e):
			out[i] = dkimResult{"temperror", "verification failed"}
		case e.kind == dkimTemp:
			out[i] = dkimResult{"temperror", "key unavailable"}
		case strings.Contains(e.msg, "too weak"), strings.Contains(e.msg, "too short"):
			// RFC 8301 §3.1, §3.2: rsa-sha1 and RSA keys under 1024
			// bits do not verify.
			out[i] = dkimResult{"fail", trimDKIMErr(e)}
		case e.kind == dkimPerm:
			out[i] = dkimResult{"permerror", trimDKIMErr(e)}
		default:
			out[i] = dkimResult{"fail", trimDKIMErr(e)}
		}
	}
	return out
}

func trimDKIMErr(e error) string {
	s := strings.TrimPrefix(e.Error(), "dkim: ")
	if i := strings.Index(s, ": dns "); i >= 0 {
		s = s[:i]
	}
	return s
}

// checkDMARC evaluates DMARC (RFC 7489 §6.6) and the own-domain rule, and
// sets v's Action. res gets the dmarc clause.
func (c *Checker) checkDMARC(ctx context.Context, v *Verdict, fields []field, res *[]string, spfRes spf.Result, spfDomain string, dkimPass []string, dkimTemp bool) {
	var froms []string
	for _, f := range fields {
		if strings.EqualFold(f.name, "From") {
			froms = append(froms, f.value())
		}
	}
	if len(froms) == 0 {
		// Nothing claims an author, so nothing to protect.
		v.DMARC = "none"
		c.count("dmarc", "none")
		*res = append(*res, "dmarc=none reason=\"no From header field\"")
		return
	}
	from, ok := fromDomain(froms)
	if !ok {
		// RFC 7489 §6.6.1: several From fields, or several authors of
		// different domains: no single domain to check, a common
		// trick to show one and have another checked.
		v.DMARC = "permerror"
		c.count("dmarc", "permerror")
		*res = append(*res, "dmarc=permerror reason=\"not one From domain\"")
		v.Action, v.Reason = Junk, "not one From: domain"
		return
	}
	rec, policy, lookupErr := c.lookupDMARC(ctx, from)
	spfTemp := spfRes == spf.TempError
	local := slices.ContainsFunc(c.opt.LocalDomains, func(d string) bool { return strings.EqualFold(d, from) })

	aligned := func(d string, mode dmarc.AlignmentMode) bool {
		if strings.EqualFold(d, from) {
			return true
		}
		return mode != dmarc.AlignmentStrict && OrganizationalDomain(d) == OrganizationalDomain(from)
	}
	spfMode, dkimMode := dmarc.AlignmentMode(dmarc.AlignmentRelaxed), dmarc.AlignmentMode(dmarc.AlignmentRelaxed)
	if rec != nil {
		spfMode, dkimMode = rec.SPFAlignment, rec.DKIMAlignment
	}
	// RFC 7489 §3.1: an identifier aligns when it is the From domain,
	// or (relaxed) shares its organizational domain.
	pass := spfRes == spf.Pass && aligned(spfDomain, spfMode) ||
		slices.ContainsFunc(dkimPass, func(d string) bool { return aligned(d, dkimMode) })
	temp := !pass && (spfTemp || dkimTemp)
	// The own-domain rule is met also by a pass for another of our
	// domains: a server that may send for one of them is ours (one
	// server for example.org and example.net).
	isLocal := func(d string) bool {
		return slices.ContainsFunc(c.opt.LocalDomains, func(x string) bool { return strings.EqualFold(x, d) })
	}
	ownPass := pass || spfRes == spf.Pass && isLocal(spfDomain) || slices.ContainsFunc(dkimPass, isLocal)

	clause := func(result, comment string) {
		v.DMARC = result
		c.count("dmarc", result)
		s := "dmarc=" + result
		if comment != "" {
			s += " (" + comment + ")"
		}
		*res = append(*res, s+" header.from="+pvalue(from))
	}
	switch {
	case lookupErr != nil && dmarc.IsTempFail(lookupErr):
		// The policy is unknown: it may be reject (never a pass on a
		// DNS failure).
		clause("temperror", "policy unavailable")
		v.Action, v.Reason = Defer, "the DMARC policy of "+from+" could not be looked up"
		return
	case lookupErr != nil && !errors.Is(lookupErr, dmarc.ErrNoPolicy):
		clause("permerror", "bad policy record")
		if local && !ownPass {
			v.Action, v.Reason = Junk, "unauthenticated mail from a local domain"
		}
		return
	case rec == nil:
		if pass {
			clause("none", "")
			return
		}
		clause("none", "")
		if local && !ownPass {
			// The own-domain rule: without a DMARC record, mail from a
			// local domain needs an aligned SPF or DKIM pass.
			if temp {
				v.Action, v.Reason = Defer, "SPF or DKIM of "+from+" could not be checked"
			} else {
				v.Action, v.Reason = Junk, "unauthenticated mail from a local domain"
			}
		}
		return
	}
	comment := "p=" + string(policy)
	if pass {
		clause("pass", comment)
		return
	}
	if temp {
		clause("temperror", comment)
		if policy != dmarc.PolicyNone || local && !ownPass {
			v.Action, v.Reason = Defer, "SPF or DKIM of "+from+" could not be checked"
		}
		return
	}
	// RFC 7489 §6.6.4: pct= applies the policy to that share of the
	// failing mail; the rest gets the next milder one.
	applied := policy
	if rec.Percent != nil && *rec.Percent < 100 && c.opt.Percent() >= *rec.Percent {
		switch policy {
		case dmarc.PolicyReject:
			applied = dmarc.PolicyQuarantine
		case dmarc.PolicyQuarantine:
			applied = dmarc.PolicyNone
		}
		comment += " pct=" + fmt.Sprint(*rec.Percent) + " applied=" + string(applied)
	}
	clause("fail", comment)
	switch {
	case applied == dmarc.PolicyReject && c.opt.DMARCReject:
		v.Action, v.Reason = Reject, "unauthenticated, and the DMARC policy of "+from+" says reject"
	case applied == dmarc.PolicyReject, applied == dmarc.PolicyQuarantine, local && !ownPass:
		v.Action, v.Reason = Junk, "failed DMARC of "+from
	}
}

// lookupDMARC finds the DMARC record of domain: its own, else its
// organizational domain's (RFC 7489 §6.6.3), and the policy that applies
// (sp= for a subdomain, when given).
func (c *Checker) lookupDMARC(ctx context.Context, domain string) (*dmarc.Record, dmarc.Policy, error) {
	opts := &dmarc.LookupOptions{LookupTXT: func(name string) ([]string, error) { return c.net.LookupTXT(ctx, name) }}
	rec, err := dmarc.LookupWithOptions(domain, opts)
	if err == nil {
		return rec, rec.Policy, nil
	}
	org := OrganizationalDomain(domain)
	if !errors.Is(err, dmarc.ErrNoPolicy) || org == domain {
		return nil, "", err
	}
	rec, err = dmarc.LookupWithOptions(org, opts)
	if err != nil {
		return nil, "", err
	}
	if rec.SubdomainPolicy != "" {
		return rec, rec.SubdomainPolicy, nil
	}
	return rec, rec.Policy, nil
}
