package imap

import (
	"strings"

	"github.com/postfach/postfach/internal/message"
)

// maxBodyDepth bounds the nesting written in BODYSTRUCTURE; deeper parts
// (only in hostile messages) are written as empty text parts so that the
// response stays finite and parseable.
const maxBodyDepth = 64

// BodyStructure writes the structure of a part as BODY (extended false) or
// BODYSTRUCTURE (extended true) (RFC 9051 §7.5.2, §9 body): type, subtype,
// parameters, id, description, encoding and size of every part; the
// envelope, structure and line count of message/rfc822 parts; the line
// count of text parts; with extended, the MD5, disposition, language and
// location of every part and the parameters of multiparts.
func (e *Encoder) BodyStructure(p *message.Part, extended bool) *Encoder {
	e.body(p, extended, 0)
	return e
}

func isMultipart(p *message.Part) bool { return p.Type == "multipart" }

func isMessagePart(p *message.Part) bool {
	return p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global")
}

// body writes one body (RFC 9051 §9 body).
func (e *Encoder) body(p *message.Part, ext bool, depth int) {
	if depth >= maxBodyDepth {
		e.emptyBody()
		return
	}
	e.BeginList()
	if isMultipart(p) {
		if len(p.Parts) == 0 {
			// 1*body: write a placeholder for a multipart without
			// parts.
			e.sep = false
			e.emptyBody()
		}
		for i := range p.Parts {
			e.sep = false // bodies follow each other without SP
			e.body(&p.Parts[i], ext, depth+1)
		}
		e.stringUpper(p.Subtype)
		if ext {
			e.params(p.Params)
			e.disposition(p)
			e.language(p.Language)
			e.NString(p.Location)
		}
		e.EndList()
		return
	}
	typ := p.Type
	if typ == "" {
		typ = "text"
	}
	sub := p.Subtype
	if sub == "" {
		sub = "plain"
	}
	e.stringUpper(typ)
	e.stringUpper(sub)
	if typ == "text" && !hasParam(p.Params, "charset") {
		// RFC 2046 §4.1.2: the default charset of text is US-ASCII.
		e.BeginList()
		for _, q := range p.Params {
			e.stringUpper(q.Name)
			e.String(q.Value)
		}
		e.String("CHARSET").String("us-ascii")
		e.EndList()
	} else {
		e.params(p.Params)
	}
	e.NString(p.ID)
	e.NString(p.Description)
	enc := p.Encoding
	if enc == "" {
		enc = "7bit"
	}
	e.stringUpper(enc)
	e.Number64(uint64(max(p.End-p.BodyStart, 0)))
	switch {
	case isMessagePart(p):
		if len(p.Parts) > 0 {
			// The encapsulated message's own envelope; the part's
			// Envelope differs when the root is message/rfc822.
			env := p.Parts[0].Envelope
			if env == nil {
				env = p.Envelope
			}
			e.Envelope(env)
			e.body(&p.Parts[0], ext, depth+1)
		} else {
			e.Envelope(nil)
			e.emptyBody()
		}
		e.Number64(uint64(max(p.Lines, 0)))
	case typ == "text":
		e.Number64(uint64(max(p.Lines, 0)))
	}
	if ext {
		e.NString(p.MD5)
		e.disposition(p)
		e.language(p.Language)
		e.NString(p.Location)
	}
	e.EndList()
}

// emptyBody writes an empty text/plain body, standing in where the grammar
// needs a body the message does not have.
func (e *Encoder) emptyBody() {
	e.BeginList()
	e.String("TEXT").String("PLAIN")
	e.BeginList().String("CHARSET").String("US-ASCII").EndList()
	e.Nil().Nil().String("7BIT").Number(0).Number(0)
	e.EndList()
}

// params writes body-fld-param: "(" name value ... ")" or NIL.
func (e *Encoder) params(ps []message.Param) {
	if len(ps) == 0 {
		e.Nil()
		return
	}
	e.BeginList()
	for _, p := range ps {
		e.stringUpper(p.Name)
		e.String(p.Value)
	}
	e.EndList()
}

// disposition writes body-fld-dsp: "(" type params ")" or NIL.
func (e *Encoder) disposition(p *message.Part) {
	if p.Disposition == "" {
		e.Nil()
		return
	}
	e.BeginList()
	e.stringUpper(p.Disposition)
	e.params(p.DispositionParams)
	e.EndList()
}

// language writes body-fld-lang: NIL, a string, or a list of strings.
func (e *Encoder) language(langs []string) {
	switch len(langs) {
	case 0:
		e.Nil()
	case 1:
		e.String(langs[0])
	default:
		e.BeginList()
		for _, l := range langs {
			e.String(l)
		}
		e.EndList()
	}
}

func hasParam(ps []message.Param, name string) bool {
	for _, p := range ps {
		if strings.EqualFold(p.Name, name) {
			return true
		}
	}
	return false
}

// stringUpper writes s upper-cased (ASCII letters) as a string, without
// allocating in the common case of a short ASCII token.
func (e *Encoder) stringUpper(s string) {
	if quoting(s, e.utf8) != asQuoted || strings.ContainsAny(s, "\\\"") {
		e.String(strings.ToUpper(s))
		return
	}
	e.token()
	e.writeByte('"')
	for i := 0; i < len(s); i++ {
		e.writeByte(upperByte(s[i]))
	}
	e.writeByte('"')
}
