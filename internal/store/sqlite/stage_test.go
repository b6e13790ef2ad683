package sqlite_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/message"
)

// chunkReader returns its data in reads of at most n bytes, then err (or
// io.EOF when err is nil), like a network connection.
type chunkReader struct {
	data []byte
	n    int
	err  error
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

// largeMessage is a multipart message of about 700 KB (a body file) with a
// base64 attachment and lines that begin with a period.
func largeMessage() []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nTo: b@example.org\r\nSubject: large\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\n")
	for i := range 2000 {
		if i%100 == 0 {
			b.WriteString(".a line that begins with a period\r\n")
		}
		b.WriteString("some text of the message body, line after line after line\r\n")
	}
	b.WriteString("--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	raw := make([]byte, 420<<10)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--b1--\r\n")
	return b.Bytes()
}

// TestStageLargeBody: a body staged into a file, read in small pieces, is
// stored byte for byte, and its summary is the one Parse gives for the
// whole message.
func TestStageLargeBody(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	a, _ := s.CreateAccount(ctx, "a@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	raw := largeMessage()
	b, err := s.Stage(ctx, &chunkReader{data: raw, n: 1777}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Discard()
	if b.Size() != int64(len(raw)) {
		t.Fatalf("size %d, want %d", b.Size(), len(raw))
	}
	want, err := message.Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := b.Summary().MarshalBinary()
	wantBin, _ := want.MarshalBinary()
	if !bytes.Equal(got, wantBin) {
		t.Fatal("summary of the staged body differs from Parse of the message")
	}
	id := appendBody(t, s, a.ID, inbox.ID, string(raw))
	body, err := s.OpenBody(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	stored, err := io.ReadAll(io.NewSectionReader(body, 0, body.Size()))
	if err != nil || !bytes.Equal(stored, raw) {
		t.Fatalf("stored body differs (%d bytes, err %v)", len(stored), err)
	}
}

// TestStageLargeReadError: when the message stops with a read error in the
// middle of a large body, Stage returns that error and leaves no file.
func TestStageLargeReadError(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	reset := errors.New("connection reset by peer")
	_, err := s.Stage(ctx, &chunkReader{data: largeMessage()[:400<<10], n: 32 << 10, err: reset}, 0)
	if !errors.Is(err, reset) {
		t.Fatalf("Stage: %v, want the read error", err)
	}
	if strings.Contains(err.Error(), "parse") {
		t.Errorf("a read error reads as a parse error: %v", err)
	}
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("file left behind: %s", p)
		}
		return nil
	})
}
