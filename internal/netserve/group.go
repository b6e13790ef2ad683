package netserve

import (
	"context"
	"errors"
	"net"
	"sync"
)

// Group is the Servers of one protocol server, one per listener (plain
// and implicit TLS differ in their Options), shut down together. The zero
// value is ready to use.
type Group struct {
	mu      sync.Mutex
	servers []*Server // guarded by mu
	closing bool      // guarded by mu

	once sync.Once
	done chan struct{} // closed when the first Shutdown has finished
	err  error         // written before done is closed
}

// Serve creates a Server with opt and serves ln with it until Shutdown,
// then returns ErrServerClosed. After Shutdown it closes ln at once.
func (g *Group) Serve(ln net.Listener, opt ServerOptions) error {
	s := NewServer(opt)
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	g.servers = append(g.servers, s)
	g.mu.Unlock()
	return s.Serve(ln)
}

// Shutdown stops every Server of the group at once (see Server.Shutdown)
// and waits for them. The first call runs before, if not nil, once no
// Serve can start any more; later and concurrent calls wait for the first
// one (or their own ctx) and return its result. When ctx ends before the
// sessions did, ctx's error is returned.
func (g *Group) Shutdown(ctx context.Context, before func()) error {
	g.mu.Lock()
	if g.done == nil {
		g.done = make(chan struct{})
	}
	done := g.done
	g.mu.Unlock()
	g.once.Do(func() {
		g.err = g.shutdown(ctx, before)
		close(done)
	})
	select {
	case <-done:
		return g.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Group) shutdown(ctx context.Context, before func()) error {
	g.mu.Lock()
	g.closing = true
	servers := g.servers
	g.mu.Unlock()
	if before != nil {
		before()
	}
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Shutdown(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}
