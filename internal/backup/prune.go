package backup

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/postfach/postfach/internal/blob"
)

// PruneResult reports a Prune.
type PruneResult struct {
	// Removed are the backups removed, oldest first.
	Removed []string
	// Bodies and Bytes count the bodies removed.
	Bodies int64
	Bytes  int64
}

// Prune keeps the newest keep backups of root (keep >= 1) and removes the
// others, what an interrupted backup left, and every body that no kept
// backup lists. When a kept backup's list of bodies cannot be read, no
// body is removed: a damaged list must not cost another backup its mail.
func Prune(root string, keep int) (*PruneResult, error) {
	if keep < 1 {
		return nil, fmt.Errorf("prune: keep %d backups: want at least 1", keep)
	}
	unlock, err := lockRoot(root)
	if err != nil {
		return nil, err
	}
	defer unlock()
	names, err := List(root)
	if err != nil {
		return nil, err
	}
	res := &PruneResult{}
	if len(names) > keep {
		for _, n := range names[:len(names)-keep] {
			if err := os.RemoveAll(filepath.Join(root, n)); err != nil {
				return res, fmt.Errorf("prune: %w", err)
			}
			res.Removed = append(res.Removed, n)
		}
		names = names[len(names)-keep:]
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
	used := map[string]bool{}
	for _, n := range names {
		dir := filepath.Join(root, n)
		data, err := os.ReadFile(filepath.Join(dir, ManifestName))
		if err != nil {
			return res, fmt.Errorf("prune: bodies kept: %w", err)
		}
		m, err := ParseManifest(data)
		if err != nil {
			return res, fmt.Errorf("prune: bodies kept: %s: %w", n, err)
		}
		if err := readRecords(dir, m.File(KindBodies), func(r *BodyRecord) error {
			used[r.SHA256] = true
			return nil
		}); err != nil {
			return res, fmt.Errorf("prune: bodies kept: %s: %w", n, err)
		}
	}
	blobs, err := os.ReadDir(filepath.Join(root, "blobs"))
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	for _, e := range blobs {
		name := e.Name()
		if used[name] || !(blob.ValidID(name) || strings.HasPrefix(name, ".tmp-")) {
			continue
		}
		var size int64
		if fi, err := e.Info(); err == nil {
			size = fi.Size()
		}
		if err := os.Remove(filepath.Join(root, "blobs", name)); err != nil {
			return res, fmt.Errorf("prune: %w", err)
		}
		if blob.ValidID(name) {
			res.Bodies++
			res.Bytes += size
		}
	}
	return res, nil
}
