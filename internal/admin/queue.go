package admin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// The queue commands (docs/sending.md, "The outbound queue").

// QueueEntry is one message of the outbound queue as queue list and queue
// show give it.
type QueueEntry struct {
	ID string `json:"id"`
	// From is the sender ("" the null sender); Account the sending
	// account's name ("" for the server's own mail).
	From        string           `json:"from"`
	Account     string           `json:"account,omitempty"`
	Size        int64            `json:"size"`
	Created     time.Time        `json:"created"`
	NextAttempt time.Time        `json:"next_attempt"`
	Attempts    int              `json:"attempts"`
	LastError   string           `json:"last_error,omitempty"`
	Recipients  []QueueRecipient `json:"recipients"`
}

// QueueRecipient is one recipient of a QueueEntry.
type QueueRecipient struct {
	Address string `json:"address"`
	// State is pending, delivered or failed.
	State      string    `json:"state"`
	Status     string    `json:"status,omitempty"`
	Diagnostic string    `json:"diagnostic,omitempty"`
	Remote     string    `json:"remote,omitempty"`
	Updated    time.Time `json:"updated,omitempty"`
}

// QueueRunner is the running queue, which the queue commands wake or go
// through (the server's *queue.Queue); without one they work on the
// store alone.
type QueueRunner interface {
	// Kick makes the queue look for due messages now.
	Kick()
	// Drop removes an entry (and keeps the queue's count right).
	Drop(ctx context.Context, id int64) error
}

func (o *Ops) queueStore() (store.Queue, error) {
	q, ok := o.Store.(store.Queue)
	if !ok {
		return nil, errors.New("queue: not supported by this store")
	}
	return q, nil
}

func parseQueueID(id string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: %q is not a queue ID (queue list shows them)", ErrInvalid, id)
	}
	return n, nil
}

func (o *Ops) queueEntry(ctx context.Context, e *store.QueueEntry) QueueEntry {
	out := QueueEntry{ID: strconv.FormatInt(e.ID, 10), From: e.From, Size: e.Size, Created: e.Created,
		NextAttempt: e.NextAttempt, Attempts: e.Attempts, LastError: e.LastError}
	if e.Account != 0 {
		if a, err := o.Store.AccountByID(ctx, e.Account); err == nil {
			out.Account = a.Name
		} else {
			out.Account = "#" + strconv.FormatInt(int64(e.Account), 10)
		}
	}
	for _, r := range e.Recipients {
		out.Recipients = append(out.Recipients, QueueRecipient{Address: r.Address, State: r.State.String(),
			Status: r.Status, Diagnostic: r.Diagnostic, Remote: r.Remote, Updated: r.Updated})
	}
	return out
}

// QueueList implements API.
func (o *Ops) QueueList(ctx context.Context) ([]QueueEntry, error) {
	q, err := o.queueStore()
	if err != nil {
		return nil, err
	}
	es, err := q.QueueEntries(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]QueueEntry, len(es))
	for i := range es {
		out[i] = o.queueEntry(ctx, &es[i])
	}
	return out, nil
}

// QueueShow implements API.
func (o *Ops) QueueShow(ctx context.Context, id string) (*QueueEntry, error) {
	q, err := o.queueStore()
	if err != nil {
		return nil, err
	}
	n, err := parseQueueID(id)
	if err != nil {
		return nil, err
	}
	e, err := q.QueueEntry(ctx, n)
	if err != nil {
		return nil, err
	}
	out := o.queueEntry(ctx, e)
	return &out, nil
}

// QueueRetry implements API.
func (o *Ops) QueueRetry(ctx context.Context, id string) (int, error) {
	q, err := o.queueStore()
	if err != nil {
		return 0, err
	}
	var n int64
	if id != "" {
		if n, err = parseQueueID(id); err != nil {
			return 0, err
		}
	}
	count, err := q.RetryQueue(ctx, n, o.now())
	if err != nil {
		return 0, err
	}
	if o.Queue != nil {
		o.Queue.Kick()
	}
	return count, nil
}

// QueueDrop implements API.
func (o *Ops) QueueDrop(ctx context.Context, id string) error {
	q, err := o.queueStore()
	if err != nil {
		return err
	}
	n, err := parseQueueID(id)
	if err != nil {
		return err
	}
	if o.Queue != nil {
		return o.Queue.Drop(ctx, n)
	}
	return q.DeleteQueueEntry(ctx, n)
}

// QueueList implements API.
func (c *Client) QueueList(ctx context.Context) ([]QueueEntry, error) {
	resp, err := c.do(ctx, &Request{Op: "queue.list"}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Queue, nil
}

// QueueShow implements API.
func (c *Client) QueueShow(ctx context.Context, id string) (*QueueEntry, error) {
	resp, err := c.do(ctx, &Request{Op: "queue.show", Name: id}, nil)
	if err != nil {
		return nil, err
	}
	if len(resp.Queue) != 1 {
		return nil, errors.New("admin socket: queue.show answer without the entry")
	}
	return &resp.Queue[0], nil
}

// QueueRetry implements API.
func (c *Client) QueueRetry(ctx context.Context, id string) (int, error) {
	resp, err := c.do(ctx, &Request{Op: "queue.retry", Name: id}, nil)
	if err != nil {
		return 0, err
	}
	return resp.Count, nil
}

// QueueDrop implements API.
func (c *Client) QueueDrop(ctx context.Context, id string) error {
	_, err := c.do(ctx, &Request{Op: "queue.drop", Name: id}, nil)
	return err
}
