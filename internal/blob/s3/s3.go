// Package s3 is a blob.Store on S3-compatible object storage (Amazon S3,
// MinIO, Ceph RGW, the Versity gateway, ...), through
// github.com/minio/minio-go/v7.
//
// Layout in the bucket: a blob is the object ab/cd/abcd... (its id with
// two levels of prefixes, as the file driver's directories, which keeps
// listings of gateways that map keys to directories short). A body larger
// than one part is uploaded as a multipart upload to tmp/..., then copied
// into place on the server and the temporary object removed; so an object
// under a blob's key is always complete, and what an interrupted write
// leaves is under tmp/ only, where SweepTemp finds it.
//
// Memory: a Writer holds at most one part (Options.PartSize) of a body;
// a Reader holds the first 64 KiB of a blob and streams the rest, so
// neither buffers a whole large body.
//
// Retries: requests that fail with a 5xx status, a timeout or a broken
// connection are retried with exponential backoff by minio-go (bodies are
// sent from memory, so a retried part is sent again as it was); a read
// stream that breaks in the middle is opened again from where it stopped.
// 4xx answers (refused credentials, a missing bucket or object) are not
// retried, except 408 and 429 (slow down).
package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/postfach/postfach/internal/blob"
)

// Options configure New.
type Options struct {
	// Endpoint is the service's URL: "https://s3.eu-west-1.amazonaws.com",
	// "http://127.0.0.1:7070". It has no path; the bucket is Bucket.
	Endpoint string
	// Bucket must exist; New does not create it.
	Bucket string
	// Region is the bucket's region; "" lets the client ask the service.
	Region string
	// AccessKey and SecretKey sign the requests (AWS signature v4).
	AccessKey string
	SecretKey string
	// PartSize is the size of the parts of a multipart upload, and the
	// largest body sent with a single PUT; zero means DefaultPartSize. It
	// bounds a Writer's memory. At least MinPartSize.
	PartSize int64
	// MaxRetries is how many times a request is tried in all; zero means
	// DefaultMaxRetries.
	MaxRetries int
	// ReadTimeout ends a read of a body stream that received nothing for
	// this long (the stream is then opened again); zero means
	// DefaultReadTimeout.
	ReadTimeout time.Duration
	// Transport overrides the HTTP transport (tests).
	Transport http.RoundTripper
	// Logger receives operational events; nil discards them. Keys and
	// secrets are never logged.
	Logger *slog.Logger
}

const (
	// MinPartSize is the smallest part S3 accepts (but for the last one).
	MinPartSize = 5 << 20
	// DefaultPartSize is Options.PartSize's default.
	DefaultPartSize = MinPartSize
	// DefaultMaxRetries is Options.MaxRetries's default.
	DefaultMaxRetries = 8
	// DefaultReadTimeout is Options.ReadTimeout's default.
	DefaultReadTimeout = 30 * time.Second
	// TempGrace is how old temporary data (tmp/ objects and unfinished
	// multipart uploads) must be before SweepTemp removes it: longer than
	// any delivery takes, on any frontend sharing the bucket.
	TempGrace = 24 * time.Hour
	// maxCopySize is the largest object one server-side copy may make.
	maxCopySize = 5 << 30
	// headSize is what Open reads at once: a message's header and the
	// start of its body, which is all many FETCH commands need.
	headSize = 64 << 10
	// readAttempts bounds the openings of a body stream for one ReadAt
	// (or of the first bytes for Open) after a stream broke.
	readAttempts = 5
	tmpPrefix    = "tmp/"
)

// Store is a blob.Store in an S3 bucket. Methods are safe for concurrent
// use.
type Store struct {
	core        minio.Core
	bucket      string
	partSize    int64
	readTimeout time.Duration
	log         *slog.Logger
}

var (
	_ blob.Store       = (*Store)(nil)
	_ blob.TempSweeper = (*Store)(nil)
)

// ParseEndpoint checks an endpoint URL and returns its host[:port] and
// whether it uses TLS.
func ParseEndpoint(endpoint string) (host string, secure bool, err error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		// Not quoted: it may hold a secret.
		return "", false, errors.New("endpoint is not a URL (example: \"https://s3.eu-west-1.amazonaws.com\")")
	}
	show := u.Redacted()
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", false, fmt.Errorf("endpoint %q must begin with https:// (or http://)", show)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", false, fmt.Errorf("endpoint %q has no host", show)
	}
	if u.User != nil {
		return "", false, fmt.Errorf("endpoint %q must not hold credentials (use access_key and secret_key)", show)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false, fmt.Errorf("endpoint %q must have no path or query (the bucket is set apart)", show)
	}
	return u.Host, u.Scheme == "https", nil
}

// New connects to the service, checks that the bucket exists and the
// credentials are accepted, and removes temporary data older than
// TempGrace that interrupted writes left behind.
func New(ctx context.Context, opt Options) (*Store, error) {
	host, secure, err := ParseEndpoint(opt.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	if opt.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	if opt.AccessKey == "" || opt.SecretKey == "" {
		return nil, errors.New("s3: access key and secret key are both needed")
	}
	if opt.PartSize == 0 {
		opt.PartSize = DefaultPartSize
	}
	if opt.PartSize < MinPartSize || opt.PartSize > maxCopySize {
		return nil, fmt.Errorf("s3: part size %d is not between %d and %d", opt.PartSize, MinPartSize, int64(maxCopySize))
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = DefaultMaxRetries
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = DefaultReadTimeout
	}
	tr := opt.Transport
	if tr == nil {
		tr = newTransport()
	}
	c, err := minio.New(host, &minio.Options{
		Creds:      credentials.NewStaticV4(opt.AccessKey, opt.SecretKey, ""),
		Secure:     secure,
		Region:     opt.Region,
		Transport:  tr,
		MaxRetries: opt.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	s := &Store{
		core:        minio.Core{Client: c},
		bucket:      opt.Bucket,
		partSize:    opt.PartSize,
		readTimeout: opt.ReadTimeout,
		log:         opt.Logger,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	ok, err := c.BucketExists(ctx, opt.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3: check bucket %q at %s: %w", opt.Bucket, host, err)
	}
	if !ok {
		return nil, fmt.Errorf("s3: bucket %q does not exist at %s (create it first)", opt.Bucket, host)
	}
	if err := s.SweepTemp(ctx, time.Now()); err != nil {
		// Not fatal: the next sweep tries again.
		s.log.Warn("could not remove temporary data of interrupted writes", "err", err)
	}
	return s, nil
}

// newTransport is http.DefaultTransport's set-up with time limits on
// each step, so that a service that stops answering makes a request fail
// (and be retried) instead of hanging.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Bodies are mail, stored as they came; compression by the
		// transport would only cost CPU and break ranged reads.
		DisableCompression: true,
	}
}

// key is the object key of a blob.
func key(id string) string { return id[:2] + "/" + id[2:4] + "/" + id }

// notFound reports whether err is S3's answer for a missing object.
func notFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.Code == minio.NoSuchKey || (r.StatusCode == http.StatusNotFound && r.Code != minio.NoSuchBucket)
}

// Create implements blob.Store. The Writer sends the parts of a large
// body during Write, under ctx: it must outlive the Writer.
func (s *Store) Create(ctx context.Context) (blob.Writer, error) {
	return &writer{s: s, ctx: ctx}, nil
}

// writer collects a body: up to one part in buf, the parts before it
// already uploaded to a multipart upload of a tmp/ key.
type writer struct {
	s *Store
	// ctx is Create's: Write has none of its own and uploads parts.
	ctx      context.Context
	buf      []byte
	total    int64
	tmp      string // the multipart upload's key; "" until the first part goes
	uploadID string
	parts    []minio.CompletePart
	err      error // the first failure; the writer is then useless
	done     bool  // Commit or Abort was called
}

func (w *writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, errors.New("s3 blob: write after commit or abort")
	}
	if w.total+int64(len(p)) > maxCopySize {
		w.err = fmt.Errorf("s3 blob: a body over %d bytes cannot be stored", int64(maxCopySize))
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		room := int(w.s.partSize) - len(w.buf)
		if room == 0 {
			if err := w.flushPart(); err != nil {
				w.err = err
				return n, err
			}
			continue
		}
		k := min(room, len(p))
		if len(w.buf)+k > cap(w.buf) {
			// Grow by doubling up to one part: a small body costs its
			// size, a large one one part.
			nc := min(int(w.s.partSize), max(2*cap(w.buf), len(w.buf)+k, 64<<10))
			nb := make([]byte, len(w.buf), nc)
			copy(nb, w.buf)
			w.buf = nb
		}
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		n += k
		w.total += int64(k)
	}
	return n, nil
}

// flushPart uploads buf as the next part, starting the multipart upload
// with the first.
func (w *writer) flushPart() error {
	s := w.s
	if w.uploadID == "" {
		var rnd [12]byte
		rand.Read(rnd[:])
		w.tmp = tmpPrefix + time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(rnd[:])
		id, err := s.core.NewMultipartUpload(w.ctx, s.bucket, w.tmp, minio.PutObjectOptions{ContentType: "application/octet-stream"})
		if err != nil {
			return fmt.Errorf("s3 blob: start upload: %w", err)
		}
		w.uploadID = id
	}
	num := len(w.parts) + 1
	part, err := s.core.PutObjectPart(w.ctx, s.bucket, w.tmp, w.uploadID, num, bytes.NewReader(w.buf), int64(len(w.buf)), minio.PutObjectPartOptions{})
	if err != nil {
		return fmt.Errorf("s3 blob: upload part %d: %w", num, err)
	}
	w.parts = append(w.parts, minio.CompletePart{PartNumber: num, ETag: part.ETag})
	w.buf = w.buf[:0]
	return nil
}

// Abort implements blob.Writer.
func (w *writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.buf = nil
	w.cleanup()
}

// cleanup abandons the multipart upload, if any; what it cannot remove
// SweepTemp removes later.
func (w *writer) cleanup() {
	if w.uploadID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 30*time.Second)
	defer cancel()
	if err := w.s.core.AbortMultipartUpload(ctx, w.s.bucket, w.tmp, w.uploadID); err != nil {
		w.s.log.Warn("could not abandon an unfinished upload; the sweep removes it later", "object", w.tmp, "err", err)
	}
	w.uploadID = ""
}

// Commit implements blob.Writer: a body of at most one part goes with a
// single PUT; a larger one completes its multipart upload to its tmp/
// key and is then copied into place. Either way the object under the
// blob's key appears whole or not at all: a failed Commit leaves nothing
// there.
func (w *writer) Commit(ctx context.Context, id string) error {
	if w.done {
		return errors.New("s3 blob: commit after commit or abort")
	}
	if !blob.ValidID(id) {
		w.Abort()
		return fmt.Errorf("invalid blob id %q", id)
	}
	if w.err != nil {
		err := w.err
		w.Abort()
		return err
	}
	w.done = true
	s := w.s
	if w.uploadID == "" {
		_, err := s.core.PutObject(ctx, s.bucket, key(id), bytes.NewReader(w.buf), int64(len(w.buf)), "", "",
			minio.PutObjectOptions{ContentType: "application/octet-stream"})
		w.buf = nil
		if err != nil {
			return fmt.Errorf("s3 blob: put %s: %w", id, err)
		}
		return nil
	}
	w.ctx = ctx
	if len(w.buf) > 0 {
		if err := w.flushPart(); err != nil {
			w.buf = nil
			w.cleanup()
			return err
		}
	}
	w.buf = nil
	if _, err := s.core.CompleteMultipartUpload(ctx, s.bucket, w.tmp, w.uploadID, w.parts, minio.PutObjectOptions{}); err != nil {
		w.cleanup()
		return fmt.Errorf("s3 blob: complete upload of %s: %w", id, err)
	}
	w.uploadID = ""
	_, err := s.core.CopyObject(ctx, s.bucket, w.tmp, s.bucket, key(id), nil, minio.CopySrcOptions{}, minio.PutObjectOptions{})
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	if rerr := s.core.RemoveObject(rctx, s.bucket, w.tmp, minio.RemoveObjectOptions{}); rerr != nil {
		s.log.Warn("could not remove a temporary object; the sweep removes it later", "object", w.tmp, "err", rerr)
	}
	cancel()
	if err != nil {
		return fmt.Errorf("s3 blob: copy %s into place: %w", id, err)
	}
	return nil
}

// Open implements blob.Store. It reads the blob's first 64 KiB and its
// size with one request; further reads stream the rest (see reader).
// The reader's requests run under ctx: it must outlive the Reader.
func (s *Store) Open(ctx context.Context, id string) (blob.Reader, error) {
	if !blob.ValidID(id) {
		return nil, fmt.Errorf("open blob %q: %w", id, blob.ErrNotFound)
	}
	r := &reader{s: s, ctx: ctx, key: key(id)}
	var err error
	for attempt := 0; attempt < readAttempts; attempt++ {
		if attempt > 0 && !sleep(ctx, attempt) {
			break
		}
		err = r.openHead()
		// A failed request was retried by minio-go already; what is
		// tried again here is a body that broke while it was read.
		var re readError
		if err == nil || !errors.As(err, &re) || !retryable(ctx, re.err) {
			break
		}
	}
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("open blob %s: %w", id, blob.ErrNotFound)
		}
		return nil, fmt.Errorf("open blob %s: %w", id, err)
	}
	return r, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	if !blob.ValidID(id) {
		return fmt.Errorf("invalid blob id %q", id)
	}
	err := s.core.RemoveObject(ctx, s.bucket, key(id), minio.RemoveObjectOptions{})
	if err != nil && !notFound(err) {
		return fmt.Errorf("delete blob %s: %w", id, err)
	}
	return nil
}

// Walk implements blob.Store. Temporary objects are not blobs and are
// not listed.
func (s *Store) Walk(ctx context.Context, fn func(id string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the listing goroutine when fn stops early
	for obj := range s.core.Client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("list blobs: %w", obj.Err)
		}
		id := path.Base(obj.Key)
		if !blob.ValidID(id) || obj.Key != key(id) {
			continue
		}
		if err := fn(id); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// SweepTemp implements blob.TempSweeper: it removes the tmp/ objects and
// the unfinished multipart uploads that are older than TempGrace at now,
// which only interrupted writes leave (a crash, a lost connection, a
// failed Abort).
func (s *Store) SweepTemp(ctx context.Context, now time.Time) error {
	before := now.Add(-TempGrace)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	objects, uploads := 0, 0
	for obj := range s.core.Client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: tmpPrefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("sweep temporary objects: %w", obj.Err)
		}
		if !obj.LastModified.Before(before) {
			continue
		}
		if err := s.core.RemoveObject(ctx, s.bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil && !notFound(err) {
			return fmt.Errorf("sweep temporary objects: %w", err)
		}
		objects++
	}
	for up := range s.core.ListIncompleteUploads(ctx, s.bucket, tmpPrefix, true) {
		if up.Err != nil {
			return fmt.Errorf("sweep unfinished uploads: %w", up.Err)
		}
		if !up.Initiated.Before(before) {
			continue
		}
		if err := s.core.AbortMultipartUpload(ctx, s.bucket, up.Key, up.UploadID); err != nil && !notFound(err) {
			return fmt.Errorf("sweep unfinished uploads: %w", err)
		}
		uploads++
	}
	if objects > 0 || uploads > 0 {
		s.log.Info("removed temporary data of interrupted writes", "objects", objects, "uploads", uploads)
	}
	return nil
}

// retryable reports whether a failed read may succeed when tried again:
// anything but a cancelled caller and an answer of the service that is
// not a 5xx (a 4xx, such as a missing object, stays what it is).
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if r := minio.ToErrorResponse(err); r.StatusCode != 0 {
		return r.StatusCode >= 500 || r.StatusCode == http.StatusRequestTimeout || r.StatusCode == http.StatusTooManyRequests
	}
	return !errors.Is(err, io.EOF)
}

// sleep waits before attempt (1, 2, ...): 100 ms, doubling, at most 2 s.
// It reports false when ctx ended first.
func sleep(ctx context.Context, attempt int) bool {
	d := min(100*time.Millisecond<<(attempt-1), 2*time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// parseContentRange returns the total size of "bytes a-b/total".
func parseContentRange(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	_, total, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil && n >= 0
}

// idleReader re-arms t for d before each Read, so t fires only when a
// single Read waits that long.
type idleReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (i *idleReader) Read(p []byte) (int, error) {
	i.t.Reset(i.d)
	n, err := i.r.Read(p)
	i.t.Stop()
	return n, err
}

// readError is a failure to read a response's body (as opposed to a
// failed request).
type readError struct{ err error }

func (e readError) Error() string { return "read: " + e.err.Error() }
func (e readError) Unwrap() error { return e.err }

// reader reads a blob: the first headSize bytes from memory, the rest
// from one GET stream that follows sequential reads and is opened again
// (with a Range from the wanted offset to the end) when a read jumps or
// the stream breaks.
type reader struct {
	s *Store
	// ctx is Open's: ReadAt has none of its own and sends requests.
	ctx  context.Context
	key  string
	size int64
	head []byte // the blob's first bytes; immutable after Open

	mu     sync.Mutex // guards the stream fields below, and serialises ReadAt beyond head
	body   io.ReadCloser
	cancel context.CancelFunc // ends body's request
	timer  *time.Timer        // cancels body's request when a read stalls
	pos    int64              // the offset of body's next byte
}

// openHead reads the first headSize bytes and learns the size.
func (r *reader) openHead() error {
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	var opts minio.GetObjectOptions
	opts.SetRange(0, headSize-1)
	body, info, hdr, err := r.s.core.GetObject(ctx, r.s.bucket, r.key, opts)
	if minio.ToErrorResponse(err).Code == "InvalidRange" {
		// An empty object has no byte 0.
		st, serr := r.s.core.StatObject(r.ctx, r.s.bucket, r.key, minio.StatObjectOptions{})
		if serr != nil {
			return serr
		}
		if st.Size != 0 {
			return fmt.Errorf("range refused for an object of %d bytes", st.Size)
		}
		r.size, r.head = 0, nil
		return nil
	}
	if err != nil {
		return err
	}
	defer body.Close()
	size, ok := parseContentRange(hdr.Get("Content-Range"))
	if !ok {
		// The service ignored the range and sends the whole object.
		size = info.Size
	}
	if size < 0 {
		return errors.New("service did not tell the object's size")
	}
	head := make([]byte, min(size, headSize))
	// A stalled body ends the request (and is tried again).
	stall := time.AfterFunc(r.s.readTimeout, cancel)
	_, err = io.ReadFull(&idleReader{r: body, t: stall, d: r.s.readTimeout}, head)
	stall.Stop()
	if err != nil {
		return readError{err}
	}
	r.size, r.head = size, head
	return nil
}

func (r *reader) Size() int64 { return r.size }

// ReadAt implements io.ReaderAt; concurrent calls are serialised.
func (r *reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("s3 blob: negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := int(min(int64(len(p)), r.size-off))
	n := 0
	if off < int64(len(r.head)) {
		n = copy(p[:want], r.head[off:])
	}
	if n < want {
		r.mu.Lock()
		m, err := r.readStream(p[n:want], off+int64(n))
		r.mu.Unlock()
		n += m
		if err != nil {
			return n, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readStream fills p from offset off. r.mu must be held.
func (r *reader) readStream(p []byte, off int64) (int, error) {
	n := 0
	attempt := 0 // streams opened by this call
	var lastErr error
	for n < len(p) {
		if r.body == nil || r.pos != off+int64(n) {
			r.closeStream()
			if attempt == readAttempts || attempt > 0 && !sleep(r.ctx, attempt) {
				break
			}
			attempt++
			if err := r.openStream(off + int64(n)); err != nil {
				// minio-go retried the request already.
				lastErr = err
				break
			}
		}
		r.timer.Reset(r.s.readTimeout)
		m, err := r.body.Read(p[n:])
		r.timer.Stop()
		n += m
		r.pos += int64(m)
		switch {
		case err == nil:
		case err == io.EOF && n == len(p):
		case err == io.EOF:
			// The stream ended before the object does: open it again.
			lastErr = io.ErrUnexpectedEOF
			r.closeStream()
		default:
			// Broken, or stalled (the timer cancelled it): open it
			// again from here unless the caller is gone.
			lastErr = err
			r.closeStream()
			if !retryable(r.ctx, err) {
				return n, fmt.Errorf("s3 blob: read %s at %d: %w: %w", path.Base(r.key), off+int64(n), blob.ErrUnavailable, err)
			}
		}
	}
	if n < len(p) {
		if lastErr == nil {
			lastErr = r.ctx.Err()
		}
		if lastErr == nil {
			lastErr = io.ErrUnexpectedEOF
		}
		// The size is the service's (Open), so a short stream is a
		// failing service, not a damaged blob.
		return n, fmt.Errorf("s3 blob: read %s at %d: %w: %w", path.Base(r.key), off+int64(n), blob.ErrUnavailable, lastErr)
	}
	return n, nil
}

// openStream starts a GET from off to the end. r.mu must be held.
func (r *reader) openStream(off int64) error {
	ctx, cancel := context.WithCancel(r.ctx)
	var opts minio.GetObjectOptions
	opts.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
	body, _, hdr, err := r.s.core.GetObject(ctx, r.s.bucket, r.key, opts)
	if err != nil {
		cancel()
		return err
	}
	if cr := hdr.Get("Content-Range"); !strings.HasPrefix(cr, "bytes "+strconv.FormatInt(off, 10)+"-") {
		body.Close()
		cancel()
		return fmt.Errorf("service answered range %d- with %q", off, cr)
	}
	r.body, r.cancel, r.pos = body, cancel, off
	r.timer = time.AfterFunc(time.Hour, cancel)
	r.timer.Stop()
	return nil
}

// closeStream ends the current stream, if any. r.mu must be held.
func (r *reader) closeStream() {
	if r.body == nil {
		return
	}
	r.timer.Stop()
	r.cancel()
	r.body.Close()
	r.body, r.cancel, r.timer = nil, nil, nil
}

func (r *reader) Close() error {
	r.mu.Lock()
	r.closeStream()
	r.mu.Unlock()
	return nil
}
