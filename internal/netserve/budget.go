package netserve

import (
	"net"
	"net/netip"
	"sync"
)

// Budget bounds the memory that the connections of one client make the
// server hold for their commands before they have logged in: the lines and
// literals being read (issue 11, item 5). A client is an IPv4 address or
// an IPv6 /64. The protocol's reader charges a connection's bytes with
// Conn.Grow before it holds them and gives them back with Conn.Shrink;
// whatever a connection still holds is given back when it logs in
// (Conn.LoggedIn) or closes. One Budget is shared by every listener of a
// server, so a client's limit spans its IMAP, POP3 and submission
// connections.
//
// The fixed buffers of a session are not charged: they are bounded per
// connection, and the connection limits bound the connections.
//
// Locking: mu guards held and total; it is taken after Conn.mu.
type Budget struct {
	perClient int64

	mu    sync.Mutex
	held  map[string]int64 // bytes held per client; guarded by mu
	total int64            // guarded by mu
}

// NewBudget returns a Budget of perClient bytes for each client; 0 or less
// means no limit (the bytes are still counted).
func NewBudget(perClient int64) *Budget {
	return &Budget{perClient: perClient, held: map[string]int64{}}
}

// Limit returns the bytes one client may hold.
func (b *Budget) Limit() int64 { return b.perClient }

// Held returns the bytes held by every client together.
func (b *Budget) Held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// MaxHeld returns the bytes held by the client that holds the most.
func (b *Budget) MaxHeld() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var m int64
	for _, n := range b.held {
		m = max(m, n)
	}
	return m
}

func (b *Budget) grow(key string, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.perClient > 0 && b.held[key]+n > b.perClient {
		return false
	}
	b.held[key] += n
	b.total += n
	return true
}

func (b *Budget) shrink(key string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held[key] -= n; b.held[key] <= 0 {
		delete(b.held, key)
	}
	b.total -= n
}

// clientKey names the client of a remote address for the Budget: the
// IPv4 address, or the IPv6 /64 (auth.ClientKey counts login failures the
// same way). It is "" for a connection that is not TCP.
func clientKey(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return ""
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return ""
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return ""
	}
	return p.String()
}
