package imapsearch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/message"
)

// maxHeaderRead bounds the header section read for HEADER and TEXT: a
// header longer than this is searched in its first maxHeaderRead bytes.
const maxHeaderRead = 1 << 20

// scanBufSize is the size of the buffer body text is scanned through.
const scanBufSize = 32 << 10

// matchEnvelope evaluates FROM, TO, CC, BCC and SUBJECT against the
// envelope (RFC 9051 §6.4.4: "the envelope structure's FROM field" etc.):
// the first header field of that name, RFC 2047 decoded.
func (p *Program) matchEnvelope(n *node) (bool, error) {
	sum, err := p.summary()
	if err != nil {
		return false, err
	}
	env := sum.Root.Envelope
	if env == nil {
		return false, nil
	}
	switch n.op {
	case imap.SearchSubject:
		if n.pat.empty() {
			return true, nil
		}
		return n.pat.matchString(message.DecodeHeaderValue(env.Subject)), nil
	case imap.SearchFrom:
		return matchAddresses(n.pat, env.From), nil
	case imap.SearchTo:
		return matchAddresses(n.pat, env.To), nil
	case imap.SearchCc:
		return matchAddresses(n.pat, env.Cc), nil
	}
	return matchAddresses(n.pat, env.Bcc), nil
}

// matchAddresses matches an address list written out as people read it:
// `Decoded Name <mailbox@host>, other@host, group: member;`. A string spanning the
// display name and the address ("Smith <js") matches, as it would in the
// header, without RFC 2047 encoding getting in the way.
func matchAddresses(pat *pattern, addrs []message.Address) bool {
	if pat.empty() {
		return true
	}
	m := matcher{p: pat}
	for i, a := range addrs {
		if i > 0 && !addrs[i-1].IsGroupStart && !a.IsGroupEnd {
			if m.feedString(", ") {
				return true
			}
		}
		switch {
		case a.IsGroupStart:
			if m.feedString(message.DecodeHeaderValue(a.Mailbox)) || m.feedString(": ") {
				return true
			}
			continue
		case a.IsGroupEnd:
			if m.feedString(";") {
				return true
			}
			continue
		}
		named := a.Name != ""
		if named && (m.feedString(message.DecodeHeaderValue(a.Name)) || m.feedString(" <")) {
			return true
		}
		if m.feedString(a.Mailbox) || a.Host != "" && (m.feedString("@") || m.feedString(a.Host)) {
			return true
		}
		if named && m.feedString(">") {
			return true
		}
	}
	return false
}

// body opens the stored message once per Match.
func (p *Program) body() (imap.MessageSource, error) {
	st := &p.st
	if st.bodyDone {
		if st.body == nil {
			return nil, errors.New("message body unavailable")
		}
		return st.body, nil
	}
	st.bodyDone = true
	if st.m.Source == nil {
		return nil, errors.New("search needs the message body but no source was given")
	}
	b, err := st.m.Source.Body()
	if err == nil && b == nil {
		err = errors.New("message source returned no body")
	}
	if err != nil {
		return nil, fmt.Errorf("open body of UID %d: %w", st.m.Meta.UID, err)
	}
	st.body = b
	return b, nil
}

// readHeader reads the header section [start, end) of the stored message.
func readHeader(src imap.MessageSource, start, end int64) (message.Header, error) {
	end = min(end, src.Size())
	if end <= start {
		return message.Header{}, nil
	}
	h, err := message.ReadHeader(io.NewSectionReader(src, start, end-start), maxHeaderRead)
	if err != nil && !errors.Is(err, message.ErrHeaderTooLarge) {
		return h, fmt.Errorf("read header: %w", err)
	}
	return h, nil
}

// topHeader returns the message's own header, read once per Match.
func (p *Program) topHeader(ctx context.Context) (message.Header, error) {
	if p.st.hdrDone {
		return p.st.hdr, nil
	}
	if err := ctx.Err(); err != nil {
		return message.Header{}, err
	}
	sum, err := p.summary()
	if err != nil {
		return message.Header{}, err
	}
	src, err := p.body()
	if err != nil {
		return message.Header{}, err
	}
	h, err := ReadTopHeader(src, sum)
	if err != nil {
		return message.Header{}, err
	}
	p.st.hdr, p.st.hdrDone = h, true
	return h, nil
}

// headerText returns the prepared header of a TextSource, once per
// Match; nil, nil when the source does not prepare text.
func (p *Program) headerText() (*HeaderText, error) {
	st := &p.st
	if st.htextDone {
		return st.htext, nil
	}
	ts, ok := st.m.Source.(TextSource)
	if !ok {
		return nil, nil
	}
	ht, err := ts.HeaderText()
	if err != nil {
		return nil, fmt.Errorf("prepare header of UID %d: %w", st.m.Meta.UID, err)
	}
	st.htext, st.htextDone = ht, true
	return ht, nil
}

// ReadTopHeader reads and parses the header section of a stored message
// as HEADER and TEXT search it: the bytes before sum.Root.BodyStart, at
// most the first 1 MiB of them.
func ReadTopHeader(src imap.MessageSource, sum *message.Summary) (message.Header, error) {
	return readHeader(src, sum.Root.HeaderStart, sum.Root.BodyStart)
}

// matchHeader evaluates HEADER field-name string (RFC 9051 §6.4.4): some
// field of that name (case-insensitively) whose unfolded, RFC 2047
// decoded value contains the string. The empty string matches every
// message that has the field.
func (p *Program) matchHeader(ctx context.Context, n *node) (bool, error) {
	if ht, err := p.headerText(); ht != nil || err != nil {
		return err == nil && matchHeaderText(ht, n.field, n.pat), err
	}
	h, err := p.topHeader(ctx)
	if err != nil {
		return false, err
	}
	for _, f := range h.Fields {
		if f.Name == "" || !strings.EqualFold(f.Name, n.field) {
			continue
		}
		if n.pat.empty() || n.pat.matchString(message.DecodeHeaderValue(f.Value())) {
			return true, nil
		}
	}
	return false, nil
}

// matchFields reports whether some field of h, written as "Name: value"
// with the value decoded, contains pat.
func matchFields(h message.Header, pat *pattern) bool {
	if pat.empty() {
		return true
	}
	m := matcher{p: pat}
	for _, f := range h.Fields {
		if f.Name == "" {
			continue
		}
		m.reset()
		if m.feedString(f.Name) || m.feedString(": ") || m.feedString(message.DecodeHeaderValue(f.Value())) {
			return true
		}
	}
	return false
}

// matchTopHeader is the header half of TEXT.
func (p *Program) matchTopHeader(ctx context.Context, pat *pattern) (bool, error) {
	if ht, err := p.headerText(); ht != nil || err != nil {
		return err == nil && matchHeaderFields(ht, pat), err
	}
	h, err := p.topHeader(ctx)
	if err != nil {
		return false, err
	}
	return matchFields(h, pat), nil
}

// matchBody evaluates BODY (and the body half of TEXT) over the decoded
// text of the message body: see searchPart.
func (p *Program) matchBody(ctx context.Context, pat *pattern) (bool, error) {
	if pat.empty() {
		return true, nil
	}
	if ts, ok := p.st.m.Source.(TextSource); ok {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		bt, err := ts.BodyText()
		if err != nil {
			return false, fmt.Errorf("prepare text of UID %d: %w", p.st.m.Meta.UID, err)
		}
		if bt != nil {
			return matchBodyText(bt, pat), nil
		}
	}
	sum, err := p.summary()
	if err != nil {
		return false, err
	}
	src, err := p.body()
	if err != nil {
		return false, err
	}
	if p.buf == nil {
		p.buf = make([]byte, scanBufSize)
	}
	return p.searchPart(ctx, src, &sum.Root, pat, 0)
}

// searchPart searches the body of part (not its own header) for pat:
//
//   - text/* parts are transfer-decoded (base64, quoted-printable) and
//     converted from their charset to UTF-8, then streamed through the
//     matcher, which stops reading at the first match;
//   - multipart/* searches its children; a multipart without children
//     (malformed) is searched as text, since its content is still mail
//     text;
//   - message/rfc822 and message/global search the encapsulated header
//     (as TEXT does: "Name: decoded value") and then its body; other
//     message/* types (delivery-status, disposition-notification) and
//     opaque encapsulated messages are searched as text;
//   - all other types (application, image, audio, video, ...) are
//     skipped, as RFC 9051 §6.4.4 allows: "A server MAY exclude [MIME-IMB]
//     body parts with terminal content media types other than TEXT and
//     MESSAGE from consideration in SEARCH matching." Their content is
//     not text, and matching the words of a search against base64 or
//     binary data gives only false hits.
func (p *Program) searchPart(ctx context.Context, src imap.MessageSource, part *message.Part, pat *pattern, depth int) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if depth > message.MaxDepth+1 {
		return false, nil
	}
	switch part.Type {
	case "multipart":
		if len(part.Parts) == 0 {
			return p.searchText(src, part, pat)
		}
		for i := range part.Parts {
			ok, err := p.searchPart(ctx, src, &part.Parts[i], pat, depth+1)
			if ok || err != nil {
				return ok, err
			}
		}
		return false, nil
	case "message":
		if len(part.Parts) == 0 {
			return p.searchText(src, part, pat)
		}
		inner := &part.Parts[0]
		h, err := readHeader(src, inner.HeaderStart, inner.BodyStart)
		if err != nil {
			return false, err
		}
		if matchFields(h, pat) {
			return true, nil
		}
		return p.searchPart(ctx, src, inner, pat, depth+1)
	case "text", "":
		return p.searchText(src, part, pat)
	}
	return false, nil
}

// searchText streams one part body as UTF-8 text through the matcher.
func (p *Program) searchText(src imap.MessageSource, part *message.Part, pat *pattern) (bool, error) {
	end := min(part.End, src.Size())
	if end <= part.BodyStart {
		return false, nil
	}
	r := message.NewTextReader(io.NewSectionReader(src, part.BodyStart, end-part.BodyStart),
		part.Encoding, message.ParamValue(part.Params, "charset"))
	m := matcher{p: pat}
	ok, err := m.feedReader(r, p.buf)
	if err != nil {
		return false, fmt.Errorf("search body: %w", err)
	}
	return ok, nil
}
