package backup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/mail"
)

// FormatName is the manifest's "format": what the directory is.
const FormatName = "postfach-backup"

// Version is the version of the format this package writes and the
// newest it reads.
const Version = 1

// ManifestName is the manifest's file name in a backup.
const ManifestName = "manifest.json"

// Record kinds, in the order a restore applies them. Each is the file
// <kind>.jsonl of a backup.
const (
	KindAccounts      = "accounts"
	KindDevices       = "devices"
	KindMailboxes     = "mailboxes"
	KindSubscriptions = "subscriptions"
	KindMessages      = "messages"
	KindExpunged      = "expunged"
	KindPOP3Views     = "pop3_views"
	KindMetadata      = "metadata"
	KindAccessKeys    = "access_keys"
	KindAliases       = "aliases"
	KindSetupLinks    = "setup_links"
	KindBodies        = "bodies"
)

// Kinds are the record kinds this version writes and reads, in order.
var Kinds = []string{KindAccounts, KindDevices, KindMailboxes, KindSubscriptions, KindMessages, KindExpunged,
	KindPOP3Views, KindMetadata, KindAccessKeys, KindAliases, KindSetupLinks, KindBodies}

// Manifest describes one backup.
type Manifest struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// Postfach is the version of the postfach that wrote it.
	Postfach string `json:"postfach,omitempty"`
	// Files lists the record files, one per kind.
	Files []FileInfo `json:"files"`
	// Bodies and BodyBytes count the distinct bodies the backup uses and
	// their size; NewBodies and NewBytes those it wrote (the rest were
	// in the root already).
	Bodies    int64 `json:"bodies"`
	BodyBytes int64 `json:"body_bytes"`
	NewBodies int64 `json:"new_bodies"`
	NewBytes  int64 `json:"new_bytes"`
}

// FileInfo is one record file of a backup.
type FileInfo struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Records int64  `json:"records"`
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"`
}

// ParseManifest decodes and checks a manifest: the format, a version this
// package reads, every kind known, once, in a file named for it, with a
// well-formed hash.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if dec.More() {
		return nil, errors.New("manifest: data after the object")
	}
	if m.Format != FormatName {
		return nil, fmt.Errorf("manifest: format %q, want %q", m.Format, FormatName)
	}
	if m.Version < 1 || m.Version > Version {
		return nil, fmt.Errorf("manifest: version %d; this postfach reads versions 1 to %d (upgrade postfach)", m.Version, Version)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if !slices.Contains(Kinds, f.Kind) {
			return nil, fmt.Errorf("manifest: kind %q is unknown to this postfach (upgrade postfach to restore it)", f.Kind)
		}
		if seen[f.Kind] {
			return nil, fmt.Errorf("manifest: kind %q listed twice", f.Kind)
		}
		seen[f.Kind] = true
		if f.Name != f.Kind+".jsonl" {
			return nil, fmt.Errorf("manifest: kind %q in file %q, want %q", f.Kind, f.Name, f.Kind+".jsonl")
		}
		if !blob.ValidID(f.SHA256) || f.Records < 0 || f.Bytes < 0 {
			return nil, fmt.Errorf("manifest: bad entry for kind %q", f.Kind)
		}
	}
	for _, k := range Kinds {
		if !seen[k] {
			return nil, fmt.Errorf("manifest: kind %q missing", k)
		}
	}
	return &m, nil
}

// File returns the entry of a kind.
func (m *Manifest) File(kind string) FileInfo {
	for _, f := range m.Files {
		if f.Kind == kind {
			return f
		}
	}
	return FileInfo{}
}

// Records of each kind. IDs of accounts and mailboxes are the source
// store's; records refer to each other by them, and a restore maps them
// to its own.

// AccountRecord is a record of KindAccounts.
type AccountRecord struct {
	ID           int64             `json:"id"`
	Name         string            `json:"name"`
	PasswordHash string            `json:"password_hash"`
	SCRAM        string            `json:"scram,omitempty"`
	Settings     map[string]string `json:"settings,omitempty"`
	Created      time.Time         `json:"created"`
	// QuotaBytes and QuotaMessages are the account's own quota; -1
	// follows the server's default, 0 is no limit.
	QuotaBytes    int64 `json:"quota_bytes"`
	QuotaMessages int64 `json:"quota_messages"`
}

// DeviceRecord is a record of KindDevices.
type DeviceRecord struct {
	Account      int64     `json:"account"`
	Name         string    `json:"name"`
	PasswordHash string    `json:"password_hash,omitempty"`
	SCRAM        string    `json:"scram,omitempty"`
	Created      time.Time `json:"created"`
	Revoked      time.Time `json:"revoked,omitzero"`
	LastLogin    time.Time `json:"last_login,omitzero"`
	LastRemote   string    `json:"last_remote,omitempty"`
	LastProto    string    `json:"last_proto,omitempty"`
	LastClient   string    `json:"last_client,omitempty"`
}

// MailboxRecord is a record of KindMailboxes.
type MailboxRecord struct {
	Account       int64       `json:"account"`
	ID            int64       `json:"id"`
	Name          string      `json:"name"`
	SpecialUse    []string    `json:"special_use,omitempty"`
	NoSelect      bool        `json:"noselect,omitempty"`
	UIDValidity   uint32      `json:"uidvalidity"`
	UIDNext       mail.UID    `json:"uidnext"`
	HighestModSeq mail.ModSeq `json:"highestmodseq"`
}

// SubscriptionRecord is a record of KindSubscriptions.
type SubscriptionRecord struct {
	Account int64  `json:"account"`
	Name    string `json:"name"`
}

// MessageRecord is a record of KindMessages and KindExpunged.
type MessageRecord struct {
	Account      int64       `json:"account"`
	Mailbox      int64       `json:"mailbox"`
	UID          mail.UID    `json:"uid"`
	ModSeq       mail.ModSeq `json:"modseq"`
	Flags        []string    `json:"flags,omitempty"`
	InternalDate time.Time   `json:"internal_date"`
	SaveDate     time.Time   `json:"save_date,omitzero"`
	Size         int64       `json:"size"`
	SHA256       string      `json:"sha256"`
	EmailID      string      `json:"email_id,omitempty"`
	POPUID       string      `json:"pop_uid,omitempty"`
	// Expunged records only: the mailbox's name (it may be gone), and
	// when; ModSeq is then the MODSEQ of the expunge.
	MailboxName string    `json:"mailbox_name,omitempty"`
	Expunged    time.Time `json:"expunged,omitzero"`
}

// POP3ViewRecord is a record of KindPOP3Views.
type POP3ViewRecord struct {
	Account     int64     `json:"account"`
	Device      string    `json:"device"`
	Mailbox     int64     `json:"mailbox"`
	UIDValidity uint32    `json:"uidvalidity"`
	Hidden      string    `json:"hidden,omitempty"` // a UID set, "1:4,7"
	Created     time.Time `json:"created"`
	LastUsed    time.Time `json:"last_used"`
}

// MetadataRecord is a record of KindMetadata; Mailbox 0 is the server.
type MetadataRecord struct {
	Account int64  `json:"account"`
	Mailbox int64  `json:"mailbox"`
	Name    string `json:"name"`
	Value   []byte `json:"value"`
}

// AccessKeyRecord is a record of KindAccessKeys.
type AccessKeyRecord struct {
	Account int64  `json:"account"`
	Mailbox int64  `json:"mailbox"`
	Key     []byte `json:"key"`
}

// AliasRecord is a record of KindAliases; Targets are account IDs.
type AliasRecord struct {
	Address string    `json:"address"`
	Targets []int64   `json:"targets"`
	Created time.Time `json:"created"`
}

// SetupLinkRecord is a record of KindSetupLinks: a pending link (the
// device's password sealed under the link's token, which the backup
// does not have).
type SetupLinkRecord struct {
	ID      []byte    `json:"id"`
	Account int64     `json:"account"`
	Device  string    `json:"device"`
	Sealed  []byte    `json:"sealed"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// BodyRecord is a record of KindBodies: a body the backup uses, in
// blobs/ of the root.
type BodyRecord struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// recordWriter writes one kind's records as JSON lines, hashing them.
type recordWriter struct {
	kind string
	f    *os.File
	bw   *bufio.Writer
	h    hash.Hash
	n    int64
	size int64
}

func newRecordWriter(dir, kind string) (*recordWriter, error) {
	f, err := os.OpenFile(filepath.Join(dir, kind+".jsonl"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	w := &recordWriter{kind: kind, f: f, h: sha256.New()}
	w.bw = bufio.NewWriterSize(io.MultiWriter(f, w.h), 64<<10)
	return w, nil
}

func (w *recordWriter) add(rec any) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode %s record: %w", w.kind, err)
	}
	b = append(b, '\n')
	if _, err := w.bw.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", w.kind, err)
	}
	w.n++
	w.size += int64(len(b))
	return nil
}

// finish flushes and syncs the file and returns its manifest entry.
func (w *recordWriter) finish() (FileInfo, error) {
	err := w.bw.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return FileInfo{}, fmt.Errorf("write %s: %w", w.kind, err)
	}
	return FileInfo{Kind: w.kind, Name: w.kind + ".jsonl", Records: w.n, Bytes: w.size, SHA256: hex.EncodeToString(w.h.Sum(nil))}, nil
}

func (w *recordWriter) abort() { w.f.Close() }

// maxRecordLine bounds one record: the largest is an annotation value
// or an account's settings, far below it.
const maxRecordLine = 16 << 20

// readRecords decodes the records of one kind in order, calling fn with
// each; it checks the file against its manifest entry (size, count,
// SHA-256) once it has read it all, so a caller that must not act on a
// damaged file reads it twice, or verifies first.
func readRecords[T any](dir string, fi FileInfo, fn func(rec *T) error) error {
	f, err := os.Open(filepath.Join(dir, fi.Name))
	if err != nil {
		return fmt.Errorf("read %s: %w", fi.Kind, err)
	}
	defer f.Close()
	h := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(f, h), 64<<10)
	var n, size int64
	for {
		line, err := readLine(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s record %d: %w", fi.Kind, n+1, err)
		}
		size += int64(len(line))
		var rec T
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return fmt.Errorf("%s record %d: %w", fi.Kind, n+1, err)
		}
		n++
		if err := fn(&rec); err != nil {
			return fmt.Errorf("%s record %d: %w", fi.Kind, n, err)
		}
	}
	if size != fi.Bytes || n != fi.Records || hex.EncodeToString(h.Sum(nil)) != fi.SHA256 {
		return fmt.Errorf("%s: %d records in %d bytes that do not match the manifest (%d records, %d bytes, its SHA-256): the file is damaged",
			fi.Name, n, size, fi.Records, fi.Bytes)
	}
	return nil
}

// readLine reads one line with its newline; a last line without one is
// an error (a cut file).
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxRecordLine {
			return nil, errors.New("record too long")
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(line) == 0:
			return nil, io.EOF
		case err == io.EOF:
			return nil, errors.New("last record cut off (no newline)")
		default:
			return nil, err
		}
	}
}

// backupName matches the directory names of backups in a root.
var backupName = regexp.MustCompile(`^postfach-[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$`)

// List returns the backups in root, oldest first (their names sort by
// time).
func List(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && backupName.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	slices.SortFunc(out, compareNames)
	return out, nil
}

// compareNames orders backup names by time, then by their -N suffix.
func compareNames(a, b string) int {
	const stamp = len("postfach-20060102T150405Z")
	if c := cmpString(a[:stamp], b[:stamp]); c != 0 {
		return c
	}
	return cmpInt(len(a), len(b), a, b)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpInt(la, lb int, a, b string) int {
	if la != lb {
		return la - lb
	}
	return cmpString(a, b)
}
