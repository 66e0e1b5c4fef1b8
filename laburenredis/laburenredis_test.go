package laburenredis_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/internal/dedupcheck"
	"github.com/laburen/laburen-go/laburenredis"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rdb is the Redis the tests run against: the one LABUREN_TEST_REDIS_URL names, or a
// redis-server started for this package.
var rdb *redis.Client

func TestMain(m *testing.M) { dedupcheck.Main(m, "laburenredis", startRedis) }

// startRedis connects rdb and returns the function that stops what it started.
func startRedis() (stop func(), err error) {
	if u := os.Getenv("LABUREN_TEST_REDIS_URL"); u != "" {
		opts, err := redis.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("LABUREN_TEST_REDIS_URL: %w", err)
		}
		rdb = redis.NewClient(opts)
		return func() { rdb.Close() }, ping()
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found: install Debian's redis-server package (apt-get install redis-server), or set LABUREN_TEST_REDIS_URL to a Redis to use")
	}
	dir, err := os.MkdirTemp("", "laburenredis-test-")
	if err != nil {
		return nil, err
	}
	port, err := dedupcheck.FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	stop = func() {
		rdb.Close()
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	rdb = redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))})
	if err := ping(); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// ping waits until Redis answers.
func ping() error {
	return dedupcheck.Await("redis", func() error { return rdb.Ping(context.Background()).Err() })
}

// prefix returns a key prefix no other test or run uses.
func prefix() string { return "laburentest:" + rand.Text() + ":" }

func TestDeduplicator(t *testing.T) {
	p := prefix()
	dedupcheck.Run(t, dedupcheck.Store{
		Open: func(_ *testing.T, ttl time.Duration) laburen.WebhookDeduplicator {
			return laburenredis.New(rdb, laburenredis.WithPrefix(p), laburenredis.WithClaimTTL(ttl))
		},
		LongestKey: func(t *testing.T) int {
			keys, err := rdb.Keys(context.Background(), p+"*").Result()
			require.NoError(t, err)
			require.NotEmpty(t, keys)
			n := 0
			for _, k := range keys {
				n = max(n, len(k))
			}
			return n
		},
	})
}

// TestKeysAndTTLs: the keys are the prefix and the delivery key; a claim expires after the
// claim TTL, a done key after the done TTL; 0 keeps a default, another TTL under a millisecond
// fails the claim.
func TestKeysAndTTLs(t *testing.T) {
	ctx := context.Background()
	key := (&laburen.WebhookEvent{Name: "ttl", Body: []byte(`"` + rand.Text() + `"`)}).DeliveryKey()
	tests := []struct {
		name   string
		opts   []laburenredis.Option
		prefix string
		claim  time.Duration
		done   time.Duration
	}{
		{"defaults", nil, laburenredis.DefaultPrefix, laburen.DefaultDedupClaimTTL, laburenredis.DefaultDoneTTL},
		{"zero keeps the default", []laburenredis.Option{laburenredis.WithClaimTTL(0), laburenredis.WithDoneTTL(0)}, laburenredis.DefaultPrefix, laburen.DefaultDedupClaimTTL, laburenredis.DefaultDoneTTL},
		{"set", []laburenredis.Option{laburenredis.WithPrefix("p:"), laburenredis.WithClaimTTL(time.Hour), laburenredis.WithDoneTTL(48 * time.Hour)}, "p:", time.Hour, 48 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := laburenredis.New(rdb, tt.opts...)
			t.Cleanup(func() { rdb.Del(ctx, tt.prefix+key) })
			st, token, err := d.Claim(ctx, key)
			require.NoError(t, err)
			require.Equal(t, laburen.DedupClaimed, st)
			assert.Equal(t, token, rdb.Get(ctx, tt.prefix+key).Val())
			assert.InDelta(t, tt.claim.Seconds(), rdb.PTTL(ctx, tt.prefix+key).Val().Seconds(), 5)
			require.NoError(t, d.Done(ctx, key, token))
			assert.Equal(t, "done", rdb.Get(ctx, tt.prefix+key).Val())
			assert.InDelta(t, tt.done.Seconds(), rdb.PTTL(ctx, tt.prefix+key).Val().Seconds(), 5)
		})
	}

	for _, tt := range []struct {
		opt  laburenredis.Option
		want string
	}{
		{laburenredis.WithClaimTTL(time.Microsecond), "laburenredis: WithClaimTTL(1µs): a lease is at least 1ms"},
		{laburenredis.WithClaimTTL(-time.Second), "laburenredis: WithClaimTTL(-1s)"},
		{laburenredis.WithDoneTTL(-time.Millisecond), "laburenredis: WithDoneTTL(-1ms): a done TTL is at least 1ms"},
	} {
		_, _, err := laburenredis.New(rdb, tt.opt).Claim(ctx, key)
		assert.ErrorContains(t, err, tt.want)
	}
	assert.Zero(t, rdb.Exists(ctx, laburenredis.DefaultPrefix+key).Val(), "a bad option sends nothing")
}

// TestRedisDown: every operation on a Redis that does not answer fails with the operation
// named.
func TestRedisDown(t *testing.T) {
	port, err := dedupcheck.FreePort()
	require.NoError(t, err)
	down := redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), MaxRetries: -1})
	defer down.Close()
	d := laburenredis.New(down)
	ctx := context.Background()
	_, _, err = d.Claim(ctx, "k")
	assert.ErrorContains(t, err, "laburenredis: claim: ")
	assert.ErrorContains(t, d.Done(ctx, "k", "t"), "laburenredis: done: ")
	assert.ErrorContains(t, d.Release(ctx, "k", "t"), "laburenredis: release: ")
	assert.NotErrorIs(t, d.Release(ctx, "k", "t"), laburen.ErrDedupClaimLost)
}
