package laburenpg_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/internal/dedupcheck"
	"github.com/laburen/laburen-go/laburenpg"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pool is the PostgreSQL the tests run against: the one LABUREN_TEST_POSTGRES_URL names, or a
// server started for this package.
var pool *pgxpool.Pool

func TestMain(m *testing.M) { dedupcheck.Main(m, "laburenpg", startPostgres) }

// startPostgres connects pool and returns the function that stops what it started. PostgreSQL
// refuses to run as root: as root, the server runs as the user postgres.
func startPostgres() (stop func(), err error) {
	if u := os.Getenv("LABUREN_TEST_POSTGRES_URL"); u != "" {
		return func() { pool.Close() }, connect(u)
	}
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	dir, err := os.MkdirTemp("", "laburenpg-test-")
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, and there is no user postgres to run the server as (Debian's postgresql package creates it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	command := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = dir
		return cmd
	}
	data := filepath.Join(dir, "data")
	if out, err := command("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	port, err := dedupcheck.FreePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	server := command("postgres", "-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	logFile := filepath.Join(dir, "postgres.log")
	serverLog, err := os.Create(logFile)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer serverLog.Close()
	server.Stdout, server.Stderr = serverLog, serverLog
	if err := server.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	stop = func() {
		if pool != nil {
			pool.Close()
		}
		server.Process.Signal(syscall.SIGINT) // fast shutdown
		server.Wait()
		os.RemoveAll(dir)
	}
	if err := connect(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)); err != nil {
		out, _ := os.ReadFile(logFile)
		stop()
		return nil, fmt.Errorf("%w\n%s", err, out)
	}
	return stop, nil
}

// postgresBin returns the directory of initdb and postgres: the newest version Debian's
// postgresql package installed, or the one on PATH.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("initdb and postgres not found: install Debian's postgresql package (apt-get install postgresql), or set LABUREN_TEST_POSTGRES_URL to a database to use")
}

// connect opens pool on url and waits until the server answers.
func connect(url string) error {
	var err error
	pool, err = pgxpool.New(context.Background(), url)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	return dedupcheck.Await("postgres", func() error { return pool.Ping(context.Background()) })
}

// table returns a table name no other test or run uses.
func table() string { return "laburentest_" + strings.ToLower(rand.Text()) }

func open(t *testing.T, opts ...laburenpg.Option) *laburenpg.Deduplicator {
	t.Helper()
	d, err := laburenpg.New(context.Background(), pool, opts...)
	require.NoError(t, err)
	return d
}

func count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

func TestDeduplicator(t *testing.T) {
	tb := table()
	dedupcheck.Run(t, dedupcheck.Store{
		Open: func(t *testing.T, ttl time.Duration) laburen.WebhookDeduplicator {
			return open(t, laburenpg.WithTable(tb), laburenpg.WithClaimTTL(ttl))
		},
		LongestKey: func(t *testing.T) int {
			return count(t, `SELECT coalesce(max(octet_length(key)), 0) FROM `+tb)
		},
	})
}

// TestDoneTx: the delivery is recorded done in the function's own transaction, so that the
// effect and the record commit together; a replica whose lease was taken over cannot record
// it, and rolls its effect back.
func TestDoneTx(t *testing.T) {
	ctx := context.Background()
	tb := table()
	_, err := pool.Exec(ctx, `CREATE TABLE `+tb+`_effects (message text)`)
	require.NoError(t, err)
	effects := func() int { return count(t, `SELECT count(*) FROM `+tb+`_effects`) }
	secret := []byte("laburenpg-test-secret-0123456789")
	signed, err := laburen.SignWebhookURL("https://h.example.com/hook", nil, secret)
	require.NoError(t, err)
	u, err := url.Parse(signed)
	require.NoError(t, err)
	target := u.RequestURI()
	post := func(h http.Handler, messageID string) int {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(`{"messages":[],"agentResponse":{"messageId":"`+messageID+`"}}`))
		r.Header.Set(laburen.WebhookEventHeader, laburen.WebhookEventAgentResponse)
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	// effect inserts the effect and records the delivery in one transaction, after wait.
	effect := func(d *laburenpg.Deduplicator, wait func(), fail error) func(context.Context, *laburen.WebhookEvent) error {
		return func(ctx context.Context, ev *laburen.WebhookEvent) error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO `+tb+`_effects VALUES ($1)`, ev.AgentResponse.MessageID); err != nil {
					return err
				}
				wait()
				if err := d.DoneTx(ctx, tx); err != nil {
					return err
				}
				return fail
			})
		}
	}
	handler := func(d *laburenpg.Deduplicator, wait func(), fail error) http.Handler {
		return laburen.NewWebhookHandler(effect(d, wait, fail), laburen.WithWebhookSecret(secret),
			laburen.WithWebhookDeduplicator(d), laburen.WithWebhookLogger(nil))
	}

	t.Run("commits with the effect", func(t *testing.T) {
		d := open(t, laburenpg.WithTable(tb))
		h := handler(d, func() {}, nil)
		require.Equal(t, http.StatusOK, post(h, "m1"))
		require.Equal(t, http.StatusOK, post(h, "m1"))
		assert.Equal(t, 1, effects())
	})
	t.Run("rolls back with the effect", func(t *testing.T) {
		d := open(t, laburenpg.WithTable(tb))
		before := effects()
		require.Equal(t, http.StatusInternalServerError, post(handler(d, func() {}, errors.New("later step failed")), "m2"))
		assert.Equal(t, before, effects())
		require.Equal(t, http.StatusOK, post(handler(d, func() {}, nil), "m2"), "the redelivery is handled")
		assert.Equal(t, before+1, effects())
	})
	t.Run("a replica whose lease was taken over rolls back", func(t *testing.T) {
		const ttl = time.Second
		before := effects()
		entered, proceed := make(chan struct{}), make(chan struct{})
		late := handler(open(t, laburenpg.WithTable(tb), laburenpg.WithClaimTTL(ttl)), func() {
			entered <- struct{}{}
			<-proceed
		}, nil)
		status := make(chan int, 1)
		go func() { status <- post(late, "m3") }()
		<-entered
		time.Sleep(ttl + ttl/2)
		other := handler(open(t, laburenpg.WithTable(tb), laburenpg.WithClaimTTL(ttl)), func() {}, nil)
		require.Equal(t, http.StatusOK, post(other, "m3"), "the lease ran out: another replica handles it")
		close(proceed)
		assert.Equal(t, http.StatusInternalServerError, <-status, "DoneTx: claim lost")
		assert.Equal(t, before+1, effects(), "one effect committed")
	})
	t.Run("DoneTx outside a handler", func(t *testing.T) {
		d := open(t, laburenpg.WithTable(tb))
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return d.DoneTx(ctx, tx) })
		assert.ErrorContains(t, err, "the context carries no claim")
	})
}

// TestPrune: Done deletes expired rows of other keys, without a job of the user's.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	tb := table()
	d := open(t, laburenpg.WithTable(tb), laburenpg.WithDoneTTL(300*time.Millisecond), laburenpg.WithClaimTTL(300*time.Millisecond))
	markDone := func(key string) {
		st, token, err := d.Claim(ctx, key)
		require.NoError(t, err)
		require.Equal(t, laburen.DedupClaimed, st)
		require.NoError(t, d.Done(ctx, key, token))
	}
	for _, k := range []string{"a", "b", "c"} {
		markDone(k)
	}
	_, _, err := d.Claim(ctx, "abandoned")
	require.NoError(t, err)
	assert.Equal(t, 4, count(t, `SELECT count(*) FROM `+tb))
	time.Sleep(500 * time.Millisecond)
	markDone("d")
	assert.Equal(t, 1, count(t, `SELECT count(*) FROM `+tb), "the expired rows are gone")
	assert.Equal(t, 1, count(t, `SELECT count(*) FROM `+tb+` WHERE key = 'd' AND done`))
}

// TestPruneSparesTakenOverClaim: a prune that waited for a row that a claim took over
// meanwhile leaves it, so the new claim still holds its delivery.
func TestPruneSparesTakenOverClaim(t *testing.T) {
	ctx := context.Background()
	tb := table()
	d := open(t, laburenpg.WithTable(tb), laburenpg.WithClaimTTL(time.Millisecond), laburenpg.WithDoneTTL(time.Millisecond))
	_, _, err := d.Claim(ctx, "k") // a replica claims k and dies
	require.NoError(t, err)
	_, token, err := d.Claim(ctx, "other")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return count(t, `SELECT count(*) FROM `+tb+` WHERE expires_at < now()`) == 2 },
		time.Second, time.Millisecond)

	// Another replica takes k over, in a transaction that holds the row while a Done prunes.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	_, err = tx.Exec(ctx, `UPDATE `+tb+` SET token = 'b', expires_at = now() + interval '1 minute' WHERE key = 'k'`)
	require.NoError(t, err)
	pruned := make(chan error, 1)
	go func() { pruned <- d.Done(ctx, "other", token) }()
	require.Eventually(t, func() bool {
		return count(t, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM "`+tb+`" WHERE key IN%'`) == 1
	}, 10*time.Second, time.Millisecond, "the prune waits for the row")
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, <-pruned)
	assert.Equal(t, 1, count(t, `SELECT count(*) FROM `+tb+` WHERE key = 'k' AND token = 'b'`), "the new claim is kept")
	assert.NoError(t, d.Done(ctx, "k", "b"))
}

// TestPruneCatchesUp: when a prune deletes a full batch, the next Done prunes again.
func TestPruneCatchesUp(t *testing.T) {
	ctx := context.Background()
	tb := table()
	d := open(t, laburenpg.WithTable(tb))
	_, err := pool.Exec(ctx, `INSERT INTO `+tb+` SELECT 'old' || i, 't', true, now() - interval '1 second' FROM generate_series(1, 2500) i`)
	require.NoError(t, err)
	for _, left := range []int{1500, 500, 0} {
		st, token, err := d.Claim(ctx, fmt.Sprint("new", left))
		require.NoError(t, err)
		require.Equal(t, laburen.DedupClaimed, st)
		require.NoError(t, d.Done(ctx, fmt.Sprint("new", left), token))
		assert.Equal(t, left, count(t, `SELECT count(*) FROM `+tb+` WHERE key LIKE 'old%'`))
	}
}

// TestExistingTable: a role that may use a table but not create one can use one made for it.
func TestExistingTable(t *testing.T) {
	ctx := context.Background()
	schema := "laburentest_locked"
	_, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema)
	require.NoError(t, err)
	tb := schema + "." + table()
	open(t, laburenpg.WithTable(tb))
	role := "app_" + strings.TrimPrefix(tb, schema+".")
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN`,
		`GRANT USAGE ON SCHEMA ` + schema + ` TO ` + role, // and not CREATE
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ` + tb + ` TO ` + role,
	} {
		_, err := pool.Exec(ctx, q)
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(ctx, `DROP OWNED BY `+role)
		_, _ = pool.Exec(ctx, `DROP ROLE `+role)
	})
	cfg := pool.Config().ConnConfig
	app, err := pgxpool.New(ctx, fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", role, cfg.Host, cfg.Port, cfg.Database))
	require.NoError(t, err)
	defer app.Close()
	_, err = laburenpg.New(ctx, app, laburenpg.WithTable(schema+"."+table()))
	require.ErrorContains(t, err, "permission denied", "the role cannot create a table")
	d, err := laburenpg.New(ctx, app, laburenpg.WithTable(tb))
	require.NoError(t, err)
	st, token, err := d.Claim(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, laburen.DedupClaimed, st)
	assert.NoError(t, d.Done(ctx, "k", token))
}

// TestNew: the table is created once, under the name given; a bad name and a database that
// does not answer fail with the operation named.
func TestNew(t *testing.T) {
	ctx := context.Background()
	_, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS laburentest_schema`)
	require.NoError(t, err)
	name := "laburentest_schema." + table()
	for range 2 {
		open(t, laburenpg.WithTable(name))
	}
	assert.Equal(t, 1, count(t, `SELECT count(*) FROM pg_tables WHERE schemaname || '.' || tablename = $1`, name))
	open(t) // DefaultTable
	assert.Equal(t, 1, count(t, `SELECT count(*) FROM pg_tables WHERE tablename = $1`, laburenpg.DefaultTable))

	for _, bad := range []string{"", "a.b.c", ".x"} {
		_, err := laburenpg.New(ctx, pool, laburenpg.WithTable(bad))
		assert.ErrorContains(t, err, "laburenpg: table name", bad)
	}
	long := "laburentest_" + strings.Repeat("x", 40) // 52 bytes: the longest name New creates
	open(t, laburenpg.WithTable(long))
	assert.Equal(t, 1, count(t, `SELECT count(*) FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(expires_at)'`, long),
		"the longest table name has its expiry index")
	_, err = pool.Exec(ctx, `DROP TABLE `+long)
	require.NoError(t, err)
	longer := long + "x"
	_, err = laburenpg.New(ctx, pool, laburenpg.WithTable(longer))
	assert.ErrorContains(t, err, "the name is over 52 bytes, which leaves no room for its index's")
	_, err = pool.Exec(ctx, `CREATE TABLE `+longer+` (key text PRIMARY KEY, token text NOT NULL, done boolean NOT NULL, expires_at timestamptz NOT NULL)`)
	require.NoError(t, err)
	open(t, laburenpg.WithTable(longer)) // made for it: used as it is
	_, err = pool.Exec(ctx, `DROP TABLE `+longer)
	require.NoError(t, err)
	for _, tt := range []struct {
		opt  laburenpg.Option
		want string
	}{
		{laburenpg.WithClaimTTL(-time.Second), "laburenpg: WithClaimTTL(-1s): a lease is at least 1ms"},
		{laburenpg.WithClaimTTL(time.Microsecond), "laburenpg: WithClaimTTL(1µs)"},
		{laburenpg.WithDoneTTL(-time.Millisecond), "laburenpg: WithDoneTTL(-1ms): a done TTL is at least 1ms"},
	} {
		_, err := laburenpg.New(ctx, pool, laburenpg.WithTable(table()), tt.opt)
		assert.ErrorContains(t, err, tt.want)
	}
	open(t, laburenpg.WithTable(table()), laburenpg.WithClaimTTL(0), laburenpg.WithDoneTTL(0)) // 0: the defaults

	port, err := dedupcheck.FreePort()
	require.NoError(t, err)
	down, err := pgxpool.New(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", port))
	require.NoError(t, err)
	defer down.Close()
	_, err = laburenpg.New(ctx, down)
	assert.ErrorContains(t, err, "laburenpg: create table ")

	dropped := open(t, laburenpg.WithTable(name))
	_, err = pool.Exec(ctx, `DROP TABLE `+name)
	require.NoError(t, err)
	_, _, err = dropped.Claim(ctx, "k")
	assert.ErrorContains(t, err, "laburenpg: claim: ")
	assert.ErrorContains(t, dropped.Done(ctx, "k", "t"), "laburenpg: done: ")
	assert.ErrorContains(t, dropped.Release(ctx, "k", "t"), "laburenpg: release: ")
}
