package imap

import (
	"io"

	"github.com/postfach/postfach/internal/message"
)

// ErrUnknownCTE is returned for BINARY of a part whose
// Content-Transfer-Encoding the server cannot decode; the server answers
// "NO [UNKNOWN-CTE]" (RFC 3516 §4.3). It is message.ErrUnknownEncoding.
var ErrUnknownCTE = message.ErrUnknownEncoding

// OpenBinary returns the content of BINARY[part]<p> (RFC 3516 §4.2): the
// part's body with its Content-Transfer-Encoding (base64 or
// quoted-printable) undone by message.NewBinaryReader, streamed, and its
// decoded length (Part.DecodedSize). An empty path gives the whole
// message, and a multipart or message/rfc822 part its body as it is. A
// part that does not exist is empty.
func OpenBinary(msg MessageSource, sum *message.Summary, part []uint32, p Partial) (io.Reader, int64, error) {
	b, err := binarySource(msg, sum, part)
	if err != nil {
		return nil, 0, err
	}
	total, err := b.size()
	if err != nil {
		return nil, 0, err
	}
	off, n := p.Apply(total)
	r, err := b.open()
	if err != nil {
		return nil, 0, err
	}
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		return nil, 0, eofErr(err)
	}
	return io.LimitReader(r, n), n, nil
}

// BinarySize returns BINARY.SIZE[part] (RFC 3516 §4.2): the decoded size
// of the part's body.
func BinarySize(msg MessageSource, sum *message.Summary, part []uint32) (int64, error) {
	b, err := binarySource(msg, sum, part)
	if err != nil {
		return 0, err
	}
	return b.size()
}

// binaryContent is the body of a part for BINARY.
type binaryContent struct {
	msg        MessageSource
	start, end int64
	encoding   string // "" for none
	decoded    int64  // decoded size, -1 if unknown
}

// binarySource locates the content of BINARY[part].
func binarySource(msg MessageSource, sum *message.Summary, part []uint32) (*binaryContent, error) {
	size := msg.Size()
	if len(part) == 0 {
		return &binaryContent{msg: msg, end: size, decoded: size}, nil
	}
	x := FindPart(&sum.Root, part)
	if x == nil {
		return &binaryContent{msg: msg, decoded: 0}, nil
	}
	b := &binaryContent{msg: msg, decoded: -1}
	b.start = min(max(x.BodyStart, 0), size)
	b.end = min(max(x.End, b.start), size)
	if !isMultipart(x) && !isMessagePart(x) {
		b.encoding = x.Encoding
		if _, err := message.NewBinaryReader(eofReader{}, x.Encoding); err != nil {
			return nil, ErrUnknownCTE
		}
	}
	if x.DecodedSize > 0 || b.end == b.start {
		b.decoded = x.DecodedSize
	}
	return b, nil
}

// open returns a reader of the decoded content.
func (b *binaryContent) open() (io.Reader, error) {
	return message.NewBinaryReader(io.NewSectionReader(b.msg, b.start, b.end-b.start), b.encoding)
}

// size returns the decoded size, decoding once if the summary lacks it.
func (b *binaryContent) size() (int64, error) {
	if b.decoded >= 0 {
		return b.decoded, nil
	}
	r, err := b.open()
	if err != nil {
		return 0, err
	}
	return io.Copy(io.Discard, r)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
