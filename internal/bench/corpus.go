package bench

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

// Corpus is a deterministic set of test messages: message i depends only
// on the seed and i, so a corpus of 100 is the first 100 of a corpus of
// 1000, and every run (and every server) gets the same bytes.
type Corpus struct {
	Seed uint64
	// Msgs are the messages, CRLF line endings.
	Msgs [][]byte
	// Kinds describe each message's structure, e.g.
	// "small multipart/alternative utf-8".
	Kinds []string
	smtp  [][]byte
}

// Size classes: most mail is a few KB, some carries attachments of
// 50-500 KB, a few are several MB.
const (
	classSmall = iota
	classMedium
	classLarge
	classHuge
)

var classNames = []string{"small", "medium", "large", "huge"}

// GenerateCorpus returns n messages for seed.
func GenerateCorpus(seed uint64, n int) *Corpus {
	c := &Corpus{Seed: seed, Msgs: make([][]byte, n), Kinds: make([]string, n)}
	for i := range n {
		c.Msgs[i], c.Kinds[i] = GenerateMessage(seed, i)
	}
	return c
}

// LoadCorpus reads the *.eml files of dir in name order.
func LoadCorpus(dir string) (*Corpus, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		return nil, fmt.Errorf("list corpus: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no .eml files in %s", dir)
	}
	slices.Sort(names)
	c := &Corpus{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("read corpus: %w", err)
		}
		c.Msgs = append(c.Msgs, b)
		c.Kinds = append(c.Kinds, "file")
	}
	return c, nil
}

// WriteDir writes the messages as dir/NNNNNN.eml.
func (c *Corpus) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create corpus dir: %w", err)
	}
	for i, m := range c.Msgs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%06d.eml", i)), m, 0o644); err != nil {
			return fmt.Errorf("write corpus: %w", err)
		}
	}
	return nil
}

// Smaller returns the messages of at most max bytes, in order.
func (c *Corpus) Smaller(max int) *Corpus {
	out := &Corpus{Seed: c.Seed}
	for i, m := range c.Msgs {
		if len(m) <= max {
			out.Msgs = append(out.Msgs, m)
			out.Kinds = append(out.Kinds, c.Kinds[i])
		}
	}
	return out
}

// PrepareSMTP encodes every message for LMTP DATA once (see SMTPData).
func (c *Corpus) PrepareSMTP() {
	if c.smtp != nil {
		return
	}
	c.smtp = make([][]byte, len(c.Msgs))
	for i, m := range c.Msgs {
		c.smtp[i] = SMTPData(m)
	}
}

// SMTP returns message i in DATA form; PrepareSMTP must have run.
func (c *Corpus) SMTP(i int) []byte { return c.smtp[i%len(c.smtp)] }

// TotalBytes returns the sum of the message sizes.
func (c *Corpus) TotalBytes() int64 {
	var n int64
	for _, m := range c.Msgs {
		n += int64(len(m))
	}
	return n
}

// Summary describes the corpus: count, sizes, and how many of each
// structure and class.
func (c *Corpus) Summary() string {
	var b strings.Builder
	sizes := make([]int, len(c.Msgs))
	for i, m := range c.Msgs {
		sizes[i] = len(m)
	}
	slices.Sort(sizes)
	if len(sizes) == 0 {
		return "empty corpus"
	}
	fmt.Fprintf(&b, "%d messages, %.1f MB, size min %d / median %d / p90 %d / max %d bytes\n",
		len(sizes), float64(c.TotalBytes())/1e6, sizes[0], sizes[len(sizes)/2], sizes[len(sizes)*9/10], sizes[len(sizes)-1])
	counts := map[string]int{}
	for _, k := range c.Kinds {
		for _, w := range strings.Fields(k) {
			counts[w]++
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-28s %d\n", k, counts[k])
	}
	return b.String()
}

// gen builds one message.
type gen struct {
	rng  *rand.Rand
	seed uint64
	i    int
	part int // counter for boundaries and content IDs
}

// lang is a language with its charset and transfer encoding.
type lang struct {
	name    string
	words   []string
	spaced  bool
	charset string
	cte     string // transfer encoding of its text parts
}

var langs = []struct {
	weight int
	lang
}{
	{30, lang{"en", wordsEN, true, "us-ascii", "7bit"}},
	{12, lang{"en", wordsEN, true, "utf-8", "quoted-printable"}},
	{14, lang{"de", wordsDE, true, "utf-8", "quoted-printable"}},
	{6, lang{"de", wordsDE, true, "utf-8", "8bit"}},
	{14, lang{"fr", wordsFR, true, "iso-8859-1", "quoted-printable"}},
	{10, lang{"ja", wordsJA, false, "shift_jis", "base64"}},
	{6, lang{"ja", wordsJA, false, "utf-8", "base64"}},
	{8, lang{"de", wordsDE, true, "iso-8859-1", "quoted-printable"}},
}

// GenerateMessage returns message i of the corpus for seed, and a
// description of its structure.
func GenerateMessage(seed uint64, i int) ([]byte, string) {
	g := &gen{rng: rand.New(rand.NewPCG(seed, uint64(i))), seed: seed, i: i}
	var class int
	switch p := g.rng.Float64(); {
	case p < 0.75:
		class = classSmall
	case p < 0.90:
		class = classMedium
	case p < 0.985:
		class = classLarge
	default:
		class = classHuge
	}
	var target int
	switch class {
	case classSmall:
		target = 1500 + g.rng.IntN(8500)
	case classMedium:
		target = 10_000 + g.rng.IntN(40_000)
	case classLarge:
		target = 50_000 + g.rng.IntN(450_000)
	default:
		target = 1_000_000 + g.rng.IntN(3_000_000)
	}
	l := g.pickLang()
	var b bytes.Buffer
	b.Grow(target + 4096)
	kind := g.message(&b, class, target, l, 0)
	return b.Bytes(), classNames[class] + " " + kind + " " + l.charset
}

func (g *gen) pickLang() lang {
	total := 0
	for _, l := range langs {
		total += l.weight
	}
	n := g.rng.IntN(total)
	for _, l := range langs {
		if n < l.weight {
			return l.lang
		}
		n -= l.weight
	}
	return langs[0].lang
}

func (g *gen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

// message writes headers and body; depth > 0 is a nested message.
func (g *gen) message(b *bytes.Buffer, class, target int, l lang, depth int) string {
	g.headers(b, l, depth)
	b.WriteString("MIME-Version: 1.0\r\n")
	p := g.rng.Float64()
	switch {
	case class == classSmall && p < 0.55, depth > 1:
		g.textPart(b, l, target, "plain")
		return "text/plain"
	case class == classSmall && p < 0.85, class == classMedium && p < 0.25:
		g.alternative(b, l, target)
		return "multipart/alternative"
	case class == classSmall && p < 0.95:
		g.mixed(b, l, target, 1, false)
		return "multipart/mixed"
	case class == classSmall, class == classMedium && p < 0.40, class == classLarge && p < 0.15:
		g.forward(b, l, target, class)
		return "message/rfc822"
	case class == classMedium && p < 0.65, class == classLarge && p < 0.35:
		g.related(b, l, target)
		return "multipart/related"
	case class == classHuge:
		g.mixed(b, l, target, 1, true)
		return "multipart/mixed"
	default:
		g.mixed(b, l, target, 1+g.rng.IntN(3), true)
		return "multipart/mixed"
	}
}

func (g *gen) boundary() string {
	g.part++
	return fmt.Sprintf("=_pf%d_%d_%08x", g.i, g.part, g.rng.Uint32())
}

func (g *gen) name() (string, string) {
	first, last := g.pick(firstNames), g.pick(lastNames)
	local := strings.ToLower(asciiOnly(first) + "." + asciiOnly(last))
	if local == "." || strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") {
		local = fmt.Sprintf("user%d", g.rng.IntN(1000))
	}
	return first + " " + last, local + "@" + g.pick(domains)
}

func asciiOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// addrHeader encodes a display name as an RFC 2047 encoded word when it
// is not ASCII.
func (g *gen) addrHeader(display, addr string) string {
	if isASCII(display) {
		if strings.ContainsAny(display, `'.,"`) {
			return fmt.Sprintf("%q <%s>", display, addr)
		}
		return display + " <" + addr + ">"
	}
	enc := mime.QEncoding
	if g.rng.IntN(2) == 0 {
		enc = mime.BEncoding
	}
	return enc.Encode("utf-8", display) + " <" + addr + ">"
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

var zones = []*time.Location{
	time.FixedZone("", 1*3600), time.FixedZone("", 2*3600), time.FixedZone("", -5*3600),
	time.FixedZone("", 9*3600), time.UTC, time.FixedZone("", -8*3600),
}

func (g *gen) headers(b *bytes.Buffer, l lang, depth int) {
	date := time.Date(2024, 1, 2, 8, 0, 0, 0, time.UTC).
		Add(time.Duration(g.i)*47*time.Minute + time.Duration(g.rng.IntN(3600))*time.Second).
		In(zones[g.rng.IntN(len(zones))])
	if depth == 0 {
		for h := range 1 + g.rng.IntN(3) {
			fmt.Fprintf(b, "Received: from mail%d.example.net (mail%d.example.net [192.0.2.%d])\r\n\tby mx%d.example.org with ESMTPS id %016x\r\n\tfor <inbox@example.org>; %s\r\n",
				h, h, 1+g.rng.IntN(254), h, g.rng.Uint64(), date.Format(time.RFC1123Z))
		}
		if g.rng.IntN(10) < 3 {
			// A DKIM signature: a long folded header, as most mail has.
			sig := make([]byte, 256)
			g.fill(sig)
			bh := make([]byte, 32)
			g.fill(bh)
			fmt.Fprintf(b, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net;\r\n\ts=sel%d; h=from:to:subject:date:message-id;\r\n\tbh=%s;\r\n\tb=%s\r\n",
				g.rng.IntN(9), base64.StdEncoding.EncodeToString(bh), foldBase64(sig, "\t  "))
		}
	}
	display, addr := g.name()
	fmt.Fprintf(b, "From: %s\r\n", g.addrHeader(display, addr))
	to := 1 + g.rng.IntN(3)
	var tos []string
	for range to {
		d, a := g.name()
		tos = append(tos, g.addrHeader(d, a))
	}
	fmt.Fprintf(b, "To: %s\r\n", strings.Join(tos, ",\r\n "))
	if g.rng.IntN(5) == 0 {
		d, a := g.name()
		fmt.Fprintf(b, "Cc: %s\r\n", g.addrHeader(d, a))
	}
	subject := g.sentence(l, 3+g.rng.IntN(8))
	reply := depth == 0 && g.i > 0 && g.rng.IntN(10) < 3
	if reply {
		subject = "Re: " + subject
	}
	fmt.Fprintf(b, "Subject: %s\r\n", g.encodeSubject(subject, l))
	fmt.Fprintf(b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(b, "Message-ID: <c%d.%d.%d@corpus.postfach.test>\r\n", g.seed, g.i, depth)
	if reply {
		parent := g.rng.IntN(g.i)
		fmt.Fprintf(b, "In-Reply-To: <c%d.%d.0@corpus.postfach.test>\r\n", g.seed, parent)
		fmt.Fprintf(b, "References: <c%d.%d.0@corpus.postfach.test>\r\n", g.seed, parent)
	}
	if depth == 0 && g.rng.IntN(10) == 0 {
		fmt.Fprintf(b, "List-Id: Team list <team%d.lists.example.net>\r\nList-Unsubscribe: <mailto:leave@lists.example.net>\r\n", g.rng.IntN(5))
	}
}

// encodeSubject writes a subject as encoded words in the message's
// charset (RFC 2047), or plain when ASCII. Words stay within 75
// characters (RFC 2047 §2) and are folded onto continuation lines; a
// "Re: " prefix stays outside, as mail clients write it.
func (g *gen) encodeSubject(s string, l lang) string {
	prefix := ""
	if rest, ok := strings.CutPrefix(s, "Re: "); ok {
		prefix, s = "Re: ", rest
	}
	if isASCII(s) {
		return prefix + s
	}
	var words []string
	runes := []rune(s)
	for len(runes) > 0 {
		k := min(len(runes), 12)
		if l.spaced {
			k = min(len(runes), 18)
		}
		chunk := string(runes[:k])
		runes = runes[k:]
		switch l.charset {
		case "iso-8859-1":
			if raw, err := charmap.ISO8859_1.NewEncoder().String(chunk); err == nil {
				words = append(words, qEncodeRaw("iso-8859-1", raw))
				continue
			}
		case "shift_jis":
			if raw, err := japanese.ShiftJIS.NewEncoder().String(chunk); err == nil {
				words = append(words, "=?shift_jis?B?"+base64.StdEncoding.EncodeToString([]byte(raw))+"?=")
				continue
			}
		}
		words = append(words, mime.BEncoding.Encode("utf-8", chunk))
	}
	return prefix + strings.Join(words, "\r\n ")
}

// qEncodeRaw Q-encodes bytes already in charset (RFC 2047 §4.2).
func qEncodeRaw(charset, raw string) string {
	var b strings.Builder
	b.WriteString("=?" + charset + "?Q?")
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == ' ':
			b.WriteByte('_')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == ',', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	b.WriteString("?=")
	return b.String()
}

func (g *gen) sentence(l lang, n int) string {
	var b strings.Builder
	for k := range n {
		w := g.pick(l.words)
		if l.spaced && k > 0 {
			b.WriteByte(' ')
		}
		if k == 0 && l.spaced {
			r, size := utf8.DecodeRuneInString(w)
			w = strings.ToUpper(string(r)) + w[size:]
		}
		b.WriteString(w)
	}
	return b.String()
}

// text returns at least n bytes of paragraphs, lines wrapped for
// readability, "\r\n" line ends.
func (g *gen) text(l lang, n int) string {
	var b strings.Builder
	b.Grow(n + 256)
	greeting := map[string]string{"en": "Hello,", "de": "Hallo zusammen,", "fr": "Bonjour,", "ja": "各位"}[l.name]
	b.WriteString(greeting + "\r\n\r\n")
	for b.Len() < n {
		var para strings.Builder
		for range 2 + g.rng.IntN(5) {
			if l.spaced {
				if para.Len() > 0 {
					para.WriteByte(' ')
				}
				para.WriteString(g.sentence(l, 5+g.rng.IntN(11)) + ".")
			} else {
				para.WriteString(g.sentence(l, 3+g.rng.IntN(6)) + "。")
			}
		}
		wrap(&b, para.String(), l.spaced)
		b.WriteString("\r\n")
	}
	return b.String()
}

// wrap writes s in lines of at most 72 bytes (spaced languages) or 30
// runes (Japanese).
func wrap(b *strings.Builder, s string, spaced bool) {
	if !spaced {
		runes := []rune(s)
		for len(runes) > 0 {
			k := min(30, len(runes))
			b.WriteString(string(runes[:k]) + "\r\n")
			runes = runes[k:]
		}
		return
	}
	line := 0
	for i, w := range strings.Fields(s) {
		if i > 0 && line+1+len(w) > 72 {
			b.WriteString("\r\n")
			line = 0
		} else if i > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	b.WriteString("\r\n")
}

// encodeText converts UTF-8 text to the part's charset and applies the
// transfer encoding.
func encodeText(text string, l lang) []byte {
	raw := []byte(text)
	switch l.charset {
	case "iso-8859-1":
		if s, err := charmap.ISO8859_1.NewEncoder().String(text); err == nil {
			raw = []byte(s)
		}
	case "shift_jis":
		if s, err := japanese.ShiftJIS.NewEncoder().String(text); err == nil {
			raw = []byte(s)
		}
	}
	switch l.cte {
	case "quoted-printable":
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		w.Write(raw)
		w.Close()
		return b.Bytes()
	case "base64":
		return []byte(foldBase64(raw, ""))
	}
	return raw
}

// foldBase64 encodes b in lines of 76 characters (RFC 2045 §6.8), each
// after the first prefixed by indent.
func foldBase64(b []byte, indent string) string {
	enc := base64.StdEncoding.EncodeToString(b)
	var s strings.Builder
	s.Grow(len(enc) + len(enc)/76*(2+len(indent)) + 2)
	for len(enc) > 0 {
		k := min(76, len(enc))
		if s.Len() > 0 {
			s.WriteString(indent)
		}
		s.WriteString(enc[:k])
		s.WriteString("\r\n")
		enc = enc[k:]
	}
	return strings.TrimSuffix(s.String(), "\r\n")
}

// fill fills b with pseudo-random bytes (incompressible, like a JPEG or
// a ZIP file).
func (g *gen) fill(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := g.rng.Uint64()
		for k := 0; k < 8 && i+k < len(b); k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
}

// textPart writes a text/plain or text/html body with its headers.
func (g *gen) textPart(b *bytes.Buffer, l lang, size int, sub string) {
	text := g.text(l, size)
	if sub == "html" {
		text = htmlOf(text)
	}
	fmt.Fprintf(b, "Content-Type: text/%s; charset=%s\r\n", sub, l.charset)
	if l.cte != "7bit" {
		fmt.Fprintf(b, "Content-Transfer-Encoding: %s\r\n", l.cte)
	}
	b.WriteString("\r\n")
	b.Write(encodeText(text, l))
	b.WriteString("\r\n")
}

// htmlOf turns paragraphs into a small HTML document.
func htmlOf(text string) string {
	var b strings.Builder
	b.WriteString("<html>\r\n<head><meta http-equiv=\"Content-Type\" content=\"text/html\"></head>\r\n<body>\r\n")
	for _, p := range strings.Split(text, "\r\n\r\n") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		b.WriteString("<p>")
		b.WriteString(strings.TrimSpace(p))
		b.WriteString("</p>\r\n")
	}
	b.WriteString("</body>\r\n</html>\r\n")
	return b.String()
}

func (g *gen) alternative(b *bytes.Buffer, l lang, target int) {
	bd := g.boundary()
	fmt.Fprintf(b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", bd)
	b.WriteString("This is a multi-part message in MIME format.\r\n")
	fmt.Fprintf(b, "--%s\r\n", bd)
	g.textPart(b, l, target*2/5, "plain")
	fmt.Fprintf(b, "--%s\r\n", bd)
	g.textPart(b, l, target*2/5, "html")
	fmt.Fprintf(b, "--%s--\r\n", bd)
}

// attachment writes one base64 attachment of about size encoded bytes.
func (g *gen) attachment(b *bytes.Buffer, size int, inlineCID string) {
	types := []struct{ ct, ext, magic string }{
		{"application/pdf", "pdf", "%PDF-1.7\n"},
		{"image/jpeg", "jpg", "\xff\xd8\xff\xe0\x00\x10JFIF\x00"},
		{"image/png", "png", "\x89PNG\r\n\x1a\n"},
		{"application/zip", "zip", "PK\x03\x04"},
		{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", "PK\x03\x04"},
	}
	t := types[g.rng.IntN(len(types))]
	if inlineCID != "" {
		t = types[1+g.rng.IntN(2)]
	}
	raw := make([]byte, max(size*3/4, 64))
	g.fill(raw)
	copy(raw, t.magic)
	name := g.pick(attachNames) + "." + t.ext
	if inlineCID != "" {
		fmt.Fprintf(b, "Content-Type: %s; name=\"image%d.%s\"\r\nContent-ID: <%s>\r\nContent-Disposition: inline; filename=\"image%d.%s\"\r\n",
			t.ct, g.part, t.ext, inlineCID, g.part, t.ext)
	} else if isASCII(name) {
		fmt.Fprintf(b, "Content-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\n", t.ct, name, name)
	} else {
		// As common clients do: RFC 2231 for the filename, an RFC 2047
		// word for the older name parameter.
		fmt.Fprintf(b, "Content-Type: %s;\r\n name=\"%s\"\r\nContent-Disposition: attachment;\r\n filename*=utf-8''%s\r\n",
			t.ct, mime.BEncoding.Encode("utf-8", name), strings.ReplaceAll(url.PathEscape(name), "+", "%2B"))
	}
	b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
	b.WriteString(foldBase64(raw, ""))
	b.WriteString("\r\n")
}

// csvAttachment writes a small text attachment in quoted-printable.
func (g *gen) csvAttachment(b *bytes.Buffer, l lang) {
	var s strings.Builder
	s.WriteString("date;item;amount\r\n")
	for k := range 10 + g.rng.IntN(60) {
		fmt.Fprintf(&s, "2024-%02d-%02d;%s;%d.%02d\r\n", 1+k%12, 1+k%28, g.pick(l.words), g.rng.IntN(5000), g.rng.IntN(100))
	}
	ll := l
	ll.cte = "quoted-printable"
	fmt.Fprintf(b, "Content-Type: text/csv; charset=%s; name=\"data.csv\"\r\nContent-Disposition: attachment; filename=\"data.csv\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", l.charset)
	b.Write(encodeText(s.String(), ll))
	b.WriteString("\r\n")
}

func (g *gen) mixed(b *bytes.Buffer, l lang, target, attachments int, binary bool) {
	bd := g.boundary()
	fmt.Fprintf(b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", bd)
	text := min(target/5, 3000+g.rng.IntN(3000))
	fmt.Fprintf(b, "--%s\r\n", bd)
	if g.rng.IntN(2) == 0 {
		g.alternative(b, l, text)
	} else {
		g.textPart(b, l, text, "plain")
	}
	rest := max(target-text, 512)
	for range attachments {
		fmt.Fprintf(b, "--%s\r\n", bd)
		if binary {
			g.attachment(b, rest/attachments, "")
		} else if g.rng.IntN(2) == 0 {
			g.csvAttachment(b, l)
		} else {
			g.attachment(b, min(rest, 4000), "")
		}
	}
	fmt.Fprintf(b, "--%s--\r\n", bd)
}

func (g *gen) related(b *bytes.Buffer, l lang, target int) {
	bd := g.boundary()
	images := 1 + g.rng.IntN(3)
	fmt.Fprintf(b, "Content-Type: multipart/related; type=\"text/html\"; boundary=\"%s\"\r\n\r\n", bd)
	fmt.Fprintf(b, "--%s\r\n", bd)
	text := min(target/4, 4000)
	html := htmlOf(g.text(l, text))
	var cids []string
	for k := range images {
		cid := fmt.Sprintf("img%d.%d@corpus.postfach.test", g.i, k)
		cids = append(cids, cid)
		html = strings.Replace(html, "</body>", fmt.Sprintf("<img src=\"cid:%s\">\r\n</body>", cid), 1)
	}
	fmt.Fprintf(b, "Content-Type: text/html; charset=%s\r\n", l.charset)
	if l.cte != "7bit" {
		fmt.Fprintf(b, "Content-Transfer-Encoding: %s\r\n", l.cte)
	}
	b.WriteString("\r\n")
	b.Write(encodeText(html, l))
	b.WriteString("\r\n")
	for _, cid := range cids {
		fmt.Fprintf(b, "--%s\r\n", bd)
		g.attachment(b, max(target-text, 1000)/images, cid)
	}
	fmt.Fprintf(b, "--%s--\r\n", bd)
}

// forward writes a message that forwards another one as message/rfc822.
func (g *gen) forward(b *bytes.Buffer, l lang, target, class int) {
	bd := g.boundary()
	fmt.Fprintf(b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", bd)
	fmt.Fprintf(b, "--%s\r\n", bd)
	g.textPart(b, l, min(target/5, 1500), "plain")
	fmt.Fprintf(b, "--%s\r\n", bd)
	var inner bytes.Buffer
	innerClass := classSmall
	if class > classSmall {
		innerClass = classMedium
	}
	g.message(&inner, innerClass, target*3/4, l, 1)
	cte := "7bit"
	if bytes.ContainsFunc(inner.Bytes(), func(r rune) bool { return r >= 0x80 }) {
		cte = "8bit"
	}
	fmt.Fprintf(b, "Content-Type: message/rfc822\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: %s\r\n\r\n", cte)
	b.Write(inner.Bytes())
	b.WriteString("\r\n")
	fmt.Fprintf(b, "--%s--\r\n", bd)
}
