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
	// The data directory holds only what the store writes there.
	if d, ok := o.Store.(interface{ Dir() string }); ok {
		if r, err := filepath.Rel(d.Dir(), dest); err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("%w: backup directory %s is inside the data directory", ErrInvalid, dest)
		}
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
