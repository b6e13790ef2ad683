package auth

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// verifier runs password verifications. argon2id needs 19 MiB of memory
// per run, so unbounded concurrency (a burst of first logins after a
// restart, or the same account logging in from many connections at once)
// would swell the heap far beyond what the sessions need. The verifier
//   - makes concurrent verifications of identical credentials share one run
//     (they have the same cache key),
//   - runs at most one per CPU at a time (more would only queue for CPU),
//   - and, once a burst is over, returns the freed memory to the operating
//     system instead of keeping it for the next burst, so the server's
//     resident size reflects its sessions, not its last login storm.
type verifier struct {
	sem  chan struct{}
	runs atomic.Int64 // verifications actually run, for tests

	mu       sync.Mutex
	inflight map[[32]byte]*verifyCall // guarded by mu
	running  int                      // guarded by mu
	release  *time.Timer              // guarded by mu
}

type verifyCall struct {
	done    chan struct{}
	waiters int // calls sharing this one; guarded by verifier.mu
	ok      bool
	err     error
}

// releaseAfter is how long after the last verification memory is returned.
const releaseAfter = 2 * time.Second

func newVerifier() *verifier {
	return &verifier{sem: make(chan struct{}, runtime.GOMAXPROCS(0)), inflight: map[[32]byte]*verifyCall{}}
}

// verify checks password against hash, sharing the work with concurrent
// calls of the same key.
func (v *verifier) verify(key [32]byte, hash, password string) (bool, error) {
	v.mu.Lock()
	if c, ok := v.inflight[key]; ok {
		c.waiters++
		v.mu.Unlock()
		<-c.done
		return c.ok, c.err
	}
	c := &verifyCall{done: make(chan struct{})}
	v.inflight[key] = c
	v.running++
	if v.release != nil {
		v.release.Stop()
	}
	v.mu.Unlock()

	v.sem <- struct{}{}
	v.runs.Add(1)
	c.ok, c.err = VerifyPassword(hash, password)
	<-v.sem

	v.mu.Lock()
	delete(v.inflight, key)
	v.running--
	if v.running == 0 {
		v.release = time.AfterFunc(releaseAfter, v.releaseMemory)
	}
	v.mu.Unlock()
	close(c.done)
	return c.ok, c.err
}

func (v *verifier) releaseMemory() {
	v.mu.Lock()
	idle := v.running == 0
	v.mu.Unlock()
	if idle {
		debug.FreeOSMemory()
	}
}
