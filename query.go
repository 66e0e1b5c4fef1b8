package laburen

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/laburen/laburen-go/internal/httpurl"
)

// Query sends a user's message to an agent and returns its answer. It is not retried once the
// server has the request. opts apply to this call only.
func (c *Client) Query(ctx context.Context, agentID string, req QueryRequest, opts ...Option) (*QueryResponse, error) {
	return c.query(ctx, "query agent "+strconv.Quote(agentID), agentID, &req, opts)
}

// query sends a query that is not streamed: Query and QueryAsync.
func (c *Client) query(ctx context.Context, op, agentID string, req *QueryRequest, opts []Option) (*QueryResponse, error) {
	cfg, r, err := c.queryRequest(agentID, req, false, opts)
	if err != nil {
		return nil, opError(op, err)
	}
	var res QueryResponse
	if err := c.call(ctx, cfg, r, &res); err != nil {
		return nil, opError(op, err)
	}
	return &res, nil
}

// queryRequest validates a query and encodes it for the request path.
func (c *Client) queryRequest(agentID string, req *QueryRequest, streaming bool, opts []Option) (*config, request, error) {
	return c.prepare(agentID, "query", req, streaming, opts)
}

// requestBody is the body of a call to an agent endpoint: QueryRequest or AgentQueryRequest.
type requestBody interface {
	validate() error
	// streaming returns the body with "streaming": true ahead of its fields.
	streaming() any
	extraFields() map[string]any
}

func (r *QueryRequest) streaming() any {
	return struct {
		Streaming bool `json:"streaming"`
		*QueryRequest
	}{true, r}
}

func (r *AgentQueryRequest) streaming() any {
	return struct {
		Streaming bool `json:"streaming"`
		*AgentQueryRequest
	}{true, r}
}

func (r *QueryRequest) extraFields() map[string]any      { return r.Extra }
func (r *AgentQueryRequest) extraFields() map[string]any { return r.Extra }

// prepare is the one place where a call to an agent endpoint is checked and encoded: the call's
// options, the agent ID, the body's own rules, then the JSON.
func (c *Client) prepare(agentID, endpoint string, body requestBody, streaming bool, opts []Option) (*config, request, error) {
	cfg, err := c.configFor(opts)
	if err != nil {
		return nil, request{}, err
	}
	if err := validateAgentID(agentID); err != nil {
		return nil, request{}, err
	}
	if err := body.validate(); err != nil {
		return nil, request{}, err
	}
	if r, ok := body.(*AgentQueryRequest); ok && r.IsDraft && !cfg.auth.set() {
		return nil, request{}, invalid("isDraft", "a draft needs an API key (WithAPIKey or LABUREN_API_KEY)")
	}
	b, err := encodeBody(body, streaming)
	if err != nil {
		return nil, request{}, err
	}
	call := Call{Operation: endpoint, AgentID: agentID, Stream: streaming}
	if r, ok := body.(*QueryRequest); ok {
		call.Async, call.Model = r.WebhookURL != "", r.ModelName
	}
	return cfg, request{path: agentPath(agentID, endpoint), body: b, stream: streaming, call: call}, nil
}

// agentPath is the escaped path of an agent's endpoint.
func agentPath(agentID, endpoint string) string {
	return "/agents/" + url.PathEscape(agentID) + "/" + endpoint
}

// validate checks a query request before it is sent.
func (r *QueryRequest) validate() error {
	if err := validateText("query", r.Query); err != nil {
		return err
	}
	if err := validateChannel(r.Channel); err != nil {
		return err
	}
	if err := validateConversationID(r.ConversationID); err != nil {
		return err
	}
	if r.SystemPrompt != "" && strings.TrimSpace(r.SystemPrompt) == "" {
		return invalid("systemPrompt", "is blank; leave it empty to keep the agent's own prompt")
	}
	for _, n := range []struct {
		field    string
		v        *float64
		min, max float64
	}{
		{"temperature", r.Temperature, 0, 2},
		{"presencePenalty", r.PresencePenalty, -2, 2},
		{"frequencyPenalty", r.FrequencyPenalty, -2, 2},
		{"topP", r.TopP, 0, 1},
	} {
		if n.v == nil {
			continue
		}
		if math.IsNaN(*n.v) || math.IsInf(*n.v, 0) || *n.v < n.min || *n.v > n.max {
			return invalid(n.field, "%v is outside [%v, %v]", *n.v, n.min, n.max)
		}
	}
	if r.MaxTokens != nil && *r.MaxTokens < 1 {
		return invalid("maxTokens", "%d is less than 1", *r.MaxTokens)
	}
	if r.WebhookURL != "" {
		if err := validateHTTPURL("webhookUrl", r.WebhookURL); err != nil {
			return err
		}
	}
	for i, a := range r.Attachments {
		field := fmt.Sprintf("attachments[%d]", i)
		if a.URL == "" {
			return invalid(field+".url", "is empty")
		}
		if err := validateHTTPURL(field+".url", a.URL); err != nil {
			return err
		}
		if a.Size < 0 {
			return invalid(field+".size", "%d is negative", a.Size)
		}
	}
	return r.Contact.validate()
}

// validate checks a contact; a nil contact is valid.
func (c *Contact) validate() error {
	if c == nil || c.Email == "" {
		return nil
	}
	addr, err := mail.ParseAddress(c.Email)
	if err != nil || addr.Address != c.Email || !strings.Contains(addr.Address[strings.LastIndexByte(addr.Address, '@')+1:], ".") {
		return invalid("contact.email", "%q is not an email address", c.Email)
	}
	return nil
}

func validateAgentID(id string) error {
	if strings.TrimSpace(id) == "" {
		return invalid("agentID", "is empty")
	}
	if strings.IndexFunc(id, unicode.IsControl) >= 0 || !utf8.ValidString(id) {
		return invalid("agentID", "%q contains control characters or invalid UTF-8", id)
	}
	if id == "." || id == ".." {
		// Path escaping leaves dot segments as they are, and servers resolve them: the
		// request would reach another endpoint.
		return invalid("agentID", "%q is not an agent ID", id)
	}
	return nil
}

// validateText checks a required message text.
func validateText(field, s string) error {
	if strings.TrimSpace(s) == "" {
		return invalid(field, "is empty")
	}
	if !utf8.ValidString(s) {
		return invalid(field, "is not valid UTF-8")
	}
	return nil
}

func validateChannel(ch Channel) error {
	if ch != "" && !ch.Valid() {
		return invalid("channel", "%q is not a documented channel", string(ch))
	}
	return nil
}

// validateConversationID refuses a Chatwoot conversation ID that does not parse: it would put
// the message in another conversation. An ID that holds the prefix anywhere, in another case or
// spelled with look-alikes ("ſ" for "s") or with invisible characters among its letters, is
// checked too, and refused.
func validateConversationID(id string) error {
	folded := make([]byte, 0, 64) // on the stack for a usual ID
	for _, r := range id {
		if a, ok := asciiFold(r); ok {
			folded = append(folded, byte(a))
		}
	}
	if bytes.Contains(folded, []byte(strings.TrimSuffix(chatwootPrefix, "_"))) {
		if _, _, err := parseChatwoot(id); err != nil {
			return within("conversationId", err)
		}
	}
	return nil
}

// asciiFold returns r in lower case when r is ASCII or case-folds to an ASCII rune ("ſ" to "s",
// the Kelvin sign to "k"); ok is false for any other rune.
func asciiFold(r rune) (a rune, ok bool) {
	for f := r; ; {
		if f < utf8.RuneSelf {
			return unicode.ToLower(f), true
		}
		if f = unicode.SimpleFold(f); f == r {
			return 0, false
		}
	}
}

// validateHTTPURL checks that s is an absolute http or https URL.
func validateHTTPURL(field, s string) error {
	if _, err := httpurl.Parse(s); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}
