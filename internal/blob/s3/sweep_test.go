package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/postfach/postfach/internal/blob/s3"
	"github.com/postfach/postfach/internal/blob/s3/s3test"
)

// TestSweepTemp: a write interrupted after some parts (a crash: neither
// Commit nor Abort) leaves an unfinished upload, and one interrupted
// between completing and copying leaves a tmp/ object; neither is a
// blob. SweepTemp leaves them while they are young (another frontend may
// be writing) and removes them after TempGrace; blobs stay.
func TestSweepTemp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opt := s3test.Bucket(t)
	s, err := s3.New(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	c := s3test.Client(t)
	w, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("x"), s3.MinPartSize+1)) // the first part goes
	if _, err := c.PutObject(ctx, opt.Bucket, "tmp/20260101T000000-left", strings.NewReader("partial"), 7, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	data := []byte("a body that stays")
	sum := sha256.Sum256(data)
	id := hex.EncodeToString(sum[:])
	bw, _ := s.Create(ctx)
	bw.Write(data)
	if err := bw.Commit(ctx, id); err != nil {
		t.Fatal(err)
	}
	count := func() (objects, uploads int) {
		for obj := range c.ListObjects(ctx, opt.Bucket, minio.ListObjectsOptions{Prefix: "tmp/", Recursive: true}) {
			if obj.Err != nil {
				t.Fatal(obj.Err)
			}
			objects++
		}
		for up := range c.ListIncompleteUploads(ctx, opt.Bucket, "", true) {
			if up.Err != nil {
				t.Fatal(up.Err)
			}
			uploads++
		}
		return
	}
	if o, u := count(); o != 1 || u != 1 {
		t.Fatalf("before the sweep: %d tmp objects, %d uploads; want 1, 1", o, u)
	}
	if err := s.SweepTemp(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if o, u := count(); o != 1 || u != 1 {
		t.Fatalf("young temporary data swept: %d tmp objects, %d uploads left", o, u)
	}
	if err := s.SweepTemp(ctx, time.Now().Add(s3.TempGrace+time.Minute)); err != nil {
		t.Fatal(err)
	}
	if o, u := count(); o != 0 || u != 0 {
		t.Fatalf("after the sweep: %d tmp objects, %d uploads; want none", o, u)
	}
	r, err := s.Open(ctx, id)
	if err != nil {
		t.Fatalf("blob gone after the sweep: %v", err)
	}
	r.Close()
}

// countingTransport counts the GET requests of objects.
type countingTransport struct {
	gets atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && r.Header.Get("Range") != "" {
		c.gets.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestReadStreams: reading a large body from start to end in small
// pieces (as POP3 RETR and FETCH BODY[] do) costs two requests, the
// first 64 KiB and one stream for the rest, not one per piece; a read of
// the header only costs one.
func TestReadStreams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opt := s3test.Bucket(t)
	ct := &countingTransport{}
	opt.Transport = ct
	s, err := s3.New(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef\r\n"), 200000) // 3.6 MB
	sum := sha256.Sum256(data)
	id := hex.EncodeToString(sum[:])
	w, _ := s.Create(ctx)
	w.Write(data)
	if err := w.Commit(ctx, id); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if n := ct.gets.Load(); n != 2 {
		t.Fatalf("%d GET requests for a sequential read, want 2", n)
	}
	ct.gets.Store(0)
	r, err = s.Open(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 4000)
	if _, err := r.ReadAt(head, 0); err != nil || !bytes.Equal(head, data[:4000]) {
		t.Fatalf("header read: %v", err)
	}
	r.Close()
	if n := ct.gets.Load(); n != 1 {
		t.Fatalf("%d GET requests for the header, want 1", n)
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, c := range []struct {
		in     string
		host   string
		secure bool
		bad    string
	}{
		{in: "https://s3.eu-west-1.amazonaws.com", host: "s3.eu-west-1.amazonaws.com", secure: true},
		{in: "http://127.0.0.1:7070", host: "127.0.0.1:7070"},
		{in: "http://[::1]:7070/", host: "[::1]:7070"},
		{in: "s3.amazonaws.com", bad: "https://"},
		{in: "ftp://x", bad: "https://"},
		{in: "https://", bad: "no host"},
		{in: "https://key:hunter2@s3.example.org", bad: "credentials"},
		{in: "https://s3.example.org/bucket", bad: "no path"},
		{in: "https://key:hunter2@s3.example.org/%zz", bad: "not a URL"},
	} {
		host, secure, err := s3.ParseEndpoint(c.in)
		if c.bad != "" {
			if err == nil || !strings.Contains(err.Error(), c.bad) {
				t.Errorf("ParseEndpoint(%q) = %v, want an error about %q", c.in, err, c.bad)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("ParseEndpoint(%q): the error shows the secret: %v", c.in, err)
			}
			continue
		}
		if err != nil || host != c.host || secure != c.secure {
			t.Errorf("ParseEndpoint(%q) = %q, %v, %v", c.in, host, secure, err)
		}
	}
}
