package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/store"
)

// Options configure Backup.
type Options struct {
	// Logger receives progress and problems; nil discards them.
	Logger *slog.Logger
	// Postfach is the version recorded in the manifest.
	Postfach string
	// Now is the clock that names the backup; nil means time.Now.
	Now func() time.Time
}

// Result reports a backup.
type Result struct {
	// Dir is the backup's directory.
	Dir      string
	Manifest *Manifest
	// Damaged lists the bodies that could not be copied because the
	// store holds them damaged (missing, cut, or not matching their
	// hash): their messages are in the backup, their bodies are not, and
	// verify reports them.
	Damaged []string
}

// Backup writes a backup of the store into a new directory of root,
// sharing root/blobs with the backups already there. Everything the
// store acknowledged before the call is in it (the snapshot is taken
// first).
func Backup(ctx context.Context, sner store.Snapshotter, root string, opt Options) (*Result, error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	if err := os.MkdirAll(filepath.Join(root, "blobs"), 0o700); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	unlock, err := lockRoot(root)
	if err != nil {
		return nil, err
	}
	defer unlock()
	start := now()
	sn, err := sner.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer sn.Close()

	name := "postfach-" + start.UTC().Format("20060102T150405Z")
	for i := 2; exists(filepath.Join(root, name)); i++ {
		name = "postfach-" + start.UTC().Format("20060102T150405Z") + "-" + strconv.Itoa(i)
	}
	tmp := filepath.Join(root, ".tmp-"+name)
	os.RemoveAll(tmp)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	w := &writer{sn: sn, root: root, bodies: map[string]int64{}, log: log, files: map[string]*recordWriter{}}
	defer w.abort()
	for _, k := range Kinds {
		if w.files[k], err = newRecordWriter(tmp, k); err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
	}
	if err := w.all(ctx); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := w.flushBodies(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	m := &Manifest{Format: FormatName, Version: Version, Created: start.UTC(), Postfach: opt.Postfach,
		Bodies: int64(len(w.bodies)), NewBodies: w.newBodies, NewBytes: w.newBytes}
	for _, size := range w.bodies {
		m.BodyBytes += size
	}
	for _, k := range Kinds {
		fi, err := w.files[k].finish()
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		delete(w.files, k)
		m.Files = append(m.Files, fi)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := writeFileSync(filepath.Join(tmp, ManifestName), append(data, '\n')); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := errors.Join(syncDir(filepath.Join(root, "blobs")), syncDir(tmp)); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	dir := filepath.Join(root, name)
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	done = true
	if err := syncDir(root); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	log.Info("backup written", "dir", dir, "bodies", m.Bodies, "new_bodies", m.NewBodies, "new_bytes", m.NewBytes, "damaged", len(w.damaged))
	return &Result{Dir: dir, Manifest: m, Damaged: w.damaged}, nil
}

// writer is the state of one Backup.
type writer struct {
	sn        store.Snapshot
	root      string
	files     map[string]*recordWriter
	bodies    map[string]int64 // hash -> size of the bodies listed
	newBodies int64
	newBytes  int64
	damaged   []string
	log       *slog.Logger
	// pending are bodies written and not yet durable (flushBodies).
	pending      []pendingBody
	pendingBytes int64
}

func (w *writer) abort() {
	for _, f := range w.files {
		f.abort()
	}
	for _, p := range w.pending {
		p.f.Close()
		os.Remove(p.f.Name())
	}
	w.pending = nil
}

func (w *writer) add(kind string, rec any) error { return w.files[kind].add(rec) }

// all writes every record of the snapshot.
func (w *writer) all(ctx context.Context) error {
	accts, err := w.sn.Accounts(ctx)
	if err != nil {
		return err
	}
	for _, a := range accts {
		if err := w.account(ctx, a); err != nil {
			return fmt.Errorf("account %s: %w", a.Name, err)
		}
	}
	aliases, err := w.sn.Aliases(ctx)
	if err != nil {
		return err
	}
	for _, al := range aliases {
		rec := AliasRecord{Address: al.Address, Created: al.Created}
		for _, t := range al.Targets {
			rec.Targets = append(rec.Targets, int64(t.Account))
		}
		if err := w.add(KindAliases, rec); err != nil {
			return err
		}
	}
	links, err := w.sn.SetupLinks(ctx)
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := w.add(KindSetupLinks, SetupLinkRecord{ID: l.ID, Account: int64(l.Account), Device: l.Device, Sealed: l.Sealed,
			Created: l.Created, Expires: l.Expires}); err != nil {
			return err
		}
	}
	hashes := make([]string, 0, len(w.bodies))
	for h := range w.bodies {
		hashes = append(hashes, h)
	}
	slices.Sort(hashes)
	for _, h := range hashes {
		if err := w.add(KindBodies, BodyRecord{SHA256: h, Size: w.bodies[h]}); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) account(ctx context.Context, a store.AccountRecord) error {
	acct := int64(a.ID)
	if err := w.add(KindAccounts, AccountRecord{ID: acct, Name: a.Name, PasswordHash: a.PasswordHash, SCRAM: a.SCRAM,
		Settings: a.Settings, Created: a.Created.UTC(), QuotaBytes: a.Quota.Bytes, QuotaMessages: a.Quota.Messages}); err != nil {
		return err
	}
	devs, err := w.sn.Devices(ctx, a.ID)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if err := w.add(KindDevices, DeviceRecord{Account: acct, Name: d.Name, PasswordHash: d.PasswordHash, SCRAM: d.SCRAM,
			Created: d.Created.UTC(), Revoked: utc(d.Revoked), LastLogin: utc(d.LastLogin), LastRemote: d.LastRemote,
			LastProto: d.LastProto, LastClient: d.LastClient}); err != nil {
			return err
		}
	}
	mbs, err := w.sn.Mailboxes(ctx, a.ID)
	if err != nil {
		return err
	}
	for _, mb := range mbs {
		if err := w.add(KindMailboxes, MailboxRecord{Account: acct, ID: int64(mb.ID), Name: mb.Name, SpecialUse: mb.SpecialUse,
			NoSelect: mb.NoSelect, UIDValidity: mb.UIDValidity, UIDNext: mb.UIDNext, HighestModSeq: mb.HighestModSeq}); err != nil {
			return err
		}
		for m, err := range w.sn.Messages(ctx, a.ID, mb.ID) {
			if err != nil {
				return err
			}
			if err := w.body(ctx, &m.Message, m.Hash); err != nil {
				return err
			}
			if err := w.add(KindMessages, messageRecord(acct, int64(mb.ID), m)); err != nil {
				return err
			}
		}
	}
	subs, err := w.sn.Subscriptions(ctx, a.ID)
	if err != nil {
		return err
	}
	for _, s := range subs {
		if err := w.add(KindSubscriptions, SubscriptionRecord{Account: acct, Name: s}); err != nil {
			return err
		}
	}
	for e, err := range w.sn.Expunged(ctx, a.ID) {
		if err != nil {
			return err
		}
		if err := w.body(ctx, &e.Message, e.Hash); err != nil {
			return err
		}
		rec := messageRecord(acct, int64(e.Mailbox), &e.SnapshotMessage)
		rec.MailboxName, rec.Expunged = e.MailboxName, e.Expunged.UTC()
		if err := w.add(KindExpunged, rec); err != nil {
			return err
		}
	}
	views, err := w.sn.POP3Views(ctx, a.ID)
	if err != nil {
		return err
	}
	for _, v := range views {
		if err := w.add(KindPOP3Views, POP3ViewRecord{Account: acct, Device: v.Device, Mailbox: int64(v.Mailbox), UIDValidity: v.UIDValidity,
			Hidden: v.Hidden.String(), Created: v.Created.UTC(), LastUsed: v.LastUsed.UTC()}); err != nil {
			return err
		}
	}
	md, err := w.sn.Metadata(ctx, a.ID)
	if err != nil {
		return err
	}
	for _, e := range md {
		if err := w.add(KindMetadata, MetadataRecord{Account: acct, Mailbox: int64(e.Mailbox), Name: e.Name, Value: e.Value}); err != nil {
			return err
		}
	}
	keys, err := w.sn.AccessKeys(ctx, a.ID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := w.add(KindAccessKeys, AccessKeyRecord{Account: acct, Mailbox: int64(k.Mailbox), Key: k.Key}); err != nil {
			return err
		}
	}
	return nil
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func messageRecord(acct, mailbox int64, m *store.SnapshotMessage) MessageRecord {
	return MessageRecord{Account: acct, Mailbox: mailbox, UID: m.UID, ModSeq: m.ModSeq, Flags: m.Flags, InternalDate: m.InternalDate,
		SaveDate: utc(m.SaveDate), Size: m.Size, SHA256: m.Hash, EmailID: m.EmailID, POPUID: m.POPUID}
}

// body makes sure the root holds the body of m: it is copied unless a
// backup in the root wrote it before (a file of that name and size).
func (w *writer) body(ctx context.Context, m *store.Message, hash string) error {
	if !blob.ValidID(hash) {
		return fmt.Errorf("message %d: bad body hash %q", m.UID, hash)
	}
	if _, ok := w.bodies[hash]; ok {
		return nil
	}
	w.bodies[hash] = m.Size
	path := filepath.Join(w.root, "blobs", hash)
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == m.Size {
		return nil
	}
	b, err := w.sn.OpenBody(ctx, m.BlobID)
	if errors.Is(err, store.ErrDamaged) {
		w.damaged = append(w.damaged, hash)
		w.log.Error("backup: a message body is damaged in the store; its message is in the backup without it", "sha256", hash, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	defer b.Close()
	f, err := os.CreateTemp(filepath.Join(w.root, "blobs"), ".tmp-*")
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.NewSectionReader(b, 0, b.Size()))
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("copy body %s: %w", hash, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hash || n != m.Size {
		f.Close()
		os.Remove(f.Name())
		w.damaged = append(w.damaged, hash)
		w.log.Error("backup: a message body does not match its hash in the store; its message is in the backup without it", "sha256", hash, "read_sha256", got, "size", n)
		return nil
	}
	startWriteback(f)
	w.pending = append(w.pending, pendingBody{f: f, path: path, size: n})
	w.pendingBytes += n
	if len(w.pending) >= bodyBatch || w.pendingBytes >= bodyBatchBytes {
		return w.flushBodies()
	}
	return nil
}

// A body is written to a temporary file and named blobs/<sha256> only
// once it is durable: a later backup trusts a file of that name and
// size. One fsync per body, one after the other, would cap a backup at
// the disk's fsync rate (a few hundred bodies a second); so the bodies
// are written in batches (of at most 512 files, well below the usual
// limit of 1,024 open files), their writeback started as each is written,
// and each batch is made durable by concurrent fsyncs, which the file
// system folds into few journal commits, before its files are renamed.
const (
	bodyBatch      = 512
	bodyBatchBytes = 256 << 20
	bodySyncers    = 64
)

// pendingBody is a body written but not yet durable.
type pendingBody struct {
	f    *os.File
	path string
	size int64
}

// flushBodies makes the pending bodies durable and names them.
func (w *writer) flushBodies() error {
	if len(w.pending) == 0 {
		return nil
	}
	errs := make([]error, len(w.pending))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(bodySyncers, len(w.pending)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = w.pending[i].f.Sync()
			}
		}()
	}
	for i := range w.pending {
		next <- i
	}
	close(next)
	wg.Wait()
	var err error
	for i, p := range w.pending {
		e := errs[i]
		if cerr := p.f.Close(); e == nil {
			e = cerr
		}
		if e == nil {
			e = os.Rename(p.f.Name(), p.path)
		}
		if e != nil {
			os.Remove(p.f.Name())
			err = errors.Join(err, fmt.Errorf("write body %s: %w", filepath.Base(p.path), e))
			continue
		}
		w.newBodies++
		w.newBytes += p.size
	}
	w.pending = w.pending[:0]
	w.pendingBytes = 0
	return err
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// writeFileSync writes a new file of mode 0600 and syncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ErrBusy: another backup, prune or verify holds the root.
var ErrBusy = errors.New("another backup, prune or verify is using this backup directory")

// lockRoot takes the root's lock (root/.lock, flock), so that two
// backups, or a backup and a prune, never work in one root at once.
func lockRoot(root string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(root, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock backup directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", root, ErrBusy)
		}
		return nil, fmt.Errorf("lock backup directory: %w", err)
	}
	return func() { f.Close() }, nil
}
