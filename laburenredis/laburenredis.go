// Package laburenredis is a laburen.WebhookDeduplicator on Redis, for webhook receivers that run
// on several replicas: each delivery is passed to the handler's function once across all of
// them.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	handler := laburen.NewWebhookHandler(fn, laburen.WithWebhookSecret(secret),
//		laburen.WithWebhookDeduplicator(laburenredis.New(rdb)))
package laburenredis

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/laburen/laburen-go"
	"github.com/redis/go-redis/v9"
)

const (
	// DefaultPrefix is the prefix of the keys unless WithPrefix sets another.
	DefaultPrefix = "laburen:webhook:"
	// DefaultDoneTTL is how long a handled delivery is remembered unless WithDoneTTL sets
	// another.
	DefaultDoneTTL = 24 * time.Hour
)

// done is the value of a handled delivery's key; a claimed key holds its token instead.
const done = "done"

// Deduplicator is a laburen.WebhookDeduplicator on Redis. A key holds the token of its claim
// (with the claim's lease as its expiry) or "done" (with the done TTL). It is safe for
// concurrent use.
type Deduplicator struct {
	rdb      redis.UniversalClient
	prefix   string
	claimTTL time.Duration
	doneTTL  time.Duration
	err      error // a bad option, returned by Claim
}

var _ laburen.WebhookDeduplicator = (*Deduplicator)(nil)

// Option configures New.
type Option func(*Deduplicator)

// WithPrefix sets the prefix of the keys (DefaultPrefix by default); each key is the prefix
// and a delivery key of 64 hex digits.
func WithPrefix(prefix string) Option { return func(d *Deduplicator) { d.prefix = prefix } }

// WithClaimTTL sets the lease of a claim (laburen.DefaultDedupClaimTTL by default): a replica
// that died or hung while handling a delivery frees it after d. Choose d longer than the
// handler's function ever runs. 0 keeps the default; another d under a millisecond makes
// Claim fail.
func WithClaimTTL(d time.Duration) Option {
	return func(x *Deduplicator) { x.claimTTL = cmp.Or(d, x.claimTTL) }
}

// WithDoneTTL sets how long a handled delivery is remembered (DefaultDoneTTL by default):
// longer than Laburen may redeliver it. 0 keeps the default; another d under a millisecond
// makes Claim fail.
func WithDoneTTL(d time.Duration) Option {
	return func(x *Deduplicator) { x.doneTTL = cmp.Or(d, x.doneTTL) }
}

// New returns a Deduplicator on rdb (a *redis.Client, *redis.ClusterClient or a failover
// client). Every replica of a receiver uses one on the same Redis with the same prefix.
func New(rdb redis.UniversalClient, opts ...Option) *Deduplicator {
	d := &Deduplicator{rdb: rdb, prefix: DefaultPrefix, claimTTL: laburen.DefaultDedupClaimTTL, doneTTL: DefaultDoneTTL}
	for _, opt := range opts {
		opt(d)
	}
	d.err = checkTTLs(d.claimTTL, d.doneTTL)
	return d
}

// checkTTLs refuses a lease or done TTL under a millisecond, the unit of Redis's expiries.
func checkTTLs(claim, done time.Duration) error {
	switch {
	case claim < time.Millisecond:
		return fmt.Errorf("laburenredis: WithClaimTTL(%v): a lease is at least 1ms", claim)
	case done < time.Millisecond:
		return fmt.Errorf("laburenredis: WithDoneTTL(%v): a done TTL is at least 1ms", done)
	}
	return nil
}

// Claim claims key with one SET NX PX; when the key exists, a GET tells done from in flight.
func (d *Deduplicator) Claim(ctx context.Context, key string) (laburen.DedupStatus, string, error) {
	if d.err != nil {
		return 0, "", d.err
	}
	token := rand.Text()
	ok, err := d.rdb.SetNX(ctx, d.prefix+key, token, d.claimTTL).Result()
	if err != nil {
		return 0, "", fmt.Errorf("laburenredis: claim: %w", err)
	}
	if ok {
		return laburen.DedupClaimed, token, nil
	}
	v, err := d.rdb.Get(ctx, d.prefix+key).Result()
	switch {
	case err == nil && v == done:
		return laburen.DedupDone, "", nil
	case err == nil, errors.Is(err, redis.Nil):
		// Claimed, or freed since the SET: either way the sender comes back.
		return laburen.DedupInFlight, "", nil
	}
	return 0, "", fmt.Errorf("laburenredis: claim: %w", err)
}

// doneScript marks the key done while the claim is the caller's.
var doneScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
	return 1
end
return 0`)

// releaseScript deletes the key while the claim is the caller's.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`)

// Done records the delivery as handled for the done TTL, if the claim is still token's.
func (d *Deduplicator) Done(ctx context.Context, key, token string) error {
	return d.run(ctx, "done", doneScript, key, token, d.doneTTL.Milliseconds())
}

// Release deletes the claim, if it is still token's.
func (d *Deduplicator) Release(ctx context.Context, key, token string) error {
	return d.run(ctx, "release", releaseScript, key, token)
}

func (d *Deduplicator) run(ctx context.Context, op string, s *redis.Script, key, token string, args ...any) error {
	n, err := s.Run(ctx, d.rdb, []string{d.prefix + key}, append([]any{token}, args...)...).Int()
	if err != nil {
		return fmt.Errorf("laburenredis: %s: %w", op, err)
	}
	if n == 0 {
		return fmt.Errorf("laburenredis: %s: %w", op, laburen.ErrDedupClaimLost)
	}
	return nil
}
