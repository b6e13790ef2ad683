package admin

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// failingDelete is a store whose DeleteAccount fails the way the SQLite
// store words it.
type failingDelete struct{ store.Store }

func (f failingDelete) DeleteAccount(ctx context.Context, id store.AccountID) error {
	return errors.New("delete account 1: disk I/O error")
}

// TestErrorsReadOnce: an admin error says what failed once (issue 11:
// "data directory X is in use ...: data directory X: ..."-style chains);
// the command line names the account in front of it.
func TestErrorsReadOnce(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: t.TempDir(), SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o := &Ops{Store: failingDelete{st}}
	if err := o.UserAdd(ctx, "alice@example.org", "hash"); err != nil {
		t.Fatal(err)
	}
	err = o.UserAdd(ctx, "alice@example.org", "hash")
	if !errors.Is(err, store.ErrExists) || strings.Count(err.Error(), "create account") != 1 {
		t.Errorf("second UserAdd: %v", err)
	}
	err = o.UserDel(ctx, "alice@example.org")
	if err == nil || strings.Count(err.Error(), "delete account") != 1 {
		t.Errorf("UserDel: %v", err)
	}
	err = o.UserPasswd(ctx, "bob@example.org", "hash")
	if !errors.Is(err, store.ErrNotFound) || strings.Count(err.Error(), "bob@example.org") != 1 {
		t.Errorf("UserPasswd of a missing account: %v", err)
	}
}
