// Package dedupcheck holds the tests every laburen.WebhookDeduplicator must pass, run by the
// tests of MemoryDeduplicator and of the stores in the modules beside the core against their
// real servers, and what those tests share to start the servers.
package dedupcheck

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/laburen/laburen-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Store is a shared store under test.
type Store struct {
	// Open returns a new deduplicator on the store, as a replica or a restarted process has,
	// whose claims are leased for claimTTL.
	Open func(t *testing.T, claimTTL time.Duration) laburen.WebhookDeduplicator
	// LongestKey returns the length in bytes of the longest key the store holds.
	LongestKey func(t *testing.T) int
}

// MaxStoredKey is the longest key a store may hold in these tests: a delivery key (64 bytes)
// and a short prefix.
const MaxStoredKey = 128

var secret = []byte("dedupcheck-secret-0123456789abcdef")

// Run runs every test on s.
func Run(t *testing.T, s Store) {
	t.Run("Replicas", func(t *testing.T) { testReplicas(t, s) })
	t.Run("Lease", func(t *testing.T) { testLease(t, s) })
	t.Run("HungReplica", func(t *testing.T) { testHungReplica(t, s) })
	t.Run("Restart", func(t *testing.T) { testRestart(t, s) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, s) })
	t.Run("Goexit", func(t *testing.T) { testGoexit(t, s) })
}

// nonce makes the deliveries of one run unique on a store that outlives it.
var nonce = crand.Text()

// delivery is one answer to post: a request target (signed) and a body.
type delivery struct{ target, body string }

func newDelivery(t *testing.T, tenant, messageID string) delivery {
	return deliveryTo(t, "https://hooks.example.com/hook", url.Values{"tenant": {tenant}}, messageID)
}

// deliveryTo is newDelivery to the URL rawURL signed with params.
func deliveryTo(t *testing.T, rawURL string, params url.Values, messageID string) delivery {
	signed, err := laburen.SignWebhookURL(rawURL, params, secret)
	require.NoError(t, err)
	u, err := url.Parse(signed)
	require.NoError(t, err)
	body := fmt.Sprintf(`{"conversationId":"c","messages":[{"text":"hi"}],"agentResponse":{"messageId":%q}}`, messageID)
	return delivery{target: u.RequestURI(), body: body}
}

// id returns a messageId unique to this run and test.
func id(t *testing.T, n int) string { return fmt.Sprintf("%s/%s/%d", nonce, t.Name(), n) }

func handler(d laburen.WebhookDeduplicator, fn func(context.Context, *laburen.WebhookEvent) error, opts ...laburen.WebhookOption) http.Handler {
	opts = append([]laburen.WebhookOption{laburen.WithWebhookSecret(secret),
		laburen.WithWebhookDeduplicator(d), laburen.WithWebhookLogger(nil)}, opts...)
	return laburen.NewWebhookHandler(fn, opts...)
}

// post delivers dl to h once and returns the status.
func post(h http.Handler, dl delivery) int {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, dl.target, strings.NewReader(dl.body))
	r.Header.Set(laburen.WebhookEventHeader, laburen.WebhookEventAgentResponse)
	h.ServeHTTP(rec, r)
	return rec.Code
}

// testReplicas: 4 replicas, each with its own deduplicator on the store, receive 500
// deliveries, each sent 3 times at once to random replicas and again after any status but 200;
// fn fails on 10% of first attempts and panics on 5%. Each delivery must succeed exactly once.
func testReplicas(t *testing.T, s Store) {
	const replicas, deliveries, copies, inFlight = 4, 500, 3, 16
	type tally struct{ calls, ok atomic.Int32 }
	tallies := make([]tally, deliveries)
	fn := func(_ context.Context, ev *laburen.WebhookEvent) error {
		var i int
		if _, err := fmt.Sscanf(ev.Params.Get("tenant"), "t%d", &i); err != nil {
			return err
		}
		n := tallies[i].calls.Add(1)
		runtime.Gosched() // let the other copies in while this one is being handled
		switch {
		case n == 1 && i%20 == 0:
			panic("first attempt panics")
		case n == 1 && i%10 == 1:
			return fmt.Errorf("first attempt fails")
		}
		tallies[i].ok.Add(1)
		return nil
	}
	hs := make([]http.Handler, replicas)
	for i := range hs {
		hs[i] = handler(s.Open(t, 30*time.Second), fn)
	}

	var lost atomic.Int32
	send := func(dl delivery) {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			switch status := post(hs[rand.IntN(replicas)], dl); status {
			case http.StatusOK:
				return
			case http.StatusInternalServerError, http.StatusServiceUnavailable:
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) // the sender delivers again
			default:
				t.Errorf("status %d", status)
				return
			}
		}
		lost.Add(1)
	}
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	for i := range deliveries {
		dl := newDelivery(t, fmt.Sprintf("t%d", i), id(t, i))
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var copiesWG sync.WaitGroup
			for range copies {
				copiesWG.Add(1)
				go func() { defer copiesWG.Done(); send(dl) }()
			}
			copiesWG.Wait()
		}()
	}
	wg.Wait()

	assert.Zero(t, lost.Load(), "deliveries never acknowledged")
	for i := range tallies {
		want := int32(1)
		if i%20 == 0 || i%10 == 1 {
			want = 2
		}
		assert.Equal(t, int32(1), tallies[i].ok.Load(), "delivery %d succeeded exactly once", i)
		assert.Equal(t, want, tallies[i].calls.Load(), "delivery %d: calls of fn", i)
	}
}

// testLease walks the contract: a claim holds until Done, Release or its lease's end; a
// replica whose lease ran out and was taken over can neither release nor mark the key.
func testLease(t *testing.T, s Store) {
	const ttl = time.Second
	ctx := context.Background()
	a, b := s.Open(t, ttl), s.Open(t, ttl)
	key := laburen.WebhookEvent{Name: "lease", Body: []byte(`"` + id(t, 0) + `"`)}
	k := key.DeliveryKey()

	st, tokA, err := a.Claim(ctx, k)
	require.NoError(t, err)
	require.Equal(t, laburen.DedupClaimed, st)
	require.NotEmpty(t, tokA)
	st, _, err = b.Claim(ctx, k)
	require.NoError(t, err)
	assert.Equal(t, laburen.DedupInFlight, st, "claimed by a")
	require.NoError(t, a.Release(ctx, k, tokA))
	assert.ErrorIs(t, a.Release(ctx, k, tokA), laburen.ErrDedupClaimLost, "released twice")

	st, tokA, err = a.Claim(ctx, k)
	require.NoError(t, err)
	require.Equal(t, laburen.DedupClaimed, st, "a released claim is free")
	time.Sleep(ttl + ttl/2)
	st, tokB, err := b.Claim(ctx, k)
	require.NoError(t, err)
	require.Equal(t, laburen.DedupClaimed, st, "the lease ran out: b takes the key over")
	assert.NotEqual(t, tokA, tokB)
	assert.ErrorIs(t, a.Release(ctx, k, tokA), laburen.ErrDedupClaimLost)
	assert.ErrorIs(t, a.Done(ctx, k, tokA), laburen.ErrDedupClaimLost)
	st, _, err = a.Claim(ctx, k)
	require.NoError(t, err)
	assert.Equal(t, laburen.DedupInFlight, st, "b's claim holds after a's late Release and Done")
	require.NoError(t, b.Done(ctx, k, tokB))
	st, _, err = a.Claim(ctx, k)
	require.NoError(t, err)
	assert.Equal(t, laburen.DedupDone, st)
	assert.ErrorIs(t, b.Release(ctx, k, tokB), laburen.ErrDedupClaimLost, "done: nothing to release")
	st, _, err = b.Claim(ctx, k)
	require.NoError(t, err)
	assert.Equal(t, laburen.DedupDone, st, "a Release after Done does not forget the delivery")
}

// testHungReplica: a replica whose function hangs holds the delivery (503 elsewhere) until the
// lease ends; then another replica handles it, and the hung one's late failure does not free
// the new owner's claim.
func testHungReplica(t *testing.T, s Store) {
	const ttl = time.Second
	var ok atomic.Int32
	hang := func(entered chan<- struct{}, proceed <-chan error) func(context.Context, *laburen.WebhookEvent) error {
		return func(context.Context, *laburen.WebhookEvent) error {
			entered <- struct{}{}
			if err := <-proceed; err != nil {
				return err
			}
			ok.Add(1)
			return nil
		}
	}
	enteredA, proceedA := make(chan struct{}), make(chan error)
	enteredB, proceedB := make(chan struct{}), make(chan error)
	a := handler(s.Open(t, ttl), hang(enteredA, proceedA))
	b := handler(s.Open(t, ttl), hang(enteredB, proceedB))
	c := handler(s.Open(t, ttl), func(context.Context, *laburen.WebhookEvent) error {
		t.Error("c handled a delivery another replica holds or handled")
		return nil
	})
	dl := newDelivery(t, "hung", id(t, 0))

	statusA := make(chan int, 1)
	go func() { statusA <- post(a, dl) }()
	<-enteredA
	start := time.Now()
	assert.Equal(t, http.StatusServiceUnavailable, post(c, dl), "a holds the claim")
	for time.Since(start) < ttl+ttl/2 {
		time.Sleep(50 * time.Millisecond)
	}
	statusB := make(chan int, 1)
	go func() { statusB <- post(b, dl) }()
	select {
	case <-enteredB:
	case <-time.After(10 * time.Second):
		t.Fatal("b never took over the delivery after the lease ran out")
	}
	proceedA <- fmt.Errorf("a gives up late")
	assert.Equal(t, http.StatusInternalServerError, <-statusA)
	assert.Equal(t, http.StatusServiceUnavailable, post(c, dl), "a's late Release left b's claim alone")
	proceedB <- nil
	assert.Equal(t, http.StatusOK, <-statusB)
	assert.Equal(t, http.StatusOK, post(c, dl), "done")
	assert.Equal(t, int32(1), ok.Load())
}

// testRestart: a new deduplicator on the same store knows what was handled before.
func testRestart(t *testing.T, s Store) {
	var calls atomic.Int32
	fn := func(context.Context, *laburen.WebhookEvent) error { calls.Add(1); return nil }
	dl := newDelivery(t, "restart", id(t, 0))
	require.Equal(t, http.StatusOK, post(handler(s.Open(t, time.Minute), fn), dl))
	assert.Equal(t, http.StatusOK, post(handler(s.Open(t, time.Minute), fn), dl))
	assert.Equal(t, int32(1), calls.Load(), "the restarted receiver skipped the handled delivery")
}

// keyRecorder records the keys its deduplicator is asked to claim.
type keyRecorder struct {
	laburen.WebhookDeduplicator
	mu   sync.Mutex
	keys []string
}

func (r *keyRecorder) Claim(ctx context.Context, key string) (laburen.DedupStatus, string, error) {
	r.mu.Lock()
	r.keys = append(r.keys, key)
	r.mu.Unlock()
	return r.WebhookDeduplicator.Claim(ctx, key)
}

// testKeys: a 1 MiB messageId costs a key of fixed size; the same messageId on two differently
// signed URLs is two deliveries.
func testKeys(t *testing.T, s Store) {
	var calls atomic.Int32
	rec := &keyRecorder{WebhookDeduplicator: s.Open(t, time.Minute)}
	h := handler(rec, func(context.Context, *laburen.WebhookEvent) error { calls.Add(1); return nil },
		laburen.WithWebhookMaxBodySize(2<<20))

	huge := id(t, 0) + strings.Repeat("x", 1<<20)
	dl := newDelivery(t, "a", huge)
	require.Equal(t, http.StatusOK, post(h, dl))
	require.Equal(t, http.StatusOK, post(h, dl))
	assert.Equal(t, int32(1), calls.Load(), "the 1 MiB messageId was handled once")
	require.Len(t, rec.keys, 2)
	assert.Len(t, rec.keys[0], 64)
	assert.LessOrEqual(t, s.LongestKey(t), MaxStoredKey, "the store holds a small key for a 1 MiB messageId")

	same := id(t, 1)
	require.Equal(t, http.StatusOK, post(h, newDelivery(t, "tenant-a", same)))
	require.Equal(t, http.StatusOK, post(h, newDelivery(t, "tenant-b", same)))
	require.Equal(t, http.StatusOK, post(h, newDelivery(t, "tenant-a", same)))
	assert.Equal(t, int32(3), calls.Load(), "one messageId on two signed URLs is two deliveries, each once")

	other := id(t, 2)
	for _, path := range []string{"/hooks/tenant-a", "/hooks/tenant-b", "/hooks/tenant-a"} {
		require.Equal(t, http.StatusOK, post(h, deliveryTo(t, "https://hooks.example.com"+path, nil, other)))
	}
	assert.Equal(t, int32(5), calls.Load(), "one messageId on two signed paths is two deliveries, each once")
}

// testGoexit: a function that calls runtime.Goexit leaves no claim behind.
func testGoexit(t *testing.T, s Store) {
	var calls atomic.Int32
	h := handler(s.Open(t, time.Minute), func(context.Context, *laburen.WebhookEvent) error {
		if calls.Add(1) == 1 {
			runtime.Goexit() // as t.FailNow or log.Fatal in a helper
		}
		return nil
	})
	dl := newDelivery(t, "goexit", id(t, 0))
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		post(h, dl)
	}()
	<-exited
	assert.Equal(t, http.StatusOK, post(h, dl), "the redelivery is handled, not refused as in flight")
	assert.Equal(t, int32(2), calls.Load())
}

// Main runs a store's test package: start connects to the store (starting a server when it
// must) and returns what stops it; a failure to start fails the package with its message.
func Main(m *testing.M, name string, start func() (stop func(), err error)) {
	stop, err := start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s tests: %v\n", name, err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// FreePort returns a loopback port nobody listens on.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Await calls ping until it succeeds, for up to 20 seconds, and returns its last error.
func Await(what string, ping func() error) error {
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = ping(); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s does not answer: %w", what, err)
}
