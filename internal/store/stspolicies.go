package store

import (
	"context"
	"time"
)

// STSPolicy is a receiving domain's MTA-STS policy (RFC 8461 §3.2) as the
// outbound queue last fetched it.
type STSPolicy struct {
	// Domain is the policy domain, lower case, without a trailing dot.
	Domain string
	// ID is the id of the domain's _mta-sts TXT record when the policy
	// was fetched (RFC 8461 §3.1).
	ID string
	// Mode is "enforce", "testing" or "none".
	Mode string
	// MX are the policy's mx patterns.
	MX []string
	// Expires is the fetch time plus the policy's max_age.
	Expires time.Time
}

// STSPolicies is implemented by stores that keep the outbound queue's
// MTA-STS policies, so that a restart does not forget them: a sender keeps
// a policy until its max_age (RFC 8461 §5.1), and a policy known only in
// memory would let an attacker on the path strip it from the first
// delivery after a restart.
type STSPolicies interface {
	// PutSTSPolicy keeps p, replacing the domain's earlier policy, and
	// removes every policy that expired before now.
	PutSTSPolicy(ctx context.Context, p STSPolicy, now time.Time) error
	// STSPolicy returns the domain's policy (matched case-insensitively),
	// expired or not; ErrNotFound when there is none.
	STSPolicy(ctx context.Context, domain string) (*STSPolicy, error)
}
