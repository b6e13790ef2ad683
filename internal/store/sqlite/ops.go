package sqlite

// Operational safeguards (issue 11): a limit on the mailboxes of an
// account (limits.go), ...

// OpsOptions configure the safeguards; the zero value turns them off.
type OpsOptions struct {
	// MaxMailboxes limits the mailboxes of one account, and its
	// subscriptions, to this many; 0 means no limit.
	MaxMailboxes int
}

// opsState is the safeguards' state in a Store.
type opsState struct {
	maxMailboxes int // immutable after Open
}

// startOps sets the safeguards up; Open calls it before the writer starts.
func (s *Store) startOps(opt OpsOptions) {
	s.ops.maxMailboxes = opt.MaxMailboxes
}
