// Package laburenpg is a laburen.WebhookDeduplicator on PostgreSQL, for webhook receivers that
// run on several replicas: each delivery is passed to the handler's function once across all
// of them. When the function's effect lives in the same database, DoneTx records the delivery
// as done in the function's own transaction, so that the effect and the record commit
// together.
//
//	dedup, err := laburenpg.New(ctx, pool)
//	handler := laburen.NewWebhookHandler(fn, laburen.WithWebhookSecret(secret),
//		laburen.WithWebhookDeduplicator(dedup))
package laburenpg

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/laburen/laburen-go"
)

const (
	// DefaultTable is the table New uses unless WithTable names another.
	DefaultTable = "laburen_webhook_deliveries"
	// DefaultDoneTTL is how long a handled delivery is remembered unless WithDoneTTL sets
	// another.
	DefaultDoneTTL = 24 * time.Hour
)

// pruneBatch is the most rows one prune deletes.
const pruneBatch = 1000

// Deduplicator is a laburen.WebhookDeduplicator on a PostgreSQL table with a row per delivery
// key: its claim's token, whether it is done, and when the row expires (the end of the claim's
// lease, or of the done TTL). Expired rows are taken over by the next claim of their key and
// pruned in batches by Done, at most once per done TTL (or minute) unless a batch was full. It
// is safe for concurrent use.
type Deduplicator struct {
	pool     *pgxpool.Pool
	table    string
	claimTTL time.Duration
	doneTTL  time.Duration

	claimSQL, doneSQL, releaseSQL, pruneSQL string

	mu        sync.Mutex
	lastPrune time.Time
}

var _ laburen.WebhookDeduplicator = (*Deduplicator)(nil)

// Option configures New.
type Option func(*Deduplicator)

// WithTable names the table (DefaultTable by default), optionally qualified by its schema
// ("hooks.deliveries"). Every replica of a receiver uses the same table.
func WithTable(name string) Option { return func(d *Deduplicator) { d.table = name } }

// WithClaimTTL sets the lease of a claim (laburen.DefaultDedupClaimTTL by default): a replica
// that died or hung while handling a delivery frees it after d. Choose d longer than the
// handler's function ever runs. 0 keeps the default; New refuses another d under a
// millisecond.
func WithClaimTTL(d time.Duration) Option {
	return func(x *Deduplicator) { x.claimTTL = cmp.Or(d, x.claimTTL) }
}

// WithDoneTTL sets how long a handled delivery is remembered (DefaultDoneTTL by default):
// longer than Laburen may redeliver it. 0 keeps the default; New refuses another d under a
// millisecond.
func WithDoneTTL(d time.Duration) Option {
	return func(x *Deduplicator) { x.doneTTL = cmp.Or(d, x.doneTTL) }
}

// New returns a Deduplicator on pool, creating its table (and an index on its expiry) when the
// table is missing.
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Deduplicator, error) {
	d := &Deduplicator{pool: pool, table: DefaultTable, claimTTL: laburen.DefaultDedupClaimTTL, doneTTL: DefaultDoneTTL}
	for _, opt := range opts {
		opt(d)
	}
	switch {
	case d.claimTTL < time.Millisecond:
		return nil, fmt.Errorf("laburenpg: WithClaimTTL(%v): a lease is at least 1ms", d.claimTTL)
	case d.doneTTL < time.Millisecond:
		return nil, fmt.Errorf("laburenpg: WithDoneTTL(%v): a done TTL is at least 1ms", d.doneTTL)
	}
	parts := strings.Split(d.table, ".")
	for _, p := range parts {
		if p == "" || len(parts) > 2 {
			return nil, fmt.Errorf("laburenpg: table name %q is not a name or schema.name", d.table)
		}
	}
	t := pgx.Identifier(parts).Sanitize()
	index := parts[len(parts)-1] + "_expires_at"
	d.claimSQL = `WITH claimed AS (
	INSERT INTO ` + t + ` AS t (key, token, done, expires_at)
	VALUES ($1, $2, false, now() + $3 * interval '1 millisecond')
	ON CONFLICT (key) DO UPDATE SET token = excluded.token, done = false, expires_at = excluded.expires_at
	WHERE t.expires_at <= now()
	RETURNING 1)
SELECT EXISTS (SELECT FROM claimed), coalesce((SELECT done FROM ` + t + ` WHERE key = $1), false)`
	d.doneSQL = `UPDATE ` + t + ` SET done = true, expires_at = now() + $3 * interval '1 millisecond' WHERE key = $1 AND token = $2`
	d.releaseSQL = `DELETE FROM ` + t + ` WHERE key = $1 AND token = $2 AND NOT done`
	// The outer expires_at check holds when the DELETE waited for a row that a claim took
	// over meanwhile: PostgreSQL re-checks the row against the outer condition only.
	d.pruneSQL = `DELETE FROM ` + t + ` WHERE key IN (SELECT key FROM ` + t + ` WHERE expires_at < now() LIMIT ` + fmt.Sprint(pruneBatch) + `) AND expires_at < now()`

	// A table that exists is used as it is, so that a role without the right to create
	// tables can use one made for it. Replicas that start together create it one at a time.
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t).Scan(&exists); err != nil || exists {
			return err
		}
		if len(index) > 63 { // PostgreSQL would cut the index's name, and may find another
			return fmt.Errorf("the name is over %d bytes, which leaves no room for its index's, %q", 63-len("_expires_at"), index)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "laburenpg "+t); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t+` (
	key text PRIMARY KEY,
	token text NOT NULL,
	done boolean NOT NULL,
	expires_at timestamptz NOT NULL)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE INDEX IF NOT EXISTS `+pgx.Identifier{index}.Sanitize()+` ON `+t+` (expires_at)`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("laburenpg: create table %s: %w", t, err)
	}
	return d, nil
}

// Claim claims key with one INSERT ... ON CONFLICT that also takes over a row whose lease (or
// done TTL) ran out.
func (d *Deduplicator) Claim(ctx context.Context, key string) (laburen.DedupStatus, string, error) {
	token := rand.Text()
	var claimed, done bool
	err := d.pool.QueryRow(ctx, d.claimSQL, key, token, d.claimTTL.Milliseconds()).Scan(&claimed, &done)
	switch {
	case err != nil:
		return 0, "", fmt.Errorf("laburenpg: claim: %w", err)
	case claimed:
		return laburen.DedupClaimed, token, nil
	case done:
		return laburen.DedupDone, "", nil
	}
	// Claimed by another delivery (or committed after this statement began): it comes back.
	return laburen.DedupInFlight, "", nil
}

// Done records the delivery as handled for the done TTL, if the claim is still token's. After
// DoneTx recorded it with the same token, Done succeeds again.
func (d *Deduplicator) Done(ctx context.Context, key, token string) error {
	if err := d.done(ctx, d.pool, key, token); err != nil {
		return err
	}
	d.prune(ctx)
	return nil
}

// DoneTx records the delivery whose claim ctx carries as handled, inside tx: call it from the
// handler's function, with the context it was given, in the transaction that holds the
// function's effect. When it returns an error (ErrDedupClaimLost: the lease ran out and
// another replica took the delivery over), roll tx back and return the error.
func (d *Deduplicator) DoneTx(ctx context.Context, tx pgx.Tx) error {
	c, ok := laburen.DedupClaimFromContext(ctx)
	if !ok {
		return errors.New("laburenpg: done: the context carries no claim: call DoneTx with the context the webhook handler gave its function, configured WithWebhookDeduplicator")
	}
	return d.done(ctx, tx, c.Key, c.Token)
}

func (d *Deduplicator) done(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, key, token string) error {
	tag, err := db.Exec(ctx, d.doneSQL, key, token, d.doneTTL.Milliseconds())
	if err != nil {
		return fmt.Errorf("laburenpg: done: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("laburenpg: done: %w", laburen.ErrDedupClaimLost)
	}
	return nil
}

// Release deletes the claim, if it is still token's and not done.
func (d *Deduplicator) Release(ctx context.Context, key, token string) error {
	tag, err := d.pool.Exec(ctx, d.releaseSQL, key, token)
	if err != nil {
		return fmt.Errorf("laburenpg: release: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("laburenpg: release: %w", laburen.ErrDedupClaimLost)
	}
	return nil
}

// prune deletes a batch of expired rows, at most once per done TTL or minute, whichever is
// shorter, or at the next Done when the batch was full. A failure is left to the next prune:
// the delivery itself was recorded.
func (d *Deduplicator) prune(ctx context.Context) {
	d.mu.Lock()
	if time.Since(d.lastPrune) < min(d.doneTTL, time.Minute) {
		d.mu.Unlock()
		return
	}
	d.lastPrune = time.Now()
	d.mu.Unlock()
	tag, err := d.pool.Exec(ctx, d.pruneSQL)
	if err == nil && tag.RowsAffected() == pruneBatch {
		d.mu.Lock()
		d.lastPrune = time.Time{}
		d.mu.Unlock()
	}
}
