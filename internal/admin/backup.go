package admin

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/backup"
	"github.com/postfach/postfach/internal/store"
)

// Backups through the running server (docs/backup.md): the server writes
// the backup itself, from a snapshot of its store, so that it is online
// and consistent; and a partial restore adds to the store the server
// uses, so that its sessions see the messages at once.

// BackupResult reports a backup.
type BackupResult struct {
	// Dir is the backup's directory.
	Dir       string `json:"dir"`
	Bodies    int64  `json:"bodies"`
	BodyBytes int64  `json:"body_bytes"`
	NewBodies int64  `json:"new_bodies"`
	NewBytes  int64  `json:"new_bytes"`
	// Damaged lists the bodies the store holds damaged, left out.
	Damaged []string `json:"damaged,omitempty"`
}

// Backup implements API.
func (o *Ops) Backup(ctx context.Context, dest string) (*BackupResult, error) {
	if !filepath.IsAbs(dest) {
		return nil, fmt.Errorf("%w: backup directory %q is not an absolute path", ErrInvalid, dest)
	}
	if err := o.outsideDataDir("backup directory", dest); err != nil {
		return nil, err
	}
	sn, ok := o.Store.(store.Snapshotter)
	if !ok {
		return nil, errors.New("backup: not supported by this store")
	}
	start := time.Now()
	res, err := backup.Backup(ctx, sn, dest, backup.Options{Logger: o.Logger})
	if o.BackupDone != nil {
		o.BackupDone(start, res, err)
	}
	if err != nil {
		return nil, err
	}
	m := res.Manifest
	return &BackupResult{Dir: res.Dir, Bodies: m.Bodies, BodyBytes: m.BodyBytes, NewBodies: m.NewBodies, NewBytes: m.NewBytes,
		Damaged: res.Damaged}, nil
}

// Restore implements API.
func (o *Ops) Restore(ctx context.Context, src string, sel backup.Selection) (*backup.PartialResult, error) {
	if !filepath.IsAbs(src) {
		return nil, fmt.Errorf("%w: backup %q is not an absolute path", ErrInvalid, src)
	}
	if sel.Account == "" {
		return nil, fmt.Errorf("%w: a restore into a running server needs an account", ErrInvalid)
	}
	return backup.RestorePartial(ctx, o.Store, src, sel)
}

// Backup implements API.
func (c *Client) Backup(ctx context.Context, dest string) (*BackupResult, error) {
	resp, err := c.do(ctx, &Request{Op: "backup", Name: dest}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Backup, nil
}

// Restore implements API.
func (c *Client) Restore(ctx context.Context, src string, sel backup.Selection) (*backup.PartialResult, error) {
	resp, err := c.do(ctx, &Request{Op: "restore", Name: src, Selection: &sel}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Restore, nil
}

// Undelete implements API.
func (o *Ops) Undelete(ctx context.Context, req backup.UndeleteRequest) (*backup.UndeleteResult, error) {
	if req.Account == "" {
		return nil, fmt.Errorf("%w: undelete needs an account", ErrInvalid)
	}
	return backup.Undelete(ctx, o.Store, req)
}

// Undelete implements API.
func (c *Client) Undelete(ctx context.Context, req backup.UndeleteRequest) (*backup.UndeleteResult, error) {
	resp, err := c.do(ctx, &Request{Op: "undelete", Undelete: &req}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Undeleted, nil
}

// outsideDataDir refuses a path given by a user that is inside the data
// directory, which holds only what the store writes there, or is not
// absolute.
func (o *Ops) outsideDataDir(what, p string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%w: %s %q is not an absolute path", ErrInvalid, what, p)
	}
	if d, ok := o.Store.(interface{ Dir() string }); ok {
		dir := d.Dir()
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			dir = real
		}
		for _, q := range []string{p, evalExisting(p)} {
			if r, err := filepath.Rel(dir, q); err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				return fmt.Errorf("%w: %s %s is inside the data directory", ErrInvalid, what, p)
			}
		}
	}
	return nil
}

// evalExisting resolves the symbolic links of the longest part of p that
// exists, and joins the rest.
func evalExisting(p string) string {
	rest := ""
	for q := p; ; q = filepath.Dir(q) {
		if real, err := filepath.EvalSymlinks(q); err == nil {
			return filepath.Join(real, rest)
		}
		if filepath.Dir(q) == q {
			return p
		}
		rest = filepath.Join(filepath.Base(q), rest)
	}
}

// Import implements API.
func (o *Ops) Import(ctx context.Context, req backup.ImportRequest) (*backup.ImportResult, error) {
	if err := o.outsideDataDir("import path", req.Path); err != nil {
		return nil, err
	}
	return backup.Import(ctx, o.Store, req, nil)
}

// Export implements API.
func (o *Ops) Export(ctx context.Context, req backup.ExportRequest) (*backup.ExportResult, error) {
	if err := o.outsideDataDir("export directory", req.Dest); err != nil {
		return nil, err
	}
	return backup.Export(ctx, o.Store, req)
}

// Import implements API.
func (c *Client) Import(ctx context.Context, req backup.ImportRequest) (*backup.ImportResult, error) {
	resp, err := c.do(ctx, &Request{Op: "import", Import: &req}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Imported, nil
}

// Export implements API.
func (c *Client) Export(ctx context.Context, req backup.ExportRequest) (*backup.ExportResult, error) {
	resp, err := c.do(ctx, &Request{Op: "export", Export: &req}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Exported, nil
}
