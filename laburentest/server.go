package laburentest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/laburen/laburen-go"
)

// DefaultAgentID is the agent every new Server knows. It is a CUID, so it can be used in a
// WhatsApp channelExternalId.
const DefaultAgentID = "cfakeagent000000000000001"

// DefaultOrganizationID is an organization ID to build routing IDs with in tests, such as a
// WhatsApp channelExternalId. The server does not check it.
const DefaultOrganizationID = "cfakeorganization00000001"

// DefaultAPIKey is the API key a new Server accepts, unless WithAPIKeys sets others.
const DefaultAPIKey = "laburentest-api-key"

// Server is a fake Laburen API server. Make one with NewServer and Close it when done.
type Server struct {
	// URL is the base URL of the API, such as "http://127.0.0.1:43615/api": pass it to
	// laburen.WithBaseURL.
	URL string

	ts            *httptest.Server
	responder     Responder
	webhookClient *http.Client

	// bgCtx ends when the server closes; it bounds webhook deliveries, stalls and delays.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	closing  sync.Once

	mu            sync.Mutex
	keys          []string
	agents        map[string]*agentConfig
	plain         bool
	sseErrors     bool            // WithSSEErrorBodies
	redelivery    []time.Duration // WithWebhookRedelivery
	eventDelay    time.Duration
	faults        []*fault
	conversations map[string]*Conversation
	convOrder     []string
	contacts      []*Contact
	requests      []*Request
	deliveries    []WebhookDelivery
	delivered     chan struct{} // closed and replaced whenever a delivery completes
	duplicates    int           // deliveries still to send twice
}

// Option configures a Server in NewServer.
type Option func(*Server)

// WithResponder makes r answer every query instead of DefaultResponder.
func WithResponder(r Responder) Option {
	return func(s *Server) {
		if r != nil {
			s.responder = r
		}
	}
}

// WithAPIKeys sets the API keys the server accepts, replacing DefaultAPIKey. Server.Client
// uses the first one. With no keys at all, only Public agents can be queried.
func WithAPIKeys(keys ...string) Option {
	return func(s *Server) { s.keys = slices.Clone(keys) }
}

// WithPlainStreamData makes streams carry their payloads as plain text, as the API's
// documentation shows them, instead of percent-encoded as the upstream server sends them. An
// answer chunk that contains line breaks is then sent as several data lines; since a chunk
// never starts with a line break (Chunks), both a WHATWG parser and the documentation's
// @microsoft/fetch-event-source client rebuild the answer exactly, unless the answer itself
// starts with one. Plain SSE cannot carry a CR: it becomes a line end (LF). The
// percent-encoded rendering carries every character.
func WithPlainStreamData() Option {
	return func(s *Server) { s.plain = true }
}

// WithSSEErrorBodies makes the server answer a streaming request that fails before its stream
// starts (an unknown agent, a missing or wrong key, a bad request, a Responder's error,
// UsageLimitNext, RateLimitNext) with the body "data: [ERROR]<CODE>" and Content-Type
// text/plain, as the upstream server may, instead of JSON {"error": "<CODE>"}. The status
// stays the same. Requests that do not stream still get JSON.
func WithSSEErrorBodies() Option {
	return func(s *Server) { s.sseErrors = true }
}

// WithWebhookRedelivery makes the server deliver a webhook again when the receiver answers a
// non-2xx status or does not answer (a transport error, or the webhook client's timeout: see
// WithWebhookHTTPClient): after the first failed attempt it waits delays[0], after the second
// delays[1], and so on, for at most 1+len(delays) attempts. Webhooks and WaitWebhooks report
// every attempt. Without it, a failed delivery is not retried.
func WithWebhookRedelivery(delays ...time.Duration) Option {
	return func(s *Server) { s.redelivery = slices.Clone(delays) }
}

// WithEventDelay makes the server wait d before writing each stream event. SetEventDelay
// changes it later.
func WithEventDelay(d time.Duration) Option {
	return func(s *Server) { s.eventDelay = d }
}

// WithWebhookHTTPClient sets the client that delivers webhooks (by default one with a 10
// second timeout). Use it to reach a receiver on an httptest.NewTLSServer, with that server's
// Client.
func WithWebhookHTTPClient(hc *http.Client) Option {
	return func(s *Server) {
		if hc != nil {
			s.webhookClient = hc
		}
	}
}

// NewServer starts a fake Laburen server on a local port. It knows DefaultAgentID and accepts
// DefaultAPIKey; options change that and the rest of its behaviour.
func NewServer(opts ...Option) *Server {
	s := &Server{
		responder:     DefaultResponder,
		webhookClient: &http.Client{Timeout: 10 * time.Second},
		keys:          []string{DefaultAPIKey},
		agents:        map[string]*agentConfig{DefaultAgentID: {}},
		conversations: map[string]*Conversation{},
		delivered:     make(chan struct{}),
	}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	for _, opt := range opts {
		opt(s)
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.ts.URL + "/api"
	return s
}

// New is NewServer for a test: it closes the server when t and its subtests end.
func New(t testing.TB, opts ...Option) *Server {
	s := NewServer(opts...)
	t.Cleanup(s.Close)
	return s
}

// SetResponder makes r answer the queries that arrive from now on. Unlike WithResponder, it
// can be given a function that uses the server itself, such as its Conversation history.
func (s *Server) SetResponder(r Responder) {
	if r == nil {
		r = DefaultResponder
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.responder = r
}

// currentResponder returns the responder set last.
func (s *Server) currentResponder() Responder {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.responder
}

// Close shuts the server down. It ends stalled and delayed streams, cancels webhook deliveries
// still in flight (use WaitWebhooks first to be sure they arrived), and waits for all of them
// to finish. Close may be called more than once.
func (s *Server) Close() {
	s.closing.Do(func() {
		s.mu.Lock()
		s.bgCancel() // under s.mu: goDeliver starts no delivery after this; ends requests' contexts
		s.mu.Unlock()
		s.ts.CloseClientConnections() // a handler blocked writing to a client that stopped reading
		s.ts.Close()
		s.bg.Wait()
	})
}

// Client returns a laburen.Client pointed at the server, with the server's first API key,
// quick retries (WithMaxRetries(2), WithRetryDelay(time.Millisecond)) so that fault tests stay
// fast, and the server's HTTP client. opts are applied after those and may override them. It
// panics if an option is invalid, as a test's setup error.
func (s *Server) Client(opts ...laburen.Option) *laburen.Client {
	key := ""
	s.mu.Lock()
	if len(s.keys) > 0 {
		key = s.keys[0]
	}
	s.mu.Unlock()
	base := []laburen.Option{
		laburen.WithBaseURL(s.URL),
		laburen.WithAPIKey(key),
		laburen.WithMaxRetries(2),
		laburen.WithRetryDelay(time.Millisecond),
		laburen.WithHTTPClient(s.ts.Client()),
	}
	c, err := laburen.NewClient(append(base, opts...)...)
	if err != nil {
		panic(fmt.Sprintf("laburentest: Server.Client: %v", err))
	}
	return c
}

// Handler returns the handler that serves the fake API, to serve it on another listener as
// well, such as a chosen address. Its paths are those of URL ("/api/agents/{id}/query"); the
// requests it serves share the server's state with those made to URL, and Close still ends
// their streams and webhook deliveries.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// agentConfig is what the server knows of an agent.
type agentConfig struct {
	conversational bool
	public         bool
}

// AgentOption configures an agent in AddAgent.
type AgentOption func(*agentConfig)

// Conversational turns conversational mode on for the agent: a query with a webhookUrl is
// then queued and answered by webhook, and a query on the api channel without one is refused
// with a 400. An agent without conversational mode answers every query at once and posts no
// webhook; a webhookUrl it is given must still be an absolute http or https URL.
func Conversational() AgentOption {
	return func(a *agentConfig) { a.conversational = true }
}

// Public makes the agent answer queries without an API key (any key, right or wrong, is then
// ignored, as for a public agent on the real API). A draft message still needs a valid key.
func Public() AgentOption {
	return func(a *agentConfig) { a.public = true }
}

// AddAgent adds an agent, or replaces the settings of the agent with that ID (such as
// DefaultAgentID). The ID may be any non-empty string, like an agent's handle.
func (s *Server) AddAgent(id string, opts ...AgentOption) {
	a := &agentConfig{}
	for _, opt := range opts {
		opt(a)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agents[id] = a
}

// SetEventDelay sets the wait before each stream event, for the streams that start after it.
func (s *Server) SetEventDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eventDelay = d
}

// Request is a request the server received, as recorded by Requests.
type Request struct {
	// Method is the HTTP method.
	Method string
	// Path is the decoded URL path, such as "/api/agents/x/query".
	Path string
	// RequestURI is the target exactly as sent, with its escaping and query.
	RequestURI string
	// AgentID is the agent named in the path (decoded), empty when the path names none.
	AgentID string
	// Header holds the request's headers.
	Header http.Header
	// Body is the request's body.
	Body []byte
	// StatusCode is the status the server answered with, 0 while it has not answered yet.
	StatusCode int
}

func (r *Request) clone() Request {
	c := *r
	c.Header = r.Header.Clone()
	c.Body = slices.Clone(r.Body)
	return c
}

// Requests returns every request the server received, in order of arrival.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = r.clone()
	}
	return out
}

// newID returns a CUID-like ID: "c" and 24 lowercase letters and digits.
func newID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [24]byte
	_, _ = rand.Read(b[:])
	var sb strings.Builder
	sb.WriteByte('c')
	for _, x := range b {
		sb.WriteByte(alphabet[int(x)%len(alphabet)])
	}
	return sb.String()
}
