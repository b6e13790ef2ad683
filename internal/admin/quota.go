package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/postfach/postfach/internal/store"
)

// Quotas (store/quota.go): what an account's mail takes, its own limits
// and the default of the config (limits.quota, limits.quota_messages).

// UserQuota implements API.
func (o *Ops) UserQuota(ctx context.Context, name string) (*store.Usage, error) {
	a, err := o.account(ctx, name)
	if err != nil {
		return nil, err
	}
	return o.Store.Usage(ctx, a.ID)
}

// UserSetQuota implements API.
func (o *Ops) UserSetQuota(ctx context.Context, name string, q store.Quota) error {
	if q.Bytes < store.QuotaDefault || q.Messages < store.QuotaDefault {
		return fmt.Errorf("%w: a quota is a size, 0 for no limit, or the default", ErrInvalid)
	}
	a, err := o.account(ctx, name)
	if err != nil {
		return err
	}
	return o.Store.SetQuota(ctx, a.ID, q)
}

// UserQuota implements API.
func (c *Client) UserQuota(ctx context.Context, name string) (*store.Usage, error) {
	resp, err := c.do(ctx, &Request{Op: "user.quota", Name: name}, nil)
	if err != nil {
		return nil, err
	}
	if resp.Usage == nil {
		return nil, errors.New("admin socket: quota answer without usage")
	}
	return resp.Usage, nil
}

// UserSetQuota implements API.
func (c *Client) UserSetQuota(ctx context.Context, name string, q store.Quota) error {
	_, err := c.do(ctx, &Request{Op: "user.setquota", Name: name, Quota: &q}, nil)
	return err
}
