// Package laburen is a client for the Laburen agent API: an agent's answers, whole, streamed
// or by webhook; agent-side messages; and the routing IDs of conversations.
package laburen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/laburen/laburen-go/internal/httpurl"
)

// Version is the SDK's version, sent in the User-Agent.
const Version = "0.1.0"

// Defaults of the options.
const (
	DefaultBaseURL           = "https://dashboard.laburen.com/api"
	DefaultMaxRetries        = 2
	DefaultRetryDelay        = 500 * time.Millisecond
	DefaultMaxEventSize      = 16 << 20
	DefaultStreamIdleTimeout = 5 * time.Minute
	DefaultMaxAnswerSize     = 64 << 20
)

const (
	// maxBackoff caps the exponential backoff between two attempts.
	maxBackoff = 8 * time.Second
	// maxRetryAfter caps the wait a Retry-After header may impose; past it the call returns
	// the error (with APIError.RetryAfter) instead of waiting.
	maxRetryAfter = time.Minute
	// responseHeaderTimeout bounds the wait for response headers on the default HTTP client.
	// A non-streaming query sends its headers only once the whole answer is generated.
	responseHeaderTimeout = 10 * time.Minute
)

// Client calls the Laburen API; make one with NewClient and share it.
type Client struct {
	cfg config
}

// config is a client's configuration. Its httpClient is held in a func, so that printers never
// reach the transport's idle connections, whose buffers keep the bytes of past requests with
// their Authorization header.
type config struct {
	auth              secret // the Authorization header's value, "Bearer <key>"; empty without a key
	authSet           bool   // WithAPIKey was given: LABUREN_API_KEY is not read
	baseURL           string // absolute, without a trailing slash
	httpClient        func() *http.Client
	maxRetries        int
	retryDelay        time.Duration
	userAgent         string
	header            http.Header
	logger            *slog.Logger
	maxEventSize      int
	streamIdleTimeout time.Duration
	maxAnswerSize     int
	observer          *Observer // nil: calls are not observed

	// sleep waits between attempts; nil means the package's sleep. Tests replace it to see
	// the waits without spending them.
	sleep func(context.Context, time.Duration) error
	// drainTimeout bounds the read of the rest of a stream's body after its final event; zero
	// means drainTimeout, capped by streamIdleTimeout. Tests raise it.
	drainTimeout time.Duration
}

// secret holds a credential inside a closure. fmt cannot call methods on values reached through
// unexported fields, and reflection-based printers (testify's diffs, spew) follow pointers; a
// func is shown by all of them as an address only.
type secret struct{ f func() string }

func newSecret(s string) secret {
	if s == "" {
		return secret{}
	}
	return secret{f: func() string { return s }}
}

func (s secret) set() bool { return s.f != nil }

func (s secret) value() string {
	if s.f == nil {
		return ""
	}
	return s.f()
}

// Option configures a Client, or one call when given to a method.
type Option func(*config) error

// NewClient returns a client configured by opts, LABUREN_API_KEY and LABUREN_BASE_URL. A
// missing key is fine: public agents answer without one.
func NewClient(opts ...Option) (*Client, error) {
	cfg := config{
		maxRetries:        DefaultMaxRetries,
		retryDelay:        DefaultRetryDelay,
		userAgent:         "laburen-go/" + Version,
		maxEventSize:      DefaultMaxEventSize,
		streamIdleTimeout: DefaultStreamIdleTimeout,
		maxAnswerSize:     DefaultMaxAnswerSize,
	}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("laburen: new client: %w", err)
		}
	}
	if !cfg.authSet {
		key, err := cleanKey(os.Getenv("LABUREN_API_KEY"))
		if err != nil {
			return nil, fmt.Errorf("laburen: new client: LABUREN_API_KEY: %w", err)
		}
		cfg.auth = bearer(key)
	}
	if cfg.baseURL == "" { // not set by WithBaseURL: a bad LABUREN_BASE_URL matters only then
		cfg.baseURL = DefaultBaseURL
		if env := os.Getenv("LABUREN_BASE_URL"); env != "" {
			u, err := cleanBaseURL(env)
			if err != nil {
				return nil, fmt.Errorf("laburen: new client: LABUREN_BASE_URL: %w", err)
			}
			cfg.baseURL = u
		}
	}
	if cfg.httpClient == nil {
		cfg.httpClient = defaultHTTPClient
	}
	return &Client{cfg: cfg}, nil
}

// WithAPIKey sets the API key (over LABUREN_API_KEY); an empty key sends none.
func WithAPIKey(key string) Option {
	return func(c *config) error {
		key, err := cleanKey(key)
		if err != nil {
			return fmt.Errorf("WithAPIKey: %w", err)
		}
		c.auth, c.authSet = bearer(key), true
		return nil
	}
}

// WithBaseURL sets the API's absolute http(s) base URL, over LABUREN_BASE_URL.
func WithBaseURL(base string) Option {
	return func(c *config) error {
		u, err := cleanBaseURL(base)
		if err != nil {
			return fmt.Errorf("WithBaseURL: %w", err)
		}
		c.baseURL = u
		return nil
	}
}

// cleanKey trims an API key and refuses one that cannot travel in a header. The error never
// shows the key.
func cleanKey(key string) (string, error) {
	key = strings.TrimSpace(key)
	if strings.IndexFunc(key, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
		return "", errors.New("the key contains a line break or control character")
	}
	return key, nil
}

// bearer is the Authorization header's value for key; empty (no header) without a key.
func bearer(key string) secret {
	if key == "" {
		return secret{}
	}
	return newSecret("Bearer " + key)
}

func cleanBaseURL(base string) (string, error) {
	u, err := httpurl.Parse(strings.TrimSpace(base))
	if strings.Contains(base, "@") { // an API's path has none: a password the parser misread
		err = httpurl.ErrUserInfo
	}
	if errors.Is(err, httpurl.ErrUserInfo) {
		return "", fmt.Errorf("base URL %w: give the API key with WithAPIKey", err)
	}
	if err != nil {
		return "", fmt.Errorf("base URL %w", err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("base URL %q must not carry a query or fragment", u.String())
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// WithHTTPClient sets the HTTP client; the key goes only to the API's origin.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("WithHTTPClient: nil *http.Client")
		}
		guarded := keyStaysHome(hc)
		c.httpClient = func() *http.Client { return guarded }
		return nil
	}
}

// errDowngrade refuses a redirect from https to http.
var errDowngrade = errors.New("refused a redirect from https to http: the request would travel in clear text")

// keyStaysHome returns a shallow copy of hc whose redirects carry the Authorization header only
// to the origin of the first request, and only while every hop before stayed there: Go's client
// compares host names only, and would send it to another port or a subdomain, or back from one.
// A redirect from https to http is refused: the message would travel in clear text.
func keyStaysHome(hc *http.Client) *http.Client {
	guarded := *hc
	next := hc.CheckRedirect
	guarded.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.EqualFold(via[len(via)-1].URL.Scheme, "https") && !strings.EqualFold(req.URL.Scheme, "https") {
			return errDowngrade
		}
		for _, v := range via {
			if !sameOrigin(req.URL, v.URL) { // a hop off the origin: the key stays off the chain
				req.Header.Del("Authorization")
				break
			}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 { // net/http's default rule
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &guarded
}

// sameOrigin reports whether a and b have the same scheme, host and port.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) &&
		originPort(a) == originPort(b)
}

// origin is the scheme, host and port of u, as the redirect rule compares them.
func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), originPort(u))
}

func originPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// WithMaxRetries sets how often a safe failure is retried (default 2; 0: off).
func WithMaxRetries(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("WithMaxRetries: %d is negative", n)
		}
		c.maxRetries = n
		return nil
	}
}

// WithRetryDelay sets the base of the exponential backoff (default 500ms).
func WithRetryDelay(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("WithRetryDelay: %v is negative", d)
		}
		c.retryDelay = d
		return nil
	}
}

// WithUserAgent puts product ("my-bridge/1.2") in front of the User-Agent.
func WithUserAgent(product string) Option {
	return func(c *config) error {
		product = strings.TrimSpace(product)
		if strings.ContainsAny(product, "\r\n") {
			return errors.New("WithUserAgent: the value contains a line break")
		}
		if product != "" {
			c.userAgent = product + " laburen-go/" + Version
		}
		return nil
	}
}

// WithHeader adds a header, other than those the SDK sets, to every request.
func WithHeader(key, value string) Option {
	return func(c *config) error {
		if key == "" || strings.ContainsAny(key, " :\r\n") || strings.ContainsAny(value, "\r\n") {
			return fmt.Errorf("WithHeader: invalid header %q", key)
		}
		switch http.CanonicalHeaderKey(key) {
		case "Authorization", "Content-Type", "Accept", "User-Agent":
			return fmt.Errorf("WithHeader: %q is set by the SDK (use WithAPIKey or WithUserAgent)", key)
		}
		c.header = c.header.Clone()
		if c.header == nil {
			c.header = http.Header{}
		}
		c.header.Add(key, value)
		return nil
	}
}

// WithLogger logs each attempt, never the key or messages (default: off).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		c.logger = l
		return nil
	}
}

// WithMaxEventSize limits a stream event and a JSON response (default 16 MiB).
func WithMaxEventSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("WithMaxEventSize: %d is not positive", n)
		}
		c.maxEventSize = n
		return nil
	}
}

// WithStreamIdleTimeout fails a stream read idle for d, and a whole body read that gets less
// than a KiB in d (default 5m; 0: off).
func WithStreamIdleTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("WithStreamIdleTimeout: %v is negative", d)
		}
		c.streamIdleTimeout = d
		return nil
	}
}

// WithMaxAnswerSize limits the answer a stream joins (default 64 MiB).
func WithMaxAnswerSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("WithMaxAnswerSize: %d is not positive", n)
		}
		c.maxAnswerSize = n
		return nil
	}
}

// defaultHTTPClient is shared by every Client that was given none, so that they share one
// connection pool.
var defaultHTTPClient = sync.OnceValue(func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = responseHeaderTimeout
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 256
	return keyStaysHome(&http.Client{Transport: t})
})

// configFor returns the client's configuration with a call's options applied.
func (c *Client) configFor(opts []Option) (*config, error) {
	if len(opts) == 0 {
		return &c.cfg, nil // never written to after NewClient
	}
	cfg := c.cfg
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	return &cfg, nil
}

// request is one API call, as the endpoint methods hand it to the request path.
type request struct {
	path   string // below the base URL, already escaped: "/agents/x/query"
	body   []byte // JSON
	stream bool   // ask for text/event-stream
	call   Call   // what an Observer is told of the call
	obs    *observation
}

// send is the request path every endpoint goes through: it sends req, retries what is safe to
// retry, and returns the response when its status is 2xx. Any other status becomes an
// *APIError. The caller closes the returned body.
func (c *Client) send(ctx context.Context, cfg *config, req request) (*http.Response, error) {
	target := cfg.baseURL + req.path
	for attempt := 1; ; attempt++ {
		res, err := c.attempt(ctx, cfg, target, req, attempt)
		var apiErr *APIError
		switch {
		case err == nil && res.StatusCode >= 200 && res.StatusCode < 300:
			req.obs.attempt(attempt, res.StatusCode, nil, -1) // observe: a 2xx attempt
			return res, nil
		case err == nil:
			apiErr = readAPIError(res, cfg)
			apiErr.Method, apiErr.Path, apiErr.Attempts = http.MethodPost, urlPath(target), attempt
			if (apiErr.StatusCode == http.StatusUnauthorized || apiErr.StatusCode == http.StatusForbidden) && !cfg.auth.set() {
				apiErr.hint = "no API key was configured: use WithAPIKey or set LABUREN_API_KEY"
			}
			apiErr.hint = joinHints(apiErr.hint, redirectHint(cfg, target, res.Request))
			err = apiErr
		case ctx.Err() != nil:
			req.obs.attempt(attempt, 0, err, -1) // observe: the context ended
			return nil, withAttempts(err, attempt)
		}
		if attempt > cfg.maxRetries {
			req.obs.attempt(attempt, statusOf(apiErr), err, -1) // observe: no retries left
			return nil, withAttempts(err, attempt)
		}
		wait, ok := retryWait(cfg, attempt, err, apiErr)
		wait = min(wait, maxRetryAfter)
		if deadline, set := ctx.Deadline(); ok && set && apiErr != nil && time.Until(deadline) < wait {
			ok = false // the wait cannot fit: report the response now, with its RetryAfter
		}
		if !ok {
			req.obs.attempt(attempt, statusOf(apiErr), err, -1) // observe: not retried
			return nil, withAttempts(err, attempt)
		}
		req.obs.attempt(attempt, statusOf(apiErr), err, wait) // observe: retried after wait
		pause := cfg.sleep
		if pause == nil {
			pause = sleep
		}
		if err := pause(ctx, wait); err != nil {
			return nil, withAttempts(err, attempt)
		}
	}
}

// withAttempts adds to a call's final error, other than an *APIError (which has Attempts), how
// many requests the call sent, when more than one.
func withAttempts(err error, attempts int) error {
	if _, ok := err.(*APIError); ok || attempts < 2 {
		return err
	}
	return fmt.Errorf("%w (after %d attempts)", err, attempts)
}

// urlPath is the escaped path of the URL target, as an error shows it.
func urlPath(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return ""
	}
	return u.EscapedPath()
}

// redirectHint explains an error response that came from where a redirect led: the HTTP client
// follows redirects, turns the POST into a GET on a 301, 302 or 303, and does not send the
// Authorization header to another host. final is the request that got the response.
func redirectHint(cfg *config, target string, final *http.Request) string {
	if final == nil || final.URL == nil || final.URL.String() == target {
		return ""
	}
	hint := "the request was redirected to " + cfg.redact(final.URL.Redacted(), -1)
	if final.Method != http.MethodPost {
		hint += ", which turned the POST into a " + final.Method
	}
	if cfg.auth.set() && final.Header.Get("Authorization") == "" {
		if u, err := url.Parse(target); err == nil {
			hint += ", without the API key: it is sent only to " + origin(u)
		}
	}
	return hint + "; point WithBaseURL at the new location"
}

func joinHints(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}

// neverSent reports whether a transport error proves that the request never reached the
// server: the connection could not be made (refused, unreachable, DNS, proxy, TLS handshake
// timeout). Any other error may come after the request was written, and is not retried. Go's
// transport retries a request on a stale pooled connection by itself only when nothing was
// written, so these errors hold for the request as a whole.
func neverSent(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && (opErr.Op == "dial" || opErr.Op == "proxyconnect") {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var timeout interface{ Timeout() bool }
	return errors.As(err, &timeout) && timeout.Timeout() && strings.Contains(err.Error(), "TLS handshake timeout")
}

// Header values the request path sets, shared read-only by every request.
var (
	jsonHeader   = []string{"application/json"}
	streamHeader = []string{"text/event-stream"}
)

// attempt sends one HTTP request, number attempt of the call.
func (c *Client) attempt(ctx context.Context, cfg *config, target string, req request, attempt int) (*http.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(req.body))
	if err != nil {
		return nil, err
	}
	for k, v := range cfg.header {
		hreq.Header[k] = v[:len(v):len(v)] // shared read-only: an append must copy
	}
	// Canonical keys assigned directly: the values are fixed or already checked.
	hreq.Header["Content-Type"] = jsonHeader[:1:1]
	if req.stream {
		hreq.Header["Accept"] = streamHeader[:1:1]
	} else {
		hreq.Header["Accept"] = jsonHeader[:1:1]
	}
	hreq.Header["User-Agent"] = []string{cfg.userAgent}
	if cfg.auth.set() {
		hreq.Header["Authorization"] = []string{cfg.auth.value()}
	}
	var start time.Time
	if cfg.logger != nil {
		start = time.Now()
	}
	res, err := cfg.httpClient().Do(hreq)
	if cfg.logger != nil {
		logAttempt(ctx, cfg.logger, req.path, attempt, res, err, time.Since(start))
	}
	return res, err
}

func logAttempt(ctx context.Context, l *slog.Logger, path string, attempt int, res *http.Response, err error, d time.Duration) {
	attrs := []slog.Attr{
		slog.String("method", http.MethodPost),
		slog.String("path", path),
		slog.Int("attempt", attempt),
		slog.Duration("duration", d),
	}
	level := slog.LevelDebug
	if err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("error", err.Error()))
	} else {
		attrs = append(attrs, slog.Int("status", res.StatusCode))
		if res.StatusCode >= 300 {
			level = slog.LevelWarn
		}
	}
	l.LogAttrs(ctx, level, "laburen request", attrs...)
}

// hiddenBody is a response body held in funcs. A printer that walks a value holding it (a
// Stream) sees addresses only, never the connection behind it, whose buffers keep the bytes of
// the request and its Authorization header.
type hiddenBody struct {
	read  func([]byte) (int, error)
	close func() error
}

func hideBody(b io.ReadCloser) io.ReadCloser { return hiddenBody{read: b.Read, close: b.Close} }

func (b hiddenBody) Read(p []byte) (int, error) { return b.read(p) }
func (b hiddenBody) Close() error               { return b.close() }

// readAPIError reads the start of an error response's body, closes it, and decodes the error.
// Each wait for the body's bytes is bounded as in readBody. It reads the length of the key past
// the cap, so that a key the server echoed across the cap is replaced whole.
func readAPIError(res *http.Response, cfg *config) *APIError {
	body, _ := readBody(res, maxErrorBody-1+len(cfg.key()), cfg.streamIdleTimeout)
	res.Body.Close()
	return newAPIError(res.StatusCode, res.Header, body, cfg.redact)
}

// redacted stands for the API key wherever a server echoed it.
const redacted = "[redacted]"

// escapedKey replaces a whole text in which JSON escapes spell the API key.
const escapedKey = "[redacted: the text spelled the API key in JSON escapes]"

// key is the configured API key; empty without one.
func (c *config) key() string { return strings.TrimPrefix(c.auth.value(), "Bearer ") }

// redact is redactKey with the configured key: every text from the server that an error, or a
// header an error holds, is about to show goes through it.
func (c *config) redact(s string, n int) string { return redactKey(c.key(), s, n) }

// redactKey hides key in s, then cuts s as shorten does to n bytes (n < 0: no cut); without a
// key it is shorten. Each copy of the key becomes [redacted]; a start of the key that ends the
// text (where a cut, the server's or this one, went through a copy) is dropped when it is 8
// bytes long or more, or half a shorter key; and a text in which JSON escapes spell the key
// ("sk\u002d...") is replaced whole by a note.
func redactKey(key, s string, n int) string {
	if key == "" {
		if n < 0 {
			return s
		}
		return shorten(s, n)
	}
	s = strings.ReplaceAll(s, key, redacted)
	cut := n >= 0 && len(s) > n
	if cut {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	s = s[:len(s)-keyStartAtEnd(s, key)]
	if strings.IndexByte(s, '\\') >= 0 {
		if d := unescapeJSON(s); strings.Contains(d, key) || keyStartAtEnd(d, key) > 0 {
			return escapedKey
		}
	}
	if cut {
		s += "..."
	}
	return s
}

// keyStartAtEnd returns the length of the longest start of key, shorter than key and of at least
// 8 bytes (or half a shorter key), that s ends with; 0 if none.
func keyStartAtEnd(s, key string) int {
	least := min(8, max(len(key)/2, 1))
	for i := max(len(s)-len(key)+1, 0); i <= len(s)-least; i++ {
		if strings.HasPrefix(key, s[i:]) {
			return len(s) - i
		}
	}
	return 0
}

// unescapeJSON replaces the JSON string escapes in s (\uXXXX, \n, \/, ...) by what they stand
// for, wherever they are; a backslash that starts no escape is kept.
func unescapeJSON(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		if c := strings.IndexByte(`"\/bfnrt`, s[i+1]); c >= 0 {
			b.WriteByte("\"\\/\b\f\n\r\t"[c])
			i++
			continue
		}
		if s[i+1] == 'u' && i+6 <= len(s) {
			if r, err := strconv.ParseUint(s[i+2:i+6], 16, 16); err == nil {
				if utf16.IsSurrogate(rune(r)) && i+12 <= len(s) && s[i+6:i+8] == `\u` {
					if r2, err := strconv.ParseUint(s[i+8:i+12], 16, 16); err == nil {
						if p := utf16.DecodeRune(rune(r), rune(r2)); p != utf8.RuneError {
							b.WriteRune(p)
							i += 11
							continue
						}
					}
				}
				b.WriteRune(rune(r))
				i += 5
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// redactHeader returns h with the API key hidden by redact in every value: h itself when no
// value holds it, else a copy.
func redactHeader(h http.Header, redact func(string, int) string) http.Header {
	var out http.Header
	for k, vs := range h {
		for i, v := range vs {
			if r := redact(v, -1); r != v {
				if out == nil {
					out = h.Clone()
				}
				out[k][i] = r
			}
		}
	}
	if out == nil {
		return h
	}
	return out
}

// retryWait decides whether a failed attempt is retried and after how long. A transport error
// is retried only when the request certainly never reached the server; of the responses, only
// 429 and 503 are: a proxy's 502 or 504 may come after the server took the message.
func retryWait(cfg *config, attempt int, err error, apiErr *APIError) (time.Duration, bool) {
	switch {
	case apiErr == nil && !neverSent(err):
		return 0, false
	case apiErr == nil:
	case apiErr.StatusCode == http.StatusTooManyRequests, apiErr.StatusCode == http.StatusServiceUnavailable:
		if apiErr.RetryAfter > maxRetryAfter {
			return 0, false // the server asks for more than we will wait: report it now
		}
		if apiErr.RetryAfter > 0 {
			return apiErr.RetryAfter, true
		}
	default:
		return 0, false
	}
	return backoff(cfg.retryDelay, attempt), true
}

// backoff is the jittered exponential wait before retry number attempt (from 1): base, 2*base,
// 4*base... up to maxBackoff, each less up to a quarter at random.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	if d <= 0 {
		return 0
	}
	return d - rand.N(d/4+1)
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 || math.IsNaN(secs) {
			return 0, false
		}
		// Clamp absurd values instead of ignoring them: a server asking for a very long wait
		// must not be retried sooner.
		return time.Duration(min(secs, 1e9) * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// sleep waits for d, or returns the context's error as soon as it ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// call sends req and decodes its JSON response into out.
func (c *Client) call(ctx context.Context, cfg *config, req request, out rawDecoder) error {
	if cfg.observer != nil && req.obs == nil { // observe: the call starts and ends around it
		return c.observedCall(ctx, cfg, req, out)
	}
	res, err := c.send(ctx, cfg, req)
	if err != nil {
		return err
	}
	return decodeResponse(res, cfg, out)
}

// decodeResponse is the one place that reads a JSON response: it reads and closes the body,
// and decodes it into out, which keeps the body as its raw JSON.
func decodeResponse(res *http.Response, cfg *config, out rawDecoder) error {
	defer res.Body.Close()
	body, err := readBody(res, cfg.maxEventSize, cfg.streamIdleTimeout)
	if err != nil {
		return fmt.Errorf("read response (HTTP %d): %w", res.StatusCode, err)
	}
	if len(body) > cfg.maxEventSize {
		return fmt.Errorf("response body exceeds %d bytes (raise WithMaxEventSize)", cfg.maxEventSize)
	}
	if err := decodeOwnedJSON(body, out); err != nil {
		return fmt.Errorf("decode response (HTTP %d, Content-Type %q): %w; body starts %q",
			res.StatusCode, res.Header.Get("Content-Type"), err, cfg.redact(string(body), 200))
	}
	return nil
}

// readBody reads a response body up to limit+1 bytes: in one allocation when its length is
// announced, else as io.ReadAll does. It reads to EOF, so that the connection returns to the
// pool. When idle is positive, less than a KiB (or the end) in idle closes the body and fails
// the read: a body that stalls, or trickles.
func readBody(res *http.Response, limit int, idle time.Duration) ([]byte, error) {
	var r io.Reader = res.Body
	var stalled atomic.Bool
	if idle > 0 {
		t := time.AfterFunc(idle, func() { stalled.Store(true); res.Body.Close() })
		defer t.Stop()
		r = &progressReader{r: r, t: t, d: idle}
	}
	r = io.LimitReader(r, int64(limit)+1)
	var body []byte
	var err error
	if n := res.ContentLength; n > 0 && n <= int64(limit) {
		body = make([]byte, 0, n+1) // room to see EOF without growing
		for err == nil {
			var m int
			m, err = r.Read(body[len(body):cap(body)])
			body = body[:len(body)+m]
			if len(body) == cap(body) && err == nil {
				body = append(body, 0)[:len(body)] // longer than announced
			}
		}
		if err == io.EOF {
			err = nil
		}
	} else {
		body, err = io.ReadAll(r)
	}
	if err != nil && stalled.Load() {
		return body, fmt.Errorf("less than 1 KiB of the body arrived in %v (WithStreamIdleTimeout): %w", idle, context.DeadlineExceeded)
	}
	return body, err
}

// progressReader restarts the timer t, to run d more, each time a KiB has arrived.
type progressReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
	n int // bytes since the last restart
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if p.n += n; p.n >= 1<<10 {
		p.n = 0
		p.t.Reset(p.d)
	}
	return n, err
}

// rawDecoder is a response type that keeps its raw JSON. decodeOwned decodes the JSON object
// b, which the caller hands over: it is kept as the raw JSON without a copy, and scanned once.
type rawDecoder interface {
	decodeOwned(b []byte) error
}

// decodeOwnedJSON decodes body, which must be one JSON object, into out, which keeps it.
func decodeOwnedJSON(body []byte, out rawDecoder) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("not a JSON object")
	}
	return out.decodeOwned(trimmed)
}

// opError prefixes err with the package name and the operation.
func opError(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("laburen: %s: %w", op, err)
}
