package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// staged is a body ready to be appended: inline bytes for small bodies, or
// a committed file in the blob store (registered in Store.staged so the
// sweep leaves it alone until Discard).
type staged struct {
	s       *Store
	id      string
	size    int64
	inline  []byte
	sum     *message.Summary
	sumData []byte
	dots    []byte // store.DotScanner's encoding; file bodies only

	once  sync.Once
	mu    sync.Mutex
	rowID int64 // blobs.id once committed; guarded by mu
}

var _ store.Staged = (*staged)(nil)

func (b *staged) BlobID() string            { return b.id }
func (b *staged) Size() int64               { return b.size }
func (b *staged) Summary() *message.Summary { return b.sum }
func (b *staged) Discard()                  { b.once.Do(b.release) }
func (b *staged) release() {
	if b.inline == nil {
		b.s.unregisterStaged(b.id)
	}
}

// Stage implements store.Store. Bodies up to inlineMax stay in memory and
// are written with the metadata commit; larger ones stream to a blob file
// (hashed and parsed on the way) that is durable when Stage returns.
func (s *Store) Stage(ctx context.Context, r io.Reader, maxSize int64) (store.Staged, error) {
	limit := int64(-1)
	if maxSize > 0 {
		limit = maxSize
	}
	h := sha256.New()
	// Read up to inlineMax+1 bytes into a pooled buffer first; a small
	// body is then copied out at its size.
	pooled := stageBufs.Get().(*[]byte)
	defer stageBufs.Put(pooled)
	buf := (*pooled)[:0]
	for int64(len(buf)) <= inlineMax {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if limit >= 0 && int64(len(buf)) > limit {
			return nil, store.ErrTooBig
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read message: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if len(buf) == 0 {
		return nil, store.ErrEmptyMessage
	}
	if int64(len(buf)) <= inlineMax {
		inline := bytes.Clone(buf)
		h.Write(inline)
		sum, err := message.Parse(bytes.NewReader(inline))
		if err != nil {
			return nil, fmt.Errorf("parse message: %w", err)
		}
		return s.newStaged(hex.EncodeToString(h.Sum(nil)), int64(len(inline)), inline, sum)
	}
	return s.stageLarge(ctx, buf, r, limit, h)
}

// stageBufs holds the buffers in which Stage reads the first inlineMax+1
// bytes of a body.
var stageBufs = sync.Pool{New: func() any {
	b := make([]byte, inlineMax+1)
	return &b
}}

func (s *Store) newStaged(id string, size int64, inline []byte, sum *message.Summary) (*staged, error) {
	data, err := sum.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode summary: %w", err)
	}
	return &staged{s: s, id: id, size: size, inline: inline, sum: sum, sumData: data}, nil
}

// stageLarge streams a big body into the blob store while hashing and
// parsing it in one pass. The parser pulls the body through a teeReader,
// which writes each chunk to the hash, the file and the dot-line scanner
// before the parser sees it: one goroutine, no hand-over per chunk.
func (s *Store) stageLarge(ctx context.Context, head []byte, rest io.Reader, limit int64, h hash.Hash) (store.Staged, error) {
	bw, err := s.blobs.Create(ctx)
	if err != nil {
		if err = mapErr(fmt.Errorf("stage message: %w", err)); errors.Is(err, store.ErrDiskFull) {
			s.diskFull()
		}
		return nil, err
	}
	var dots store.DotScanner
	pooled := teeBufs.Get().(*[]byte)
	defer teeBufs.Put(pooled)
	tee := &teeReader{ctx: ctx, head: head, src: rest, limit: limit, buf: *pooled,
		w: []io.Writer{h, bw, &dots}}
	sum, perr := message.Parse(tee)
	switch {
	case tee.err != nil:
		perr = tee.err // the reader's own error, not the parser's wrapping
	case perr != nil:
		perr = fmt.Errorf("parse message: %w", perr)
	case !tee.eof:
		// The parser reads to the end; make sure all of it was stored.
		perr = errors.New("parse message: stopped before the end")
	}
	if perr != nil {
		bw.Abort()
		if perr = mapErr(perr); errors.Is(perr, store.ErrDiskFull) {
			s.diskFull()
		}
		return nil, perr
	}
	id := hex.EncodeToString(h.Sum(nil))
	s.registerStaged(id)
	if err := bw.Commit(ctx, id); err != nil {
		s.unregisterStaged(id)
		if err = mapErr(fmt.Errorf("store message body: %w", err)); errors.Is(err, store.ErrDiskFull) {
			s.diskFull()
		}
		return nil, err
	}
	b, err := s.newStaged(id, tee.n, nil, sum)
	if err != nil {
		s.unregisterStaged(id)
		return nil, err
	}
	b.dots = dots.Encode()
	return b, nil
}

// teeChunk is how much a teeReader collects before it writes it on: a few
// reads of the message reader, small enough that the work on the last
// chunk after the last byte arrived stays short.
const teeChunk = 64 << 10

// teeBufs holds the buffers of teeReaders.
var teeBufs = sync.Pool{New: func() any {
	b := make([]byte, teeChunk)
	return &b
}}

// teeReader reads head and then src in chunks of up to teeChunk bytes,
// writes each chunk to every writer of w and then hands it to its own
// reader. It fails with store.ErrTooBig past limit (when >= 0) and stops
// when ctx ends. Its errors are sticky, in err.
type teeReader struct {
	ctx   context.Context
	head  []byte
	src   io.Reader
	w     []io.Writer
	limit int64
	buf   []byte

	pending []byte // written on, not yet read
	n       int64  // bytes taken from head and src
	eof     bool   // src ended and everything was read
	err     error
}

func (t *teeReader) Read(p []byte) (int, error) {
	if len(t.pending) == 0 {
		if t.err != nil {
			return 0, t.err
		}
		if t.eof {
			return 0, io.EOF
		}
		if err := t.fill(); err != nil {
			t.err = err
			return 0, err
		}
		if len(t.pending) == 0 {
			t.eof = true
			return 0, io.EOF
		}
	}
	n := copy(p, t.pending)
	t.pending = t.pending[n:]
	return n, nil
}

// fill collects the next chunk and writes it on; an empty chunk is the
// end of the input.
func (t *teeReader) fill() error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	chunk := t.buf[:0]
	if len(t.head) > 0 {
		// The head (the first bytes Stage read) is written as it is.
		chunk, t.head = t.head, nil
	} else {
		var rerr error
		for len(chunk) < cap(chunk) && rerr == nil {
			var m int
			m, rerr = t.src.Read(chunk[len(chunk):cap(chunk)])
			chunk = chunk[:len(chunk)+m]
			if m == 0 && rerr == nil {
				break // nothing now: hand on what there is
			}
		}
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("read message: %w", rerr)
		}
	}
	t.n += int64(len(chunk))
	if t.limit >= 0 && t.n > t.limit {
		return store.ErrTooBig
	}
	for _, w := range t.w {
		if _, err := w.Write(chunk); err != nil {
			return fmt.Errorf("write message body: %w", err)
		}
	}
	t.pending = chunk
	return nil
}

func (s *Store) registerStaged(id string) {
	s.stagedMu.Lock()
	s.staged[id]++
	s.stagedMu.Unlock()
}

func (s *Store) unregisterStaged(id string) {
	s.stagedMu.Lock()
	if s.staged[id]--; s.staged[id] <= 0 {
		delete(s.staged, id)
	}
	s.stagedMu.Unlock()
}

// asStaged checks that a store.Staged came from this store.
func (s *Store) asStaged(b store.Staged) (*staged, error) {
	sb, ok := b.(*staged)
	if !ok || sb.s != s {
		return nil, errors.New("staged body from another store")
	}
	return sb, nil
}

// insertBlobTx stores a staged body in the blobs table and returns its row
// id. A file body already recorded (same hash) is shared; an inline body
// gets a row of its own unless this staged body was committed before.
func insertBlobTx(w *wtx, b *staged, now int64) (int64, error) {
	if id := b.row(); id != 0 {
		var n int
		if err := w.QueryRowContext(w.ctx, `SELECT count(*) FROM blobs WHERE id = ?`, id).Scan(&n); err != nil {
			return 0, err
		}
		if n > 0 {
			return id, nil
		}
	}
	if b.inline == nil {
		var id int64
		err := w.QueryRowContext(w.ctx, `SELECT id FROM blobs WHERE hash = ? AND data IS NULL`, b.id).Scan(&id)
		if err == nil && b.dots != nil {
			// A row without its dot lines (a damaged record cleared) gets them now.
			_, err = w.ExecContext(w.ctx, `UPDATE blobs SET dots = ? WHERE id = ? AND dots IS NULL`, b.dots, id)
		}
		if err == nil {
			// Staging wrote the file anew from the content just
			// hashed (stageLarge), so a record that it was found
			// damaged (missing, cut, altered) no longer holds: the
			// new message, and the old ones that share the body,
			// are whole again.
			w.afterCommit(func() { b.s.clearDamaged(id, b.id) })
			return id, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
	}
	var data, dots any
	if b.inline != nil {
		data = b.inline
	} else if b.dots != nil {
		dots = b.dots
	}
	id, err := insertID(w, `INSERT INTO blobs (hash, size, data, summary, created, dots) VALUES (?, ?, ?, ?, ?, ?)`,
		b.id, b.size, data, b.sumData, now, dots)
	if err != nil {
		return 0, err
	}
	w.afterCommit(func() { b.setRow(id) })
	return id, nil
}

// row returns the blobs row of this body once a commit stored it, else 0.
func (b *staged) row() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rowID
}

func (b *staged) setRow(id int64) {
	b.mu.Lock()
	b.rowID = id
	b.mu.Unlock()
}
