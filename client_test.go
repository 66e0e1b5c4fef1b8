package laburen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewClientOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		wantErr string // empty: NewClient succeeds
	}{
		{"defaults", nil, ""},
		{"base URL", []Option{WithBaseURL("https://api.laburen.com/api/")}, ""},
		{"base URL with port", []Option{WithBaseURL("http://127.0.0.1:8080")}, ""},
		{"relative base URL", []Option{WithBaseURL("/api")}, "WithBaseURL"},
		{"base URL without scheme", []Option{WithBaseURL("dashboard.laburen.com/api")}, "WithBaseURL"},
		{"ftp base URL", []Option{WithBaseURL("ftp://laburen.com")}, "WithBaseURL"},
		{"base URL without host", []Option{WithBaseURL("https://:443/api")}, "WithBaseURL"},
		{"base URL with query", []Option{WithBaseURL("https://h.test/api?x=1")}, "WithBaseURL"},
		{"base URL with user info", []Option{WithBaseURL("https://me:" + testKey + "@h.test/api")}, "WithBaseURL"},
		{"unparsable base URL", []Option{WithBaseURL("http://h.test/%zz")}, "WithBaseURL"},
		{"unparsable base URL with user info", []Option{WithBaseURL("http://me:" + testKey + "@h.test/%zz")}, "WithBaseURL"},
		{"base URL with user info and no host", []Option{WithBaseURL("http://me:" + testKey + "@/api")}, "WithBaseURL"},
		{"nil HTTP client", []Option{WithHTTPClient(nil)}, "WithHTTPClient: nil"},
		{"negative retries", []Option{WithMaxRetries(-1)}, "WithMaxRetries: -1 is negative"},
		{"zero retries", []Option{WithMaxRetries(0)}, ""},
		{"negative retry delay", []Option{WithRetryDelay(-time.Second)}, "WithRetryDelay"},
		{"key with a line break", []Option{WithAPIKey("sk-1\nX-Evil: 1")}, "WithAPIKey"},
		{"key with a control character", []Option{WithAPIKey("sk-\x001")}, "WithAPIKey"},
		{"user agent with a line break", []Option{WithUserAgent("a\r\nb")}, "WithUserAgent"},
		{"empty header name", []Option{WithHeader("", "v")}, "WithHeader"},
		{"header name with colon", []Option{WithHeader("X-A:", "v")}, "WithHeader"},
		{"header value with line break", []Option{WithHeader("X-A", "v\nX-B: w")}, "WithHeader"},
		{"authorization through WithHeader", []Option{WithHeader("authorization", "Bearer x")}, "WithHeader: \"authorization\" is set by the SDK"},
		{"user agent through WithHeader", []Option{WithHeader("User-Agent", "x")}, "WithHeader: \"User-Agent\" is set by the SDK"},
		{"zero max event size", []Option{WithMaxEventSize(0)}, "WithMaxEventSize"},
		{"negative idle timeout", []Option{WithStreamIdleTimeout(-1)}, "WithStreamIdleTimeout"},
		{"nil logger", []Option{WithLogger(nil)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("LABUREN_API_KEY", "")
			t.Setenv("LABUREN_BASE_URL", "")
			c, err := NewClient(tt.opts...)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.NotNil(t, c)
				return
			}
			assert.Nil(t, c)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "laburen: new client: "+strings.Fields(tt.wantErr)[0]), err.Error())
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.NotContains(t, err.Error(), testKey)
		})
	}
}

func TestNewClientEnvironment(t *testing.T) {
	tests := []struct {
		name              string
		envKey, envBase   string
		opts              []Option
		wantAuth, wantURL string
		wantErr           string
	}{
		{name: "defaults", wantURL: "https://dashboard.laburen.com/api/agents/a/query"},
		{name: "key and base URL from the environment", envKey: testKey, envBase: "https://api.laburen.com/api/",
			wantAuth: "Bearer " + testKey, wantURL: "https://api.laburen.com/api/agents/a/query"},
		{name: "environment key is trimmed", envKey: " " + testKey + "\n", wantAuth: "Bearer " + testKey,
			wantURL: "https://dashboard.laburen.com/api/agents/a/query"},
		{name: "options override the environment", envKey: "env-key", envBase: "https://env.test/api",
			opts:     []Option{WithAPIKey("opt-key"), WithBaseURL("https://opt.test/v1")},
			wantAuth: "Bearer opt-key", wantURL: "https://opt.test/v1/agents/a/query"},
		{name: "an empty WithAPIKey turns the environment key off", envKey: "env-key", opts: []Option{WithAPIKey("")},
			wantURL: "https://dashboard.laburen.com/api/agents/a/query"},
		{name: "bad environment base URL", envBase: "not a url", wantErr: "laburen: new client: LABUREN_BASE_URL"},
		{name: "bad environment base URL overridden by the option", envBase: "not a url",
			opts: []Option{WithBaseURL("https://opt.test")}, wantURL: "https://opt.test/agents/a/query"},
		{name: "bad environment key", envKey: "sk\x01" + testKey, wantErr: "laburen: new client: LABUREN_API_KEY"},
		{name: "bad environment key overridden by the option", envKey: "a\x01b", opts: []Option{WithAPIKey("k")},
			wantAuth: "Bearer k", wantURL: "https://dashboard.laburen.com/api/agents/a/query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("LABUREN_API_KEY", tt.envKey)
			t.Setenv("LABUREN_BASE_URL", tt.envBase)
			var got *http.Request
			hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				got = r
				return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(`{}`)), Header: http.Header{}}, nil
			})}
			c, err := NewClient(append([]Option{WithHTTPClient(hc)}, tt.opts...)...)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.NotContains(t, err.Error(), testKey)
				return
			}
			require.NoError(t, err)
			_, err = c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			require.NotNil(t, got)
			assert.Equal(t, tt.wantURL, got.URL.String())
			assert.Equal(t, tt.wantAuth, got.Header.Get("Authorization"))
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// capturedFailure is an assert.TestingT that keeps the failure messages.
type capturedFailure struct{ msgs []string }

func (c *capturedFailure) Errorf(format string, args ...any) {
	c.msgs = append(c.msgs, fmt.Sprintf(format, args...))
}

func TestClientNeverShowsTheKey(t *testing.T) {
	c, err := NewClient(WithAPIKey(testKey), WithBaseURL("https://h.test/api"))
	require.NoError(t, err)
	type holder struct {
		c    Client // unexported: fmt cannot call its methods
		Ptr  *Client
		Copy Client
	}
	h := holder{c: *c, Ptr: c, Copy: *c}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, v := range []any{c, *c, h, &h, []any{*c}} {
			out := fmt.Sprintf(format, v)
			assert.NotContains(t, out, testKey, "%s of %T", format, v)
			assert.NotContains(t, out, testKey[3:], "%s of %T", format, v)
		}
	}

	// Reflection-based printers follow pointers into unexported fields: testify's diff of two
	// clients that differ must not show the key either.
	other, err := NewClient(WithAPIKey(testKey), WithBaseURL("https://other.test/api"))
	require.NoError(t, err)
	var diff capturedFailure
	assert.Equal(&diff, holder{c: *c}, holder{c: *other})
	require.NotEmpty(t, diff.msgs, "the clients differ, so the assertion fails")
	assert.Contains(t, diff.msgs[0], "other.test", "the diff shows the clients' fields")
	assert.NotContains(t, diff.msgs[0], testKey[3:])
}

func TestDefaultHTTPClient(t *testing.T) {
	t.Setenv("LABUREN_API_KEY", "")
	c, err := NewClient()
	require.NoError(t, err)
	hc := c.cfg.httpClient()
	assert.Same(t, defaultHTTPClient(), hc, "clients without WithHTTPClient share one pool")
	assert.Zero(t, hc.Timeout, "an overall timeout would cut long streams")
	tr, ok := hc.Transport.(*http.Transport)
	require.True(t, ok)
	assert.Positive(t, tr.ResponseHeaderTimeout)
	assert.GreaterOrEqual(t, tr.MaxIdleConnsPerHost, 128)
	assert.GreaterOrEqual(t, tr.MaxIdleConns, tr.MaxIdleConnsPerHost)
	assert.NotSame(t, http.DefaultTransport, tr, "the process-wide default transport is left alone")
}

// connCounter is a loopback server that answers every query and counts the connections it
// accepted.
func connCounter(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func answer(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, okAnswer)
}

// TestBurstReusesConnections: 8 waves of 128 concurrent queries through the default client open
// at most 256 connections. With Go's default of 2 idle connections per host they open about a
// thousand. It also runs one Client from many goroutines under the race detector.
func TestBurstReusesConnections(t *testing.T) {
	srv, conns := connCounter(t, answer)
	c, err := NewClient(WithBaseURL(srv.URL), WithAPIKey(testKey))
	require.NoError(t, err)
	const waves, perWave = 8, 128
	var failed atomic.Int64
	for range waves {
		var wg sync.WaitGroup
		for i := range perWave {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := c.Query(context.Background(), fmt.Sprintf("agent-%d", i), QueryRequest{Query: "Hi"})
				if err != nil || res.Answer != "Hello!" {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
	}
	assert.Zero(t, failed.Load())
	assert.LessOrEqual(t, conns.Load(), int64(256), "connections opened by %d queries", waves*perWave)
	t.Logf("%d queries opened %d connections", waves*perWave, conns.Load())
}

// retryServer answers with the statuses of script in turn (then 200) and counts the requests.
func retryServer(t *testing.T, script ...func(w http.ResponseWriter)) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		i := int(n.Add(1)) - 1
		if i < len(script) {
			script[i](w)
			return
		}
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func status(code int, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, `{"error":"status %d"}`, code)
	}
}

// recordWaits returns an option that records the waits between attempts instead of spending
// them.
func recordWaits() (Option, func() []time.Duration) {
	var mu sync.Mutex
	var waits []time.Duration
	return withSleep(func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			waits = append(waits, d)
			return ctx.Err()
		}), func() []time.Duration {
			mu.Lock()
			defer mu.Unlock()
			return append([]time.Duration(nil), waits...)
		}
}

func TestRetries(t *testing.T) {
	future := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		script     []func(http.ResponseWriter)
		opts       []Option
		wantCalls  int64
		wantErr    error // nil: success
		checkWaits func(t *testing.T, waits []time.Duration)
	}{
		{name: "503 then success", script: []func(http.ResponseWriter){status(503)}, wantCalls: 2,
			checkWaits: func(t *testing.T, w []time.Duration) {
				require.Len(t, w, 1)
				assert.InDelta(t, float64(DefaultRetryDelay), float64(w[0]), float64(DefaultRetryDelay)/4)
				assert.LessOrEqual(t, w[0], DefaultRetryDelay)
			}},
		{name: "429 503 then success", script: []func(http.ResponseWriter){status(429), status(503)},
			opts: []Option{WithMaxRetries(3)}, wantCalls: 3},
		{name: "502 is never retried", script: []func(http.ResponseWriter){status(502)}, wantCalls: 1, wantErr: ErrServer},
		{name: "504 is never retried", script: []func(http.ResponseWriter){status(504)}, wantCalls: 1, wantErr: ErrServer},
		{name: "retries are spent", script: []func(http.ResponseWriter){status(503), status(503), status(503), status(503)},
			wantCalls: 3, wantErr: ErrServer,
			checkWaits: func(t *testing.T, w []time.Duration) {
				require.Len(t, w, 2)
				assert.Greater(t, w[1], w[0]*5/4, "the backoff grows")
			}},
		{name: "429 spent is ErrRateLimited", script: []func(http.ResponseWriter){status(429), status(429), status(429)},
			wantCalls: 3, wantErr: ErrRateLimited},
		{name: "500 is never retried", script: []func(http.ResponseWriter){status(500)}, wantCalls: 1, wantErr: ErrServer},
		{name: "501 is never retried", script: []func(http.ResponseWriter){status(501)}, wantCalls: 1, wantErr: ErrServer},
		{name: "400 is never retried", script: []func(http.ResponseWriter){status(400)}, wantCalls: 1, wantErr: ErrInvalidRequest},
		{name: "402 is never retried", script: []func(http.ResponseWriter){status(402)}, wantCalls: 1, wantErr: ErrUsageLimit},
		{name: "retries off", script: []func(http.ResponseWriter){status(503)}, opts: []Option{WithMaxRetries(0)},
			wantCalls: 1, wantErr: ErrServer},
		{name: "Retry-After seconds is honoured", script: []func(http.ResponseWriter){status(429, "Retry-After", "7")}, wantCalls: 2,
			checkWaits: func(t *testing.T, w []time.Duration) { assert.Equal(t, []time.Duration{7 * time.Second}, w) }},
		{name: "Retry-After date is honoured", script: []func(http.ResponseWriter){status(503, "Retry-After", future)}, wantCalls: 2,
			checkWaits: func(t *testing.T, w []time.Duration) {
				require.Len(t, w, 1)
				assert.InDelta(t, float64(30*time.Second), float64(w[0]), float64(2*time.Second))
			}},
		{name: "Retry-After past the cap returns at once", script: []func(http.ResponseWriter){status(429, "Retry-After", "3600")},
			wantCalls: 1, wantErr: ErrRateLimited,
			checkWaits: func(t *testing.T, w []time.Duration) { assert.Empty(t, w) }},
		{name: "Retry-After on a 500 does not make it retried", script: []func(http.ResponseWriter){status(500, "Retry-After", "1")},
			wantCalls: 1, wantErr: ErrServer},
		{name: "Retry-After garbage falls back to backoff", script: []func(http.ResponseWriter){status(503, "Retry-After", "soon")},
			opts: []Option{WithRetryDelay(time.Second)}, wantCalls: 2,
			checkWaits: func(t *testing.T, w []time.Duration) {
				require.Len(t, w, 1)
				assert.InDelta(t, float64(time.Second), float64(w[0]), float64(time.Second)/4)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls := retryServer(t, tt.script...)
			record, waits := recordWaits()
			c, err := NewClient(append([]Option{WithBaseURL(srv.URL), WithAPIKey(testKey), record}, tt.opts...)...)
			require.NoError(t, err)
			res, err := c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
			assert.Equal(t, tt.wantCalls, calls.Load())
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, "Hello!", res.Answer)
			} else {
				require.Error(t, err)
				assert.ErrorIs(t, err, tt.wantErr)
			}
			assert.Len(t, waits(), int(tt.wantCalls)-1)
			if tt.checkWaits != nil {
				tt.checkWaits(t, waits())
			}
		})
	}
}

func TestRetryAfterPastCapIsReported(t *testing.T) {
	srv, calls := retryServer(t, status(429, "Retry-After", "3600"))
	c, err := NewClient(WithBaseURL(srv.URL), WithAPIKey(testKey))
	require.NoError(t, err)
	_, err = c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, time.Hour, apiErr.RetryAfter)
	assert.Equal(t, int64(1), calls.Load())
}

// TestNoRetryAfterTheRequestWasSent: a connection lost after the request was written is never
// retried, since the server may have stored and billed the message.
func TestNoRetryAfterTheRequestWasSent(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		calls.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close() // the request was read; the answer never comes
		}
	}))
	t.Cleanup(srv.Close)
	record, waits := recordWaits()
	c, err := NewClient(WithBaseURL(srv.URL), WithAPIKey(testKey), WithMaxRetries(5), record)
	require.NoError(t, err)
	_, err = c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
	require.Error(t, err)
	assert.Equal(t, int64(1), calls.Load())
	assert.Empty(t, waits())
	assert.True(t, strings.HasPrefix(err.Error(), `laburen: query agent "a": `), err.Error())
}

// TestRetryOnlyTransportErrorsBeforeSending: of the transport errors, only those that prove the
// request never left (a failed dial or lookup) are retried; any other may come after the server
// got the request. The final error says how many attempts were made, as an *APIError does.
func TestRetryOnlyTransportErrorsBeforeSending(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantCalls int64
	}{
		{"reset after sending", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, 1},
		{"unexpected EOF", io.ErrUnexpectedEOF, 1},
		{"dial refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, 3},
		{"DNS failure", &net.DNSError{Err: "no such host", Name: "h.test", IsNotFound: true}, 3},
		{"proxy refused", &net.OpError{Op: "proxyconnect", Net: "tcp", Err: errors.New("connection refused")}, 3},
		{"response header timeout", errors.New("net/http: timeout awaiting response headers"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			hc := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
				calls.Add(1)
				return nil, tt.err
			})}
			record, _ := recordWaits()
			c, err := NewClient(WithHTTPClient(hc), WithAPIKey(testKey), record)
			require.NoError(t, err)
			_, err = c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.err)
			assert.Equal(t, tt.wantCalls, calls.Load())
			if tt.wantCalls > 1 {
				assert.ErrorContains(t, err, fmt.Sprintf("(after %d attempts)", tt.wantCalls))
			} else {
				assert.NotContains(t, err.Error(), "attempts")
			}
		})
	}
}

// TestRetryRefusedConnection: a connection that could not be made is retried.
func TestRetryRefusedConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there any more: dials are refused

	var dials atomic.Int64
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	record, waits := recordWaits()
	c, err := NewClient(WithBaseURL("http://"+addr), WithHTTPClient(&http.Client{Transport: tr}), record)
	require.NoError(t, err)
	_, err = c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
	require.Error(t, err)
	assert.Equal(t, int64(1+DefaultMaxRetries), dials.Load())
	assert.Len(t, waits(), DefaultMaxRetries)
	var opErr *net.OpError
	assert.ErrorAs(t, err, &opErr)
}

// TestRetryTLSHandshakeTimeout: a server that accepts connections but never completes the TLS
// handshake never saw the request, so the attempt is retried.
func TestRetryTLSHandshakeTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	var held []net.Conn
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, conn) // silent: the handshake never completes
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		for _, c := range held {
			_ = c.Close()
		}
	})
	tr := &http.Transport{TLSHandshakeTimeout: 50 * time.Millisecond}
	t.Cleanup(tr.CloseIdleConnections)
	record, waits := recordWaits()
	c, err := NewClient(WithBaseURL("https://"+l.Addr().String()), WithHTTPClient(&http.Client{Transport: tr}), record)
	require.NoError(t, err)
	_, err = c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TLS handshake timeout")
	assert.Len(t, waits(), DefaultMaxRetries)
}

// TestCancelEndsTheWait: a context cancelled while the client waits to retry ends the wait at
// once.
func TestCancelEndsTheWait(t *testing.T) {
	srv, calls := retryServer(t, status(503, "Retry-After", "50"), status(503, "Retry-After", "50"))
	waiting := make(chan time.Duration, 1)
	c, err := NewClient(WithBaseURL(srv.URL), withSleep(func(ctx context.Context, d time.Duration) error {
		waiting <- d
		return sleep(ctx, d) // the real wait
	}))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := c.Query(ctx, "a", QueryRequest{Query: "Hi"})
		done <- err
	}()
	assert.Equal(t, 50*time.Second, <-waiting)
	cancel()
	err = <-done
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, int64(1), calls.Load())
	assert.Less(t, time.Since(start), 40*time.Second, "the wait ended with the context")
}

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, sleep(ctx, time.Hour), context.Canceled)
	assert.ErrorIs(t, sleep(ctx, 0), context.Canceled)
	assert.NoError(t, sleep(context.Background(), 0))
	assert.NoError(t, sleep(context.Background(), time.Nanosecond))
}

func TestBackoff(t *testing.T) {
	base := 500 * time.Millisecond
	for attempt := 1; attempt <= 10; attempt++ {
		full := min(base<<(attempt-1), maxBackoff)
		for range 50 {
			d := backoff(base, attempt)
			assert.LessOrEqual(t, d, full, "attempt %d", attempt)
			assert.GreaterOrEqual(t, d, full-full/4, "attempt %d", attempt)
		}
	}
	assert.Zero(t, backoff(0, 3))
	assert.LessOrEqual(t, backoff(time.Hour, 1), maxBackoff)
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[backoff(time.Second, 1)] = true
	}
	assert.Greater(t, len(seen), 1, "the backoff is jittered")
}

func TestPerCallOptions(t *testing.T) {
	srv, calls := retryServer(t, status(503), status(503))
	record, _ := recordWaits()
	c, err := NewClient(WithBaseURL(srv.URL), record)
	require.NoError(t, err)
	_, err = c.Query(context.Background(), "a", QueryRequest{Query: "Hi"}, WithMaxRetries(0))
	assert.ErrorIs(t, err, ErrServer)
	assert.Equal(t, int64(1), calls.Load(), "the call's option applies")
	_, err = c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
	require.NoError(t, err, "the client's own options are untouched")
	assert.Equal(t, int64(3), calls.Load())
}

func TestLogger(t *testing.T) {
	srv, _ := retryServer(t, status(503))
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	record, _ := recordWaits()
	c, err := NewClient(WithBaseURL(srv.URL), WithAPIKey(testKey), WithLogger(logger), record)
	require.NoError(t, err)
	_, err = c.Query(context.Background(), "agent-1", QueryRequest{Query: "my secret question"})
	require.NoError(t, err)

	// A transport error is logged too.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, l.Close())
	_, err = c.Query(context.Background(), "agent-1", QueryRequest{Query: "Hi"}, WithBaseURL("http://"+l.Addr().String()), WithMaxRetries(0))
	require.Error(t, err)

	mu.Lock()
	out := buf.String()
	mu.Unlock()
	assert.NotContains(t, out, testKey)
	assert.NotContains(t, out, "my secret question")
	var records []map[string]any
	for line := range strings.Lines(out) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec))
		records = append(records, rec)
	}
	require.Len(t, records, 3)
	for i, want := range []struct {
		level   string
		status  any
		attempt float64
	}{{"WARN", 503.0, 1}, {"DEBUG", 200.0, 2}, {"WARN", nil, 1}} {
		rec := records[i]
		assert.Equal(t, "laburen request", rec["msg"])
		assert.Equal(t, want.level, rec["level"])
		assert.Equal(t, "POST", rec["method"])
		assert.Equal(t, "/agents/agent-1/query", rec["path"])
		assert.Equal(t, want.attempt, rec["attempt"])
		assert.Equal(t, want.status, rec["status"])
		assert.Contains(t, rec, "duration")
	}
	assert.Contains(t, records[2]["error"], "connect")
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type failingReader struct{ data string }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, errors.New("connection reset by peer")
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReadResponseBody(t *testing.T) {
	long := `{"answer":"` + strings.Repeat("y", 3000) + `"}`
	tests := []struct {
		name          string
		body          io.Reader
		contentLength int64
		wantAnswerLen int
		wantErr       string
	}{
		{"length announced", strings.NewReader(okAnswer), int64(len(okAnswer)), 6, ""},
		{"length unknown", strings.NewReader(long), -1, 3000, ""},
		{"length zero but a body", strings.NewReader(okAnswer), 0, 6, ""},
		{"length understated", strings.NewReader(long), 10, 3000, ""},
		{"length overstated", strings.NewReader(okAnswer), 5000, 6, ""},
		{"cut mid-body", &failingReader{data: `{"answer":"hel`}, 100, 0, "read response (HTTP 200): connection reset by peer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: tt.contentLength, Body: io.NopCloser(tt.body)}, nil
			})}
			c, err := NewClient(WithHTTPClient(hc), WithAPIKey(""))
			require.NoError(t, err)
			res, err := c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Len(t, res.Answer, tt.wantAnswerLen)
		})
	}
}

// TestSharedHeaderValuesAreNotAliased: a RoundTripper that appends to a request's header (as
// middleware does) must neither change nor race with the headers of other requests. Run with
// -race: concurrent appends to a shared backing array are reported.
func TestSharedHeaderValuesAreNotAliased(t *testing.T) {
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got := strings.Join(r.Header.Values("X-Tenant"), ",") + "|" + r.Header.Get("Accept")
		r.Header["X-Tenant"] = append(r.Header["X-Tenant"], "mutated")
		r.Header["Accept"] = append(r.Header["Accept"], "mutated")
		return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: -1,
			Body: io.NopCloser(strings.NewReader(`{"answer":"` + got + `"}`))}, nil
	})}
	c, err := NewClient(WithHTTPClient(hc), WithAPIKey(""), WithHeader("X-Tenant", "a"), WithHeader("X-Tenant", "b"), WithHeader("X-Tenant", "c"))
	require.NoError(t, err)
	answers := make([]string, 8)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res, err := c.Query(context.Background(), "a", QueryRequest{Query: "Hi"}); err == nil {
				answers[i] = res.Answer
			}
		}()
	}
	wg.Wait()
	for _, a := range answers {
		assert.Equal(t, "a,b,c|application/json", a)
	}
}
