package abuse

// Faults of the S3 object storage under the s3 blob driver (issue 18): a
// service that answers 503, drops connections, cuts a body stream in the
// middle or stalls it. A fault proxy sits between the driver and a real
// S3 service (s3test: the Versity gateway in CI). The rules: transient
// failures are retried and the operation succeeds; a 4xx is not retried;
// a put that fails leaves nothing under the blob's key and no unfinished
// upload behind.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/blob/s3"
	"github.com/postfach/postfach/internal/blob/s3/s3test"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// s3Fault is what the proxy does to one request.
type s3Fault int

const (
	s3Pass     s3Fault = iota
	s3Answer           // answer status (with an S3 error body) without asking the service
	s3Drop             // close the connection without an answer
	s3Cut              // forward, but cut the answer's body after cutAfter bytes
	s3Stall            // forward, but stop sending the body after cutAfter bytes
	s3Response         // forward, then replace a 2xx answer by status (the work was done)
)

// s3Rule applies a fault to the next count requests that match.
type s3Rule struct {
	match    func(r *http.Request) bool
	fault    s3Fault
	status   int
	cutAfter int64
	count    int // -1: every matching request
}

// s3Proxy forwards S3 requests to the real service, applying rules, and
// records the requests it saw.
type s3Proxy struct {
	t        *testing.T
	upstream *url.URL
	tr       *http.Transport
	stop     chan struct{} // closed at the end of the test: stalled answers end

	mu    sync.Mutex
	rules []*s3Rule // guarded by mu
	seen  []string  // "METHOD path?query", guarded by mu
}

func s3NewProxy(t *testing.T, endpoint string) (*s3Proxy, string) {
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &s3Proxy{t: t, upstream: u, tr: &http.Transport{}, stop: make(chan struct{})}
	srv := httptest.NewServer(p)
	t.Cleanup(func() {
		close(p.stop)
		srv.CloseClientConnections()
		srv.Close()
		p.tr.CloseIdleConnections()
	})
	return p, srv.URL
}

// clear ends every rule.
func (p *s3Proxy) clear() {
	p.mu.Lock()
	for _, r := range p.rules {
		r.count = 0
	}
	p.mu.Unlock()
}

func (p *s3Proxy) add(r *s3Rule) {
	p.mu.Lock()
	p.rules = append(p.rules, r)
	p.mu.Unlock()
}

// count returns how many requests matched f.
func (p *s3Proxy) count(f func(string) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.seen {
		if f(s) {
			n++
		}
	}
	return n
}

func (p *s3Proxy) take(r *http.Request) *s3Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, r.Method+" "+r.URL.RequestURI())
	for _, rule := range p.rules {
		if rule.count != 0 && rule.match(r) {
			if rule.count > 0 {
				rule.count--
			}
			return rule
		}
	}
	return &s3Rule{fault: s3Pass}
}

func s3ErrorBody(w http.ResponseWriter, status int) {
	code := map[int]string{503: "SlowDown", 500: "InternalError", 403: "AccessDenied"}[status]
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+code+`</Code><Message>injected by the test</Message></Error>`)
}

func (p *s3Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rule := p.take(r)
	switch rule.fault {
	case s3Answer:
		io.Copy(io.Discard, r.Body)
		s3ErrorBody(w, rule.status)
		return
	case s3Drop:
		panic(http.ErrAbortHandler) // the server closes the connection
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = p.upstream.Scheme, p.upstream.Host
	out.RequestURI = ""
	out.Host = r.Host // signed by the client
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if rule.fault == s3Response && resp.StatusCode/100 == 2 {
		io.Copy(io.Discard, resp.Body)
		s3ErrorBody(w, rule.status)
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	switch rule.fault {
	case s3Cut, s3Stall:
		io.CopyN(w, resp.Body, rule.cutAfter)
		http.NewResponseController(w).Flush()
		if rule.fault == s3Stall {
			select {
			case <-r.Context().Done():
			case <-p.stop:
			}
		}
		panic(http.ErrAbortHandler)
	}
	io.Copy(w, resp.Body)
}

// s3IsPut matches a whole-object PUT (not a part, not a copy).
func s3IsPut(r *http.Request) bool {
	return r.Method == http.MethodPut && r.URL.Query().Get("partNumber") == "" && r.Header.Get("X-Amz-Copy-Source") == ""
}

func s3IsPart(r *http.Request) bool {
	return r.Method == http.MethodPut && r.URL.Query().Get("partNumber") != ""
}

func s3IsCopy(r *http.Request) bool {
	return r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != ""
}

func s3IsComplete(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Query().Has("uploadId")
}

// s3Stores returns a driver through the proxy and one straight to the
// service, on one fresh bucket, and the bucket's name.
func s3Stores(t *testing.T, opt func(*s3.Options)) (*s3Proxy, *s3.Store, *s3.Store, string) {
	base := s3test.Bucket(t)
	direct, err := s3.New(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	p, purl := s3NewProxy(t, base.Endpoint)
	o := base
	o.Endpoint = purl
	if opt != nil {
		opt(&o)
	}
	faulty, err := s3.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return p, faulty, direct, base.Bucket
}

func s3Body(n int, seed uint64) ([]byte, string) {
	rng := rand.New(rand.NewPCG(seed, 7))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(' ' + rng.IntN(90))
	}
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:])
}

func s3Put(ctx context.Context, s blob.Store, data []byte, id string) error {
	w, err := s.Create(ctx)
	if err != nil {
		return err
	}
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 100<<10)
		if _, err := w.Write(rest[:n]); err != nil {
			w.Abort()
			return err
		}
		rest = rest[n:]
	}
	return w.Commit(ctx, id)
}

// s3Check reads id through s and compares it with data.
func s3Check(t *testing.T, s blob.Store, id string, data []byte) {
	t.Helper()
	r, err := s.Open(context.Background(), id)
	if err != nil {
		t.Fatalf("open %s: %v", id[:8], err)
	}
	defer r.Close()
	got, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d of %d bytes (err %v), or content differs", len(got), len(data), err)
	}
}

// s3Nothing checks that the bucket holds no blob, no temporary object and
// no unfinished upload.
func s3Nothing(t *testing.T, direct *s3.Store, bucket string) {
	t.Helper()
	ctx := context.Background()
	n := 0
	if err := direct.Walk(ctx, func(string) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d blobs visible after a failed put", n)
	}
	c := s3test.Client(t)
	for obj := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		t.Fatalf("object %q left after a failed put (err %v)", obj.Key, obj.Err)
	}
	for up := range c.ListIncompleteUploads(ctx, bucket, "", true) {
		t.Fatalf("unfinished upload of %q left after a failed put (err %v)", up.Key, up.Err)
	}
}

// TestS3TransientFailuresRetried: 503s, dropped connections and a lost
// answer on every kind of request of a put are retried, and the blob
// arrives whole: a small one (one PUT) and a large one (three parts,
// complete, copy).
func TestS3TransientFailuresRetried(t *testing.T) {
	t.Parallel()
	p, faulty, direct, _ := s3Stores(t, nil)
	ctx := context.Background()
	p.add(&s3Rule{match: s3IsPut, fault: s3Answer, status: 503, count: 2})
	p.add(&s3Rule{match: s3IsPart, fault: s3Drop, count: 1})
	p.add(&s3Rule{match: s3IsPart, fault: s3Answer, status: 500, count: 1})
	p.add(&s3Rule{match: s3IsComplete, fault: s3Answer, status: 503, count: 1})
	p.add(&s3Rule{match: s3IsCopy, fault: s3Drop, count: 1})

	small, smallID := s3Body(300<<10, 1)
	if err := s3Put(ctx, faulty, small, smallID); err != nil {
		t.Fatalf("small put through 503s: %v", err)
	}
	large, largeID := s3Body(11<<20, 2)
	if err := s3Put(ctx, faulty, large, largeID); err != nil {
		t.Fatalf("large put through faults: %v", err)
	}
	s3Check(t, direct, smallID, small)
	s3Check(t, direct, largeID, large)
	if n := p.count(func(s string) bool { return strings.HasPrefix(s, "PUT ") }); n < 2+1+3+1+2 {
		t.Errorf("only %d PUT requests: the faults were not all met", n)
	}
}

// TestS3NoRetryOn4xx: a refusal (403) is final: one request, and the
// error says what the service said.
func TestS3NoRetryOn4xx(t *testing.T) {
	t.Parallel()
	p, faulty, direct, _ := s3Stores(t, nil)
	ctx := context.Background()
	data, id := s3Body(200<<10, 3)
	if err := s3Put(ctx, direct, data, id); err != nil {
		t.Fatal(err)
	}
	p.add(&s3Rule{match: func(r *http.Request) bool { return r.Method == http.MethodGet }, fault: s3Answer, status: 403, count: -1})
	_, err := faulty.Open(ctx, id)
	if err == nil || errors.Is(err, blob.ErrNotFound) || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("Open under 403 = %v, want the refusal", err)
	}
	if n := p.count(func(s string) bool { return strings.HasPrefix(s, "GET ") && strings.Contains(s, id) }); n != 1 {
		t.Fatalf("%d GET requests for a 403, want 1 (no retry)", n)
	}
	p.add(&s3Rule{match: s3IsPut, fault: s3Answer, status: 403, count: -1})
	if err := s3Put(ctx, faulty, []byte("x"), "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"); err == nil {
		t.Fatal("put under 403 succeeded")
	}
	if n := p.count(func(s string) bool { return strings.HasPrefix(s, "PUT ") }); n != 1 {
		t.Fatalf("%d PUT requests for a 403, want 1 (no retry)", n)
	}
}

// TestS3FailedPutLeavesNothing: a put whose requests keep failing
// returns an error, and leaves no blob, temporary object or unfinished
// upload, whichever step failed for good.
func TestS3FailedPutLeavesNothing(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		size  int
		match func(*http.Request) bool
		fault s3Fault
	}{
		{"single put", 200 << 10, s3IsPut, s3Answer},
		{"second part", 11 << 20, func(r *http.Request) bool { return s3IsPart(r) && r.URL.Query().Get("partNumber") == "2" }, s3Answer},
		{"complete", 11 << 20, s3IsComplete, s3Answer},
		{"copy into place", 11 << 20, s3IsCopy, s3Answer},
		// The service made the object but the answer was lost, every
		// time: the driver cannot know, and must remove what it made.
		{"copy answer lost", 11 << 20, s3IsCopy, s3Response},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, faulty, direct, bucket := s3Stores(t, func(o *s3.Options) { o.MaxRetries = 3 })
			p.add(&s3Rule{match: c.match, fault: c.fault, status: 503, count: -1})
			data, id := s3Body(c.size, 4)
			if err := s3Put(context.Background(), faulty, data, id); err == nil {
				t.Fatal("put succeeded though the service kept failing")
			}
			if c.fault == s3Response {
				// The object may be there; it is an orphan like any other
				// blob without a row, for the store's sweep. What must not
				// be left is temporary data.
				direct.Delete(context.Background(), id)
			}
			s3Nothing(t, direct, bucket)
		})
	}
}

// TestS3ReadStreamBroken: a body stream cut in the middle, or stalled, is
// opened again from where it stopped, and the reader gets every byte.
func TestS3ReadStreamBroken(t *testing.T) {
	t.Parallel()
	for _, fault := range []s3Fault{s3Cut, s3Stall} {
		name := map[s3Fault]string{s3Cut: "cut", s3Stall: "stall"}[fault]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, faulty, direct, _ := s3Stores(t, func(o *s3.Options) { o.ReadTimeout = 300 * time.Millisecond })
			ctx := context.Background()
			data, id := s3Body(3<<20, 5)
			if err := s3Put(ctx, direct, data, id); err != nil {
				t.Fatal(err)
			}
			// The stream after the first 64 KiB breaks twice.
			stream := func(r *http.Request) bool {
				return r.Method == http.MethodGet && strings.HasPrefix(r.Header.Get("Range"), "bytes=") && !strings.HasPrefix(r.Header.Get("Range"), "bytes=0-")
			}
			p.add(&s3Rule{match: stream, fault: fault, cutAfter: 500 << 10, count: 2})
			// And so does the first request, for the first 64 KiB.
			first := func(r *http.Request) bool { return strings.HasPrefix(r.Header.Get("Range"), "bytes=0-") }
			p.add(&s3Rule{match: first, fault: fault, cutAfter: 10000, count: 1})
			s3Check(t, faulty, id, data)
			if n := p.count(func(s string) bool { return strings.HasPrefix(s, "GET ") && strings.Contains(s, id) }); n != 5 {
				t.Fatalf("%d GET requests of the object, want 5 (two for the first bytes, three for the rest)", n)
			}
		})
	}
}

// TestS3OutageIsNotDamage: when the object store fails while the store
// checks its bodies (postfach check, the scrub), the check fails with
// the storage's error; it does not report the bodies as damaged, which
// would make the store refuse them for good. Once the storage is back,
// the bodies are served and the check finds nothing.
func TestS3OutageIsNotDamage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, faulty, _, _ := s3Stores(t, func(o *s3.Options) { o.ReadTimeout = 300 * time.Millisecond })
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: t.TempDir(), SweepInterval: -1, Blobs: faulty})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := st.CreateAccount(ctx, "a@example.org", "x")
	if err != nil {
		t.Fatal(err)
	}
	inbox, _ := st.Mailbox(ctx, a.ID, "INBOX")
	raw := "Subject: big\r\n\r\n" + strings.Repeat("a line of the body\r\n", 50000)
	b, err := st.Stage(ctx, strings.NewReader(raw), 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Append(ctx, a.ID, inbox.ID, []store.NewMessage{{Body: b}})
	b.Discard()
	if err != nil {
		t.Fatal(err)
	}
	// Every body stream after the first 64 KiB breaks.
	p.add(&s3Rule{match: func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.HasPrefix(r.Header.Get("Range"), "bytes=") && !strings.HasPrefix(r.Header.Get("Range"), "bytes=0-")
	}, fault: s3Cut, cutAfter: 1000, count: -1})
	probs, err := st.Check(ctx)
	if err == nil || !errors.Is(err, blob.ErrUnavailable) {
		t.Fatalf("Check during an outage = %v, %v; want the storage's error", probs, err)
	}
	p.clear()
	var blobID string
	for m, err := range st.Messages(ctx, a.ID, inbox.ID, mail.NewUIDSet(res.UIDs...), store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		blobID = m.BlobID
	}
	body, err := st.OpenBody(ctx, blobID)
	if err != nil {
		t.Fatalf("body refused after the outage: %v", err)
	}
	got, err := io.ReadAll(io.NewSectionReader(body, 0, body.Size()))
	body.Close()
	if err != nil || string(got) != raw {
		t.Fatalf("body after the outage: %d bytes, %v", len(got), err)
	}
	if probs, err := st.Check(ctx); err != nil || len(probs) != 0 {
		t.Fatalf("Check after the outage = %v, %v; want no problem", probs, err)
	}
}
