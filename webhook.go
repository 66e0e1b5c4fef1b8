package laburen

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-querystring/query"

	"github.com/laburen/laburen-go/internal/httpurl"
)

// Conversational mode: an agent that has it on answers a query later, by a POST to the
// query's webhookUrl. QueryAsync sends such a query; NewWebhookHandler (or ParseWebhook)
// receives the answer; SignWebhookURL makes the URL that only Laburen can have been given.

// Webhook names and limits.
// Webhook names and limits.
const (
	WebhookEventAgentResponse = "agent.response"  // the only event the API documents
	WebhookEventHeader        = "X-Laburen-Event" // the header that names a delivery's event
	WebhookSignatureParam     = "laburen_sig"     // SignWebhookURL's signature parameter; reserved
	WebhookExpiryParam        = "laburen_exp"     // ExpiresAt's parameter, in Unix seconds; reserved
	DefaultWebhookMaxBodySize = 1 << 20           // unless WithWebhookMaxBodySize
	MinWebhookSecretSize      = 16                // bytes; use 32 random bytes
)

// QueryAsync sends a query whose answer comes by webhook to req.WebhookURL (required): the
// reply is Queued, or is the answer when the agent answers at once.
func (c *Client) QueryAsync(ctx context.Context, agentID string, req QueryRequest, opts ...Option) (*QueryResponse, error) {
	op := "async query agent " + strconv.Quote(agentID)
	if strings.TrimSpace(req.WebhookURL) == "" {
		return nil, opError(op, invalid("webhookUrl", "is empty; QueryAsync needs the URL the answer is POSTed to (see SignWebhookURL)"))
	}
	return c.query(ctx, op, agentID, &req, opts)
}

// Errors of ParseWebhook, matched with errors.Is; WebhookErrorStatus gives their statuses.
var (
	ErrWebhookMethod       error = &webhookSentinel{"method not allowed"} // not a POST (405)
	ErrWebhookUnsigned     error = &webhookSentinel{"URL not signed"}     // with a secret: no signature (401)
	ErrWebhookBadSignature error = &webhookSentinel{"bad signature"}      // altered, or another secret (401)
	ErrWebhookExpired      error = &webhookSentinel{"URL expired"}        // past ExpiresAt and the clock skew (401)
	ErrWebhookTooLarge     error = &webhookSentinel{"body too large"}     // over the size cap (413)
	ErrWebhookMalformed    error = &webhookSentinel{"malformed body"}     // empty, not JSON, or mistyped (400)
)

// webhookSentinel is an ErrWebhook* error: what went wrong, in a few words.
type webhookSentinel struct{ what string }

func (e *webhookSentinel) Error() string { return "laburen: webhook: " + e.what }

// webhookError is an error of ParseWebhook: it matches its sentinel and wraps its cause.
type webhookError struct {
	text  string
	class error
	cause error
}

func (e *webhookError) Error() string { return e.text }

func (e *webhookError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.class}
	}
	return []error{e.class, e.cause}
}

// webhookErr builds the error of class (an ErrWebhook*) once, with its text.
func webhookErr(class error, cause error, format string, args ...any) error {
	text := "laburen: parse webhook: " + class.(*webhookSentinel).what + ": " + fmt.Sprintf(format, args...)
	if cause != nil {
		text += ": " + cause.Error()
	}
	return &webhookError{text: text, class: class, cause: cause}
}

// WebhookErrorStatus returns the status NewWebhookHandler answers for a ParseWebhook error (500
// for other errors, 200 for nil).
func WebhookErrorStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrWebhookMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ErrWebhookUnsigned), errors.Is(err, ErrWebhookBadSignature), errors.Is(err, ErrWebhookExpired):
		return http.StatusUnauthorized
	case errors.Is(err, ErrWebhookTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrWebhookMalformed):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// WebhookEvent is one webhook delivery from Laburen; the fields after Name are agent.response's.
type WebhookEvent struct {
	Name           string           // X-Laburen-Event, or agent.response for a body of its shape
	ConversationID string           // the body's conversationId, else the agentResponse's
	Messages       []WebhookMessage // the answer as chat messages, in order
	AgentResponse  *QueryResponse   // the full answer; nil when the body has none
	Params         url.Values       // the signed URL's parameters, verified; nil without a secret
	Header         http.Header
	Body           json.RawMessage // exactly as received; valid JSON

	path string // the signed URL's path, verified; empty without a secret
}

// WebhookMessage is one chat message of an agent's answer.
type WebhookMessage struct {
	Text string          `json:"text"`
	Raw  json.RawMessage `json:"-"` // the item as received
}

// UnmarshalJSON decodes the message and keeps the raw item in Raw.
func (m *WebhookMessage) UnmarshalJSON(b []byte) error {
	return m.decodeOwned(slices.Clone(b))
}

// decodeOwned is UnmarshalJSON for a part of a body the caller owns: kept without a copy. Keys
// match exactly, as in QueryResponse; a text that is not a string is an error.
func (m *WebhookMessage) decodeOwned(b []byte) error {
	if string(b) != "null" {
		err := checkedObject(b, func(key, v []byte) error {
			if string(key) == "text" {
				return stringValue(v, &m.Text)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	m.Raw = b[:len(b):len(b)]
	return nil
}

// DeliveryKey identifies the delivery for deduplication: a SHA-256 of the signed URL's verified
// path and Params, the event and the answer's messageId (or the body).
func (e *WebhookEvent) DeliveryKey() string {
	h := sha256.New()
	part := func(kind string, b []byte) {
		var n [binary.MaxVarintLen64]byte
		io.WriteString(h, kind)
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
		h.Write(b)
	}
	if e.path != "" { // an unsigned delivery's key is the same as before paths counted
		part("path", []byte(e.path))
	}
	part("params", []byte(e.Params.Encode()))
	part("event", []byte(e.Name))
	if e.AgentResponse != nil && e.AgentResponse.MessageID != "" {
		part("messageId", []byte(e.AgentResponse.MessageID))
	} else {
		part("body", e.Body)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// String describes the event without its body, header or parameters.
func (e *WebhookEvent) String() string {
	if e == nil {
		return "laburen.WebhookEvent(nil)"
	}
	return fmt.Sprintf("laburen.WebhookEvent{name: %q, conversationId: %q, messages: %d, body: %d bytes}",
		e.Name, e.ConversationID, len(e.Messages), len(e.Body))
}

// GoString is String, for %#v.
func (e *WebhookEvent) GoString() string { return e.String() }

// webhookConfig is what the webhook options set.
type webhookConfig struct {
	secrets   [][]byte
	maxBody   int64
	dedup     WebhookDeduplicator
	logger    *slog.Logger
	loggerSet bool
	skew      time.Duration
}

// WebhookOption configures ParseWebhook and NewWebhookHandler.
type WebhookOption func(*webhookConfig) error

// WithWebhookSecret accepts URLs signed with one of secrets (two to rotate).
func WithWebhookSecret(secrets ...[]byte) WebhookOption {
	copies := make([][]byte, len(secrets))
	for i, s := range secrets {
		copies[i] = slices.Clone(s)
	}
	return func(c *webhookConfig) error {
		if len(copies) == 0 {
			return errors.New("WithWebhookSecret: no secret given")
		}
		for i, s := range copies {
			if err := checkSecret(s); err != nil {
				return fmt.Errorf("WithWebhookSecret: secret %d %w", i, err)
			}
		}
		c.secrets = append(c.secrets, copies...)
		return nil
	}
}

func checkSecret(s []byte) error {
	if len(s) < MinWebhookSecretSize {
		return fmt.Errorf("is shorter than %d bytes", MinWebhookSecretSize)
	}
	return nil
}

// WithWebhookMaxBodySize caps a body (default DefaultWebhookMaxBodySize).
func WithWebhookMaxBodySize(n int64) WebhookOption {
	return func(c *webhookConfig) error {
		if n < 1 {
			return fmt.Errorf("WithWebhookMaxBodySize: %d is not positive", n)
		}
		c.maxBody = n
		return nil
	}
}

// WithWebhookDeduplicator has NewWebhookHandler call fn once per delivery.
func WithWebhookDeduplicator(d WebhookDeduplicator) WebhookOption {
	return func(c *webhookConfig) error {
		c.dedup = d
		return nil
	}
}

// WithWebhookLogger sets the handler's logger (default slog.Default()).
func WithWebhookLogger(l *slog.Logger) WebhookOption {
	return func(c *webhookConfig) error {
		c.logger = l
		c.loggerSet = true
		return nil
	}
}

// WithWebhookClockSkew accepts a signed URL for d past its expiry (default 0).
func WithWebhookClockSkew(d time.Duration) WebhookOption {
	return func(c *webhookConfig) error {
		if d < 0 {
			return fmt.Errorf("WithWebhookClockSkew: %v is negative", d)
		}
		c.skew = d
		return nil
	}
}

func newWebhookConfig(opts []WebhookOption) (*webhookConfig, error) {
	cfg := &webhookConfig{maxBody: DefaultWebhookMaxBodySize}
	for _, opt := range opts {
		if err := opt(cfg); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// ParseWebhook reads and checks one delivery as NewWebhookHandler does; its errors match the
// ErrWebhook* errors. The caller answers the request.
func ParseWebhook(r *http.Request, opts ...WebhookOption) (*WebhookEvent, error) {
	cfg, err := newWebhookConfig(opts)
	if err != nil {
		return nil, opError("parse webhook", err)
	}
	return parseWebhook(r, cfg)
}

func parseWebhook(r *http.Request, cfg *webhookConfig) (*WebhookEvent, error) {
	if r.Method != http.MethodPost {
		return nil, webhookErr(ErrWebhookMethod, nil, "%s (Laburen sends POST)", r.Method)
	}
	var params url.Values
	var path string
	if len(cfg.secrets) > 0 {
		p, signedPath, err := verifyWebhookURL(r, cfg.secrets, cfg.skew)
		if err != nil {
			return nil, err
		}
		params, path = p, signedPath
	}
	body, err := readWebhookBody(r, cfg.maxBody)
	if err != nil {
		return nil, err
	}
	ev := &WebhookEvent{
		Name:   strings.TrimSpace(r.Header.Get(WebhookEventHeader)),
		Params: params,
		Header: r.Header,
		Body:   body,
		path:   path,
	}
	if err := ev.decode(); err != nil {
		return nil, err
	}
	return ev, nil
}

// readWebhookBody reads the whole body, refusing one past max bytes.
func readWebhookBody(r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength > max {
		return nil, webhookErr(ErrWebhookTooLarge, nil, "body of %d bytes exceeds %d", r.ContentLength, max)
	}
	if r.Body == nil {
		return nil, webhookErr(ErrWebhookMalformed, nil, "body is empty")
	}
	limit := max
	if limit < math.MaxInt64 {
		limit++
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, webhookErr(ErrWebhookTooLarge, err, "read body")
		}
		return nil, webhookErr(ErrWebhookMalformed, err, "read body")
	}
	if int64(len(body)) > max {
		return nil, webhookErr(ErrWebhookTooLarge, nil, "body exceeds %d bytes", max)
	}
	return body, nil
}

// decode checks the body and fills the fields of a known event. The body is walked once by
// exactObject, keys matched exactly; the messages and the answer are decoded from their spans,
// which their Raw fields keep.
func (e *WebhookEvent) decode() error {
	// JSON's white space only: bytes.TrimSpace would also drop a form feed or a no-break
	// space, and accept a body that no JSON decoder reads.
	body := bytes.Trim(e.Body, " \t\r\n")
	if len(body) == 0 {
		return webhookErr(ErrWebhookMalformed, nil, "body is empty")
	}
	known := strings.EqualFold(e.Name, WebhookEventAgentResponse)
	if !known && e.Name != "" { // an event the SDK does not know: Name and Body are all it has
		if !json.Valid(body) {
			return webhookErr(ErrWebhookMalformed, nil, "body is not JSON")
		}
		return nil
	}
	// A part present, even null, is a non-nil span, which tells the shape.
	var conversationID, messages, answer []byte
	err := exactObject(body, func(key, v []byte) error {
		switch string(key) {
		case "conversationId":
			conversationID = v
		case "messages":
			messages = v
		case "agentResponse":
			answer = v[:len(v):len(v)]
		}
		return nil
	})
	switch {
	case err == errNotObject && known:
		return webhookErr(ErrWebhookMalformed, nil, "%s body is not a JSON object", WebhookEventAgentResponse)
	case err == errNotObject:
		return nil // no header and not an object: an unnamed event
	case err != nil:
		return webhookErr(ErrWebhookMalformed, nil, "body is not JSON")
	case !known && messages == nil && answer == nil:
		return nil // no header and not the agent.response shape: an unnamed event
	}
	e.Name = WebhookEventAgentResponse
	if err := e.decodeParts(conversationID, messages, answer); err != nil {
		return webhookErr(ErrWebhookMalformed, err, "decode %s", WebhookEventAgentResponse)
	}
	if e.ConversationID == "" && e.AgentResponse != nil {
		e.ConversationID = e.AgentResponse.ConversationID
	}
	return nil
}

// decodeParts decodes the conversation, the messages and the answer into e.
func (e *WebhookEvent) decodeParts(conversationID, messages, answer []byte) error {
	if conversationID != nil {
		if err := stringValue(conversationID, &e.ConversationID); err != nil {
			return err
		}
	}
	if messages != nil && string(messages) != "null" {
		if err := decodeItems(messages, &e.Messages, (*WebhookMessage).decodeOwned); err != nil {
			return err
		}
	}
	if answer != nil && string(answer) != "null" {
		e.AgentResponse = new(QueryResponse)
		return e.AgentResponse.decodeChecked(answer)
	}
	return nil
}

// SignWebhookURL adds params (url.Values, map[string]string or a struct with url tags) and a
// signature under secret to base's query. Keep the URL out of logs: it is a credential.
func SignWebhookURL(base string, params any, secret []byte, opts ...SignOption) (string, error) {
	const op = "sign webhook URL"
	if err := checkSecret(secret); err != nil {
		return "", opError(op, invalid("secret", "%v", err))
	}
	var sc signConfig
	for _, opt := range opts {
		opt(&sc)
	}
	if sc.expiresSet && sc.expires.Unix() <= 0 {
		return "", opError(op, invalid("ExpiresAt", "%v is not after 1970", sc.expires))
	}
	u, err := httpurl.Parse(base)
	if err != nil {
		return "", opError(op, invalid("base", "%v", err))
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return "", opError(op, invalid("base", "%q has a fragment, which is never sent to the receiver", u.Redacted()))
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		if seg, err := url.PathUnescape(seg); err == nil && (seg == "." || seg == "..") {
			// A sender that normalizes the URL (as WHATWG URL parsers do) would post to
			// another path than the one signed, and every delivery would be refused.
			return "", opError(op, invalid("base", "%q has a dot segment (/./ or /../), which senders resolve before posting; write the path without it", u.Redacted()))
		}
	}
	values, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", opError(op, invalid("base", "query: %v", err))
	}
	for _, name := range []string{WebhookSignatureParam, WebhookExpiryParam} {
		if values.Has(name) {
			return "", opError(op, invalid("base", "already has a %s parameter", name))
		}
	}
	extra, err := encodeWebhookParams(params)
	if err != nil {
		return "", opError(op, err)
	}
	for k, vs := range extra {
		switch {
		case k == WebhookSignatureParam, k == WebhookExpiryParam:
			return "", opError(op, invalid("params", "%q is a parameter name of the SDK's", k))
		case values.Has(k):
			return "", opError(op, invalid("params", "%q is also a parameter of the base URL", k))
		}
		values[k] = vs
	}
	if sc.expiresSet {
		values.Set(WebhookExpiryParam, strconv.FormatInt(sc.expires.Unix(), 10))
	}
	if u.Path == "" {
		u.Path, u.RawPath = "/", ""
	}
	canonical := values.Encode() // sorted by key, every part escaped
	sig := base64.RawURLEncoding.EncodeToString(webhookMAC(secret, canonicalPath(u.EscapedPath()), canonical))
	if canonical != "" {
		canonical += "&"
	}
	u.RawQuery = canonical + WebhookSignatureParam + "=" + sig
	u.ForceQuery = false
	if n := strings.Count(u.RawQuery, "&") + 1; n > maxWebhookParams {
		return "", opError(op, invalid("params", "the signed URL would have %d query parameters; a receiver parses at most %d", n, maxWebhookParams))
	}
	return u.String(), nil
}

// maxWebhookParams is the number of query parameters net/url parses (its default limit in
// current Go releases): a signed URL with more is refused by the receiver.
const maxWebhookParams = 10000

// SignOption configures SignWebhookURL.
type SignOption func(*signConfig)

type signConfig struct {
	expires    time.Time
	expiresSet bool
}

// ExpiresAt makes a signed URL expire at t; choose t past Laburen's longest redelivery.
func ExpiresAt(t time.Time) SignOption {
	return func(c *signConfig) { c.expires, c.expiresSet = t, true }
}

// encodeWebhookParams turns SignWebhookURL's params into URL values.
func encodeWebhookParams(params any) (url.Values, error) {
	switch p := params.(type) {
	case nil:
		return nil, nil
	case url.Values:
		return p, nil
	case map[string][]string:
		return p, nil
	case map[string]string:
		values := url.Values{}
		for k, v := range p {
			values.Set(k, v)
		}
		return values, nil
	}
	t := reflect.TypeOf(params)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, invalid("params", "is a %T: give nil, a url.Values, a map[string]string or a struct (or pointer to one) with `url` tags", params)
	}
	values, err := query.Values(params)
	if err != nil {
		return nil, invalid("params", "%v", err)
	}
	return values, nil
}

// webhookMAC is the signature of a webhook URL's canonical path and query under secret.
func webhookMAC(secret []byte, path, canonicalQuery string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("laburen-webhook-url-v1\n" + path + "\n" + canonicalQuery))
	return m.Sum(nil)
}

// canonicalPath re-escapes each segment of an escaped path the same way, so that equivalent
// escapings ("%7E" and "~") sign alike while an escaped slash stays distinct from a slash.
func canonicalPath(escaped string) string {
	if escaped == "" {
		return "/"
	}
	if strings.IndexFunc(escaped, func(c rune) bool { return !unreservedPath(c) }) < 0 {
		return escaped // nothing to re-escape
	}
	segments := strings.Split(escaped, "/")
	for i, s := range segments {
		if u, err := url.PathUnescape(s); err == nil {
			segments[i] = url.PathEscape(u)
		}
	}
	return strings.Join(segments, "/")
}

// unreservedPath reports whether c stands for itself in a canonical path.
func unreservedPath(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-._~/", c)
}

// requestTarget returns the escaped path and the raw query the sender asked for. It reads the
// request line (RequestURI), which middlewares such as http.StripPrefix leave alone, and falls
// back on r.URL for requests made in code.
func requestTarget(r *http.Request) (path, rawQuery string) {
	if r.RequestURI != "" {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			return u.EscapedPath(), u.RawQuery
		}
	}
	if r.URL == nil {
		return "/", ""
	}
	return r.URL.EscapedPath(), r.URL.RawQuery
}

// verifyWebhookURL checks the signature of the request's URL under any of secrets, then its
// expiry (with skew of tolerance), and returns the verified query parameters without the
// signature and the expiry, and the signed path.
func verifyWebhookURL(r *http.Request, secrets [][]byte, skew time.Duration) (url.Values, string, error) {
	path, rawQuery := requestTarget(r)
	values, perr := url.ParseQuery(rawQuery)
	sigs, signed := values[WebhookSignatureParam]
	switch {
	case !signed:
		return nil, "", webhookErr(ErrWebhookUnsigned, nil, "the URL has no %s parameter", WebhookSignatureParam)
	case perr != nil:
		return nil, "", webhookErr(ErrWebhookBadSignature, nil, "the URL's query does not parse")
	case len(sigs) != 1:
		return nil, "", webhookErr(ErrWebhookBadSignature, nil, "the URL has %d %s parameters", len(sigs), WebhookSignatureParam)
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(sigs[0])
	if err != nil || len(got) != sha256.Size {
		return nil, "", webhookErr(ErrWebhookBadSignature, nil, "the signature is not an encoded HMAC-SHA256")
	}
	delete(values, WebhookSignatureParam)
	canonical := values.Encode()
	path = canonicalPath(path)
	for _, secret := range secrets {
		if hmac.Equal(got, webhookMAC(secret, path, canonical)) {
			return values, path, checkWebhookExpiry(values, skew)
		}
	}
	return nil, "", webhookErr(ErrWebhookBadSignature, nil, "it does not match the URL's path and query under any configured secret")
}

// checkWebhookExpiry refuses verified values whose expiry passed more than skew ago, and
// removes the expiry from them.
func checkWebhookExpiry(values url.Values, skew time.Duration) error {
	exps, ok := values[WebhookExpiryParam]
	if !ok {
		return nil
	}
	delete(values, WebhookExpiryParam)
	if len(exps) != 1 {
		return webhookErr(ErrWebhookBadSignature, nil, "the URL has %d %s parameters", len(exps), WebhookExpiryParam)
	}
	sec, err := strconv.ParseInt(exps[0], 10, 64)
	if err != nil {
		return webhookErr(ErrWebhookBadSignature, nil, "the URL's %s is not a number of seconds", WebhookExpiryParam)
	}
	exp := time.Unix(sec, 0)
	if time.Now().After(exp.Add(skew)) {
		return webhookErr(ErrWebhookExpired, nil, "the URL expired at %s", exp.UTC().Format(time.RFC3339))
	}
	return nil
}

// DedupStatus is the answer of WebhookDeduplicator.Claim.
type DedupStatus int

// The answers of WebhookDeduplicator.Claim; the zero value is none of them.
const (
	DedupClaimed  DedupStatus = iota + 1 // new or lease ran out: handle it, then Done or Release
	DedupDone                            // handled already
	DedupInFlight                        // being handled right now
)

// String returns the status's name.
func (s DedupStatus) String() string {
	switch s {
	case DedupClaimed:
		return "claimed"
	case DedupDone:
		return "done"
	case DedupInFlight:
		return "in flight"
	}
	return "DedupStatus(" + strconv.Itoa(int(s)) + ")"
}

// ErrDedupClaimLost: Done or Release of a claim that is no longer the caller's.
var ErrDedupClaimLost = errors.New("laburen: webhook deduplicator: claim lost")

// DefaultDedupClaimTTL is a claim's lease unless a deduplicator sets another.
const DefaultDedupClaimTTL = time.Minute

// WebhookDeduplicator remembers handled deliveries by DeliveryKey, for WithWebhookDeduplicator.
// A claim is a lease with a token. Implementations must be safe for concurrent use.
type WebhookDeduplicator interface {
	// Claim claims key unless it is done or under a running lease; DedupClaimed comes with a
	// token unique to the claim.
	Claim(ctx context.Context, key string) (DedupStatus, string, error)
	Done(ctx context.Context, key, token string) error    // the delivery was handled
	Release(ctx context.Context, key, token string) error // it failed: a redelivery is handled
}

// DedupClaim is the claim on the delivery a handler's function is handling.
type DedupClaim struct {
	Key   string // WebhookEvent.DeliveryKey
	Token string // from Claim
}

type dedupClaimKey struct{}

// DedupClaimFromContext returns the claim on the delivery NewWebhookHandler is handling, for a
// store that marks it done in the function's own transaction.
func DedupClaimFromContext(ctx context.Context) (DedupClaim, bool) {
	c, ok := ctx.Value(dedupClaimKey{}).(DedupClaim)
	return c, ok
}

// DefaultDedupCapacity is NewMemoryDeduplicator's capacity when given none.
const DefaultDedupCapacity = 10000

// MemoryDeduplicator is a WebhookDeduplicator for one process: it remembers the last capacity
// handled keys and the claims in flight.
type MemoryDeduplicator struct {
	mu       sync.Mutex
	capacity int
	claimTTL time.Duration
	tokens   uint64
	claimed  map[string]memoryClaim
	done     map[string]struct{}
	order    []string // done keys, a ring once full: order[next] is the oldest
	next     int
}

// memoryClaim is a claim of MemoryDeduplicator: its token and the end of its lease.
type memoryClaim struct {
	token string
	until time.Time
}

var _ WebhookDeduplicator = (*MemoryDeduplicator)(nil)

// MemoryDedupOption configures NewMemoryDeduplicator.
type MemoryDedupOption func(*MemoryDeduplicator)

// WithDedupClaimTTL sets a MemoryDeduplicator's lease (DefaultDedupClaimTTL when d <= 0).
func WithDedupClaimTTL(d time.Duration) MemoryDedupOption {
	return func(m *MemoryDeduplicator) {
		if d > 0 {
			m.claimTTL = d
		}
	}
}

// NewMemoryDeduplicator remembers up to capacity handled keys (DefaultDedupCapacity if < 1).
func NewMemoryDeduplicator(capacity int, opts ...MemoryDedupOption) *MemoryDeduplicator {
	if capacity < 1 {
		capacity = DefaultDedupCapacity
	}
	d := &MemoryDeduplicator{
		capacity: capacity,
		claimTTL: DefaultDedupClaimTTL,
		claimed:  map[string]memoryClaim{},
		done:     map[string]struct{}{},
	}
	for _, opt := range opts {
		opt(d)
	}
	return d
}

// Claim claims key unless it is done or under a running lease; it never fails.
func (d *MemoryDeduplicator) Claim(_ context.Context, key string) (DedupStatus, string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.done[key]; ok {
		return DedupDone, "", nil
	}
	now := time.Now()
	if c, ok := d.claimed[key]; ok && now.Before(c.until) {
		return DedupInFlight, "", nil
	}
	d.tokens++
	token := strconv.FormatUint(d.tokens, 10)
	d.claimed[key] = memoryClaim{token: token, until: now.Add(d.claimTTL)}
	return DedupClaimed, token, nil
}

// take removes the claim on key when token holds it; the caller holds d.mu.
func (d *MemoryDeduplicator) take(key, token string) error {
	if c, ok := d.claimed[key]; !ok || c.token != token {
		return ErrDedupClaimLost
	}
	delete(d.claimed, key)
	return nil
}

// Done records key as handled; it fails only with ErrDedupClaimLost.
func (d *MemoryDeduplicator) Done(_ context.Context, key, token string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.take(key, token); err != nil {
		return err
	}
	d.done[key] = struct{}{}
	if len(d.order) < d.capacity {
		d.order = append(d.order, key)
		return nil
	}
	delete(d.done, d.order[d.next])
	d.order[d.next] = key
	d.next = (d.next + 1) % d.capacity
	return nil
}

// Release drops the claim on key. It fails only with ErrDedupClaimLost.
func (d *MemoryDeduplicator) Release(_ context.Context, key, token string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.take(key, token)
}

// NewWebhookHandler returns a handler that checks each delivery as ParseWebhook does and calls
// fn: 200 when fn returns nil, 500 when it fails or panics. It panics on a nil fn or bad option.
func NewWebhookHandler(fn func(context.Context, *WebhookEvent) error, opts ...WebhookOption) http.Handler {
	if fn == nil {
		panic("laburen: NewWebhookHandler: nil function")
	}
	cfg, err := newWebhookConfig(opts)
	if err != nil {
		panic("laburen: NewWebhookHandler: " + err.Error())
	}
	return &webhookHandler{fn: fn, cfg: cfg, readTimeout: webhookReadTimeout}
}

type webhookHandler struct {
	fn          func(context.Context, *WebhookEvent) error
	cfg         *webhookConfig
	readTimeout time.Duration // bounds the read of a delivery's body; tests shorten it
}

// webhookReadTimeout bounds the read of a delivery's body by the handler, whatever the server's
// own ReadTimeout: a sender that stalls mid-body does not hold the handler.
const webhookReadTimeout = 10 * time.Second

// errAbort marks a handler function that panicked with http.ErrAbortHandler, which the
// handler re-panics once the claim is released.
var errAbort = errors.New("handler aborted")

func (h *webhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// A writer without deadlines (a recorder, some middlewares) leaves the body unbounded here.
	rc := http.NewResponseController(w)
	deadlineSet := rc.SetReadDeadline(time.Now().Add(h.readTimeout)) == nil
	ev, err := parseWebhook(r, h.cfg)
	if deadlineSet && err == nil {
		// The body is read whole: a deadline passing later would end the request's context
		// while fn runs. After a refusal it stays, and bounds the server's discarding of the
		// rest of the body.
		_ = rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		status := WebhookErrorStatus(err)
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodPost)
		}
		h.log(ctx, slog.LevelWarn, "laburen webhook refused", r, nil, slog.Int("status", status), slog.String("error", err.Error()))
		http.Error(w, refusal(status, err), status)
		return
	}
	dedup := h.cfg.dedup
	var key, token string
	if dedup != nil {
		key = ev.DeliveryKey()
		var st DedupStatus
		st, token, err = dedup.Claim(ctx, key)
		if err == nil && st != DedupClaimed && st != DedupDone && st != DedupInFlight {
			err = fmt.Errorf("Claim returned %v", st)
		}
		switch {
		case err != nil:
			h.log(ctx, slog.LevelError, "laburen webhook deduplicator failed", r, ev, slog.String("error", err.Error()))
			http.Error(w, "deduplication failed", http.StatusInternalServerError)
			return
		case st == DedupDone:
			h.log(ctx, slog.LevelDebug, "laburen webhook duplicate skipped", r, ev)
			w.WriteHeader(http.StatusOK)
			return
		case st == DedupInFlight:
			h.log(ctx, slog.LevelDebug, "laburen webhook duplicate in flight", r, ev)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "this delivery is being handled; retry later", http.StatusServiceUnavailable)
			return
		}
		ctx = context.WithValue(ctx, dedupClaimKey{}, DedupClaim{Key: key, Token: token})
	}
	release := func() {
		if dedup == nil {
			return
		}
		// Recording the outcome must not fail because the sender hung up.
		if rerr := dedup.Release(context.WithoutCancel(ctx), key, token); rerr != nil {
			h.log(ctx, slog.LevelError, "laburen webhook deduplicator release failed", r, ev, slog.String("error", rerr.Error()))
		}
	}
	returned := false
	defer func() {
		if !returned { // fn called runtime.Goexit: its claim must not outlive it
			h.log(ctx, slog.LevelError, "laburen webhook function exited without returning", r, ev)
			release()
		}
	}()
	err = h.call(ctx, ev)
	returned = true
	if err != nil {
		release()
		if errors.Is(err, errAbort) {
			panic(http.ErrAbortHandler)
		}
		http.Error(w, "webhook handler failed", http.StatusInternalServerError)
		return
	}
	if dedup != nil {
		if err := dedup.Done(context.WithoutCancel(ctx), key, token); err != nil {
			// fn succeeded: acknowledge. A redelivery may be handled again.
			h.log(ctx, slog.LevelError, "laburen webhook deduplicator done failed", r, ev, slog.String("error", err.Error()))
		}
	}
	w.WriteHeader(http.StatusOK)
}

// call runs fn, turning a panic into an error and logging failures.
func (h *webhookHandler) call(ctx context.Context, ev *WebhookEvent) (err error) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if p == http.ErrAbortHandler {
			err = errAbort
			return
		}
		err = fmt.Errorf("panic: %v", p)
		if l := h.logger(); l != nil && l.Enabled(ctx, slog.LevelError) {
			h.log(ctx, slog.LevelError, "laburen webhook function panicked", nil, ev,
				slog.String("error", err.Error()), slog.String("stack", string(debug.Stack())))
		}
	}()
	if err := h.fn(ctx, ev); err != nil {
		h.log(ctx, slog.LevelError, "laburen webhook function failed", nil, ev, slog.String("error", err.Error()))
		return err
	}
	return nil
}

// log writes a record with the request's path (never its query, which holds the signature)
// and the event's name and conversation.
func (h *webhookHandler) log(ctx context.Context, level slog.Level, msg string, r *http.Request, ev *WebhookEvent, attrs ...slog.Attr) {
	l := h.logger()
	if l == nil || !l.Enabled(ctx, level) {
		return
	}
	if r != nil && r.URL != nil {
		attrs = append(attrs, slog.String("method", r.Method), slog.String("path", r.URL.Path))
	}
	if ev != nil {
		attrs = append(attrs, slog.String("event", ev.Name))
		if ev.ConversationID != "" {
			attrs = append(attrs, slog.String("conversation_id", ev.ConversationID))
		}
	}
	l.LogAttrs(ctx, level, msg, attrs...)
}

// logger is the handler's logger, nil when logging is off.
func (h *webhookHandler) logger() *slog.Logger {
	if !h.cfg.loggerSet {
		return slog.Default()
	}
	return h.cfg.logger
}

// refusal is the body of a refused delivery.
func refusal(status int, err error) string {
	if errors.Is(err, ErrWebhookExpired) {
		return "webhook URL has expired"
	}
	switch status {
	case http.StatusUnauthorized:
		return "webhook URL is unsigned or its signature does not match"
	case http.StatusBadRequest:
		return "webhook body is not the expected JSON"
	case http.StatusRequestEntityTooLarge:
		return "webhook body is too large"
	case http.StatusMethodNotAllowed:
		return "webhooks are POSTed"
	}
	return http.StatusText(status)
}
