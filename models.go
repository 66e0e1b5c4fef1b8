package laburen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Ptr returns a pointer to v, for the optional numbers where zero is meaningful:
// laburen.Ptr(0.0) sends 0; nil leaves the field out.
func Ptr[T any](v T) *T { return &v }

// Channel is where a message comes from; empty means ChannelAPI.
type Channel string

// The channels the API documents.
const (
	ChannelAPI           Channel = "api"
	ChannelDashboard     Channel = "dashboard"
	ChannelWebsite       Channel = "website"
	ChannelForm          Channel = "form"
	ChannelWhatsApp      Channel = "whatsapp"
	ChannelTelegram      Channel = "telegram"
	ChannelSlack         Channel = "slack"
	ChannelMeta          Channel = "meta"
	ChannelCrisp         Channel = "crisp"
	ChannelZapier        Channel = "zapier"
	ChannelMail          Channel = "mail"
	ChannelMercadoLibre  Channel = "mercadolibre"
	ChannelAgentBuilder  Channel = "agent_builder"
	ChannelChatwoot      Channel = "chatwoot"
	ChannelCRMChatsAppAI Channel = "crmchatsappai"
)

// Channels returns a copy of the documented channels.
func Channels() []Channel { return slices.Clone(channels) }

var channels = []Channel{
	ChannelAPI, ChannelDashboard, ChannelWebsite, ChannelForm, ChannelWhatsApp, ChannelTelegram,
	ChannelSlack, ChannelMeta, ChannelCrisp, ChannelZapier, ChannelMail, ChannelMercadoLibre,
	ChannelAgentBuilder, ChannelChatwoot, ChannelCRMChatsAppAI,
}

// Valid reports whether c is one of the documented channels.
func (c Channel) Valid() bool { return slices.Contains(channels, c) }

// ModelName overrides the agent's model; any string is accepted.
type ModelName string

// Documented model names.
const (
	ModelGPT4o             ModelName = "gpt_4o"
	ModelGPT4oMini         ModelName = "gpt_4o_mini"
	ModelGPT41             ModelName = "gpt_41"
	ModelGPT41Mini         ModelName = "gpt_41_mini"
	ModelGPT41Nano         ModelName = "gpt_41_nano"
	ModelClaude37Sonnet    ModelName = "claude_3_7_sonnet"
	ModelClaude4Sonnet     ModelName = "claude_4_sonnet"
	ModelGemini25Flash     ModelName = "gemini_2_5_flash"
	ModelGemini25Pro       ModelName = "gemini_2_5_pro"
	ModelGrok3             ModelName = "grok_3"
	ModelGrok3Beta         ModelName = "grok_3_beta"
	ModelGrok3FastBeta     ModelName = "grok_3_fast_beta"
	ModelGrok3MiniBeta     ModelName = "grok_3_mini_beta"
	ModelGrok3MiniFastBeta ModelName = "grok_3_mini_fast_beta"
	ModelSonarPro          ModelName = "sonar_pro"
	ModelSonar             ModelName = "sonar"
	ModelLlama3370B        ModelName = "llama_3_3_70b"
	ModelLlama4Maverick17B ModelName = "llama_4_maverick_17b"
	ModelRoute             ModelName = "model_route"
)

// ConversationStatus is a conversation's status; other values may appear.
type ConversationStatus string

// Known conversation statuses.
const (
	StatusUnresolved     ConversationStatus = "UNRESOLVED"
	StatusResolved       ConversationStatus = "RESOLVED"
	StatusHumanRequested ConversationStatus = "HUMAN_REQUESTED"
)

// StatusQueued is the status of a queued query's reply (QueryResponse.Queued).
const StatusQueued ConversationStatus = "queued"

// PromptType is the deprecated promptType of a query.
type PromptType string

// Prompt types (deprecated by the API).
const (
	PromptTypeRaw             PromptType = "raw"
	PromptTypeCustomerSupport PromptType = "customer_support"
)

// QueryRequest is a user's message to an agent. Only Query is required; zero fields are not sent.
type QueryRequest struct {
	Query            string         `json:"query"`                   // the user's message; required
	ConversationID   string         `json:"conversationId,omitzero"` // continues a conversation; empty starts one
	VisitorID        string         `json:"visitorId,omitzero"`      // the end user; the server makes one when empty
	Channel          Channel        `json:"channel,omitzero"`
	Context          string         `json:"context,omitzero"`      // appended to the agent's system prompt
	SystemPrompt     string         `json:"systemPrompt,omitzero"` // replaces the agent's system prompt
	UserPrompt       string         `json:"userPrompt,omitzero"`   // a template where {query} is replaced by Query
	ModelName        ModelName      `json:"modelName,omitzero"`
	Temperature      *float64       `json:"temperature,omitempty"`      // 0 to 2; nil keeps the agent's
	MaxTokens        *int           `json:"maxTokens,omitempty"`        // at least 1
	PresencePenalty  *float64       `json:"presencePenalty,omitempty"`  // -2 to 2
	FrequencyPenalty *float64       `json:"frequencyPenalty,omitempty"` // -2 to 2
	TopP             *float64       `json:"topP,omitempty"`             // 0 to 1
	Filters          *Filters       `json:"filters,omitempty"`
	PromptType       PromptType     `json:"promptType,omitzero"`     // deprecated by the API
	PromptTemplate   string         `json:"promptTemplate,omitzero"` // deprecated by the API
	Attachments      []Attachment   `json:"attachments,omitempty"`
	Contact          *Contact       `json:"contact,omitempty"`
	WebhookURL       string         `json:"webhookUrl,omitzero"` // for Client.QueryAsync
	Extra            map[string]any `json:"-"`                   // unmodelled fields, sent as given
}

// Filters restricts the datasources an agent searches for one query.
type Filters struct {
	CustomIDs     []string `json:"custom_ids,omitempty"`     // datasources tagged with one of these IDs
	DatasourceIDs []string `json:"datasource_ids,omitempty"` // these datasources
	DatastoreIDs  []string `json:"datastore_ids,omitempty"`  // the datasources of these datastores
}

// Attachment is a file sent with a message, at a URL Laburen can fetch.
type Attachment struct {
	Name     string `json:"name,omitzero"`
	URL      string `json:"url"`               // absolute http(s) URL; required
	Size     int64  `json:"size,omitzero"`     // bytes
	MimeType string `json:"mimeType,omitzero"` // such as "image/png"
}

// Contact is a CRM contact, matched by Email, then PhoneNumber, then UserID, or created.
type Contact struct {
	Email       string `json:"email,omitzero"` // a plain address: "ana@example.com"
	PhoneNumber string `json:"phoneNumber,omitzero"`
	FirstName   string `json:"firstName,omitzero"`
	LastName    string `json:"lastName,omitzero"`
	UserID      string `json:"userId,omitzero"`
}

// AgentQueryRequest is an agent-side message to record. Only Query is required.
type AgentQueryRequest struct {
	Query             string         `json:"query"`                   // the message; required
	ConversationID    string         `json:"conversationId,omitzero"` // for Chatwoot: ChatwootConversationID
	VisitorID         string         `json:"visitorId,omitzero"`
	Channel           Channel        `json:"channel,omitzero"`
	ChannelExternalID string         `json:"channelExternalId,omitzero"` // WhatsAppChannelExternalID
	IsDraft           bool           `json:"isDraft,omitzero"`           // needs an API key
	ContactID         string         `json:"contactId,omitzero"`
	Contact           *Contact       `json:"contact,omitempty"`
	Metadata          map[string]any `json:"metadata,omitempty"`
	Extra             map[string]any `json:"-"` // as in QueryRequest
}

// QueryResponse is an agent's answer; Raw keeps the object. A queued query's reply (Queued)
// has InputMessageID, Message and WebhookURL instead, and its answer comes by webhook.
type QueryResponse struct {
	Answer         string             `json:"answer"` // empty when AI is off or a tool awaits approval
	Usage          Usage              `json:"usage"`
	Sources        []Source           `json:"sources"`   // the knowledge the answer used
	Approvals      []Approval         `json:"approvals"` // tool calls awaiting a human's approval
	MessageID      string             `json:"messageId"`
	ConversationID string             `json:"conversationId"` // keep it to continue the conversation
	VisitorID      string             `json:"visitorId"`
	RequestHuman   bool               `json:"request_human"` // the agent asked for a human operator
	Status         ConversationStatus `json:"status"`
	Metadata       json.RawMessage    `json:"metadata,omitempty"`
	InputMessageID string             `json:"inputMessageId,omitempty"` // the queued user message
	Message        string             `json:"message,omitempty"`        // the server's note on a queued query
	WebhookURL     string             `json:"webhookUrl,omitempty"`     // where a queued answer goes
	Raw            json.RawMessage    `json:"-"`                        // the object as received
}

// Queued reports whether the query was queued: its answer comes by webhook.
func (r *QueryResponse) Queued() bool { return r != nil && r.Status == StatusQueued }

// UnmarshalJSON decodes the response and keeps the raw object in Raw.
func (r *QueryResponse) UnmarshalJSON(b []byte) error {
	return r.decodeOwned(slices.Clone(b))
}

// Usage is the token count and cost of a call.
type Usage struct {
	CompletionTokens int     `json:"completionTokens"` // the answer's
	PromptTokens     int     `json:"promptTokens"`     // the prompt's, knowledge included
	TotalTokens      int     `json:"totalTokens"`
	Cost             float64 `json:"cost"`
}

// lenient drops a type mismatch in a response (a usage count, a source's score, request_human
// sent as a string): json.Unmarshal has decoded every other field, and the raw JSON keeps the
// odd value. An answer that arrived, and may have been billed, is not lost over the type of a
// detail.
func lenient(err error) error {
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return nil
	}
	return err
}

// Source is a knowledge-base chunk an answer used.
type Source struct {
	Source         string          `json:"source"` // the document, such as "FAQ.pdf"
	Chunk          string          `json:"chunk"`  // the text the answer drew on
	DatasourceID   string          `json:"datasource_id"`
	DatasourceName string          `json:"datasource_name"`
	DatasourceType string          `json:"datasource_type"` // "file", "web_page", ...
	SourceURL      string          `json:"source_url"`
	Score          *float64        `json:"score"`       // nil when not sent as a number
	PageNumber     *int            `json:"page_number"` // nil when not sent as a number
	Raw            json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the source and keeps the raw item in Raw.
func (s *Source) UnmarshalJSON(b []byte) error {
	return s.decode(slices.Clone(b))
}

// decode reads a source from b, which it keeps in Raw. A source that is not an object keeps
// only Raw.
func (s *Source) decode(b []byte) error {
	s.Raw = b
	return lenient(checkedObject(b, func(key, v []byte) error {
		switch string(key) {
		case "source":
			return leaf(v, &s.Source)
		case "chunk":
			return leaf(v, &s.Chunk)
		case "datasource_id":
			return leaf(v, &s.DatasourceID)
		case "datasource_name":
			return leaf(v, &s.DatasourceName)
		case "datasource_type":
			return leaf(v, &s.DatasourceType)
		case "source_url":
			return leaf(v, &s.SourceURL)
		case "score":
			s.Score = optional[float64](v)
		case "page_number":
			s.PageNumber = optional[int](v)
		}
		return nil
	}))
}

// Approval is a tool call waiting for a human's approval.
type Approval struct {
	ToolType string          `json:"-"` // Tool's "type"
	Tool     json.RawMessage `json:"tool"`
	Payload  json.RawMessage `json:"payload"`
	Raw      json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the approval and keeps the raw item in Raw.
func (a *Approval) UnmarshalJSON(b []byte) error {
	return a.decode(slices.Clone(b))
}

// decode reads an approval from b, which it keeps in Raw.
func (a *Approval) decode(b []byte) error {
	a.Raw = b
	err := checkedObject(b, func(key, v []byte) error {
		switch string(key) {
		case "tool":
			a.Tool = json.RawMessage(v)
		case "payload":
			a.Payload = json.RawMessage(v)
		}
		return nil
	})
	a.ToolType = ""
	_ = checkedObject(a.Tool, func(key, v []byte) error { // a tool without a string type keeps ToolType empty
		if string(key) == "type" {
			return leaf(v, &a.ToolType)
		}
		return nil
	})
	return lenient(err)
}

// AgentQueryResponse says where AgentQuery recorded the message.
type AgentQueryResponse struct {
	MessageID      string             `json:"messageId"`
	ConversationID string             `json:"conversationId"`
	VisitorID      string             `json:"visitorId"`
	Status         ConversationStatus `json:"status"`
	Raw            json.RawMessage    `json:"-"`
}

// decodeOwned is UnmarshalJSON for a body the request path hands over: kept without a copy.
// Keys match exactly, as a JavaScript reader matches them: "ConversationId" is not
// "conversationId". A field of an unexpected type is left zero (Raw keeps it), except the answer
// itself: an answer that is not a string is an error, never an empty answer passed on to a user.
func (r *QueryResponse) decodeOwned(b []byte) error {
	if err := checkJSON(b); err != nil {
		return err
	}
	return r.decodeChecked(b)
}

// decodeChecked is decodeOwned for b already checked by json.Valid, such as a part of a
// checked webhook body.
func (r *QueryResponse) decodeChecked(b []byte) error {
	err := checkedObject(b, func(key, v []byte) error {
		switch string(key) {
		case "answer":
			if err := stringValue(v, &r.Answer); err != nil {
				return fmt.Errorf("the answer is not a string: %s", shorten(string(v), 100))
			}
		case "usage":
			r.Usage = Usage{} // a later duplicate wins whole
			return r.Usage.decode(v)
		case "sources":
			return lenient(decodeItems(v, &r.Sources, (*Source).decode))
		case "approvals":
			return lenient(decodeItems(v, &r.Approvals, (*Approval).decode))
		case "messageId":
			return leaf(v, &r.MessageID)
		case "conversationId":
			return leaf(v, &r.ConversationID)
		case "visitorId":
			return leaf(v, &r.VisitorID)
		case "request_human":
			return leaf(v, &r.RequestHuman)
		case "status":
			return leaf(v, &r.Status)
		case "metadata":
			r.Metadata = json.RawMessage(v)
		case "inputMessageId":
			return leaf(v, &r.InputMessageID)
		case "message":
			return leaf(v, &r.Message)
		case "webhookUrl":
			return leaf(v, &r.WebhookURL)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.Raw = b
	return nil
}

// decode reads the usage from b; a usage that is not an object stays zero.
func (u *Usage) decode(b []byte) error {
	return lenient(checkedObject(b, func(key, v []byte) error {
		switch string(key) {
		case "completionTokens":
			return leaf(v, &u.CompletionTokens)
		case "promptTokens":
			return leaf(v, &u.PromptTokens)
		case "totalTokens":
			return leaf(v, &u.TotalTokens)
		case "cost":
			return leaf(v, &u.Cost)
		}
		return nil
	}))
}

// UnmarshalJSON decodes the usage, matching keys exactly.
func (u *Usage) UnmarshalJSON(b []byte) error { return u.decode(b) }

// decodeOwned is UnmarshalJSON for a body the request path hands over: kept without a copy.
func (r *AgentQueryResponse) decodeOwned(b []byte) error {
	err := exactObject(b, func(key, v []byte) error {
		switch string(key) {
		case "messageId":
			return leaf(v, &r.MessageID)
		case "conversationId":
			return leaf(v, &r.ConversationID)
		case "visitorId":
			return leaf(v, &r.VisitorID)
		case "status":
			return leaf(v, &r.Status)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.Raw = b
	return nil
}

// UnmarshalJSON decodes the response and keeps the raw object in Raw.
func (r *AgentQueryResponse) UnmarshalJSON(b []byte) error {
	return r.decodeOwned(slices.Clone(b))
}

// encodeBody encodes a request body in one pass: "streaming" when set, the struct's fields,
// then the Extra fields before the object's closing brace. An Extra key that names a field of
// the struct (set or not), or "streaming", is refused: Extra never changes a modelled field.
func encodeBody(body requestBody, streaming bool) ([]byte, error) {
	var v any = body
	if streaming {
		v = body.streaming()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	extra := body.extraFields()
	if len(extra) == 0 {
		return b, nil
	}
	modeled := jsonNames(reflect.TypeOf(body).Elem())
	b = b[:len(b)-1] // the object holds "query" at least: a member follows with a comma
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		if modeled[k] || k == "streaming" {
			return nil, invalid("extra", "key %q is a field the SDK models; set the struct field instead", k)
		}
		v, err := json.Marshal(extra[k])
		if err != nil {
			return nil, invalid("extra", "key %q: %v", k, err)
		}
		key, _ := json.Marshal(k) // a string always encodes
		b = append(append(append(append(b, ','), key...), ':'), v...)
	}
	return append(b, '}'), nil
}

// jsonNames returns the JSON names of the fields of struct type t.
func jsonNames(t reflect.Type) map[string]bool {
	names := make(map[string]bool, t.NumField())
	for _, f := range reflect.VisibleFields(t) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names[name] = true
		}
	}
	return names
}

// The response types read their JSON as a JavaScript reader does: a key fills the field whose
// JSON name it is exactly (encoding/json would also take "CONVERSATIONID" for "conversationId",
// and the last of the two would win), and a later duplicate of the same key wins. exactObject
// checks an object once with json.Valid, then walks it, finding each member's key and the
// extent of its value; the values of known keys are decoded directly or by encoding/json.

// errNotObject reports a value that should be a JSON object and is not; lenient drops it.
var errNotObject = &json.UnmarshalTypeError{Value: "non-object", Type: reflect.TypeFor[map[string]any]()}

// errJSONEnd is encoding/json's error for a value cut short.
var errJSONEnd = errors.New("unexpected end of JSON input")

// errNotArray reports a value that should be a JSON array and is not; lenient drops it.
var errNotArray = &json.UnmarshalTypeError{Value: "non-array", Type: reflect.TypeFor[[]any]()}

// exactObject calls member for each member of the JSON object b, in order, with its key
// (unescaped) and its raw value. b must be the object and nothing else but white space.
func exactObject(b []byte, member func(key, value []byte) error) error {
	if err := checkJSON(b); err != nil {
		return err
	}
	return checkedObject(b, member)
}

// checkJSON returns encoding/json's syntax error, with its offset, for b that is not valid
// JSON.
func checkJSON(b []byte) error {
	if json.Valid(b) {
		return nil
	}
	var v struct{}
	return json.Unmarshal(b, &v)
}

// checkedObject is exactObject for b already checked by json.Valid, such as a value inside a
// checked object: its members are not checked again.
func checkedObject(b []byte, member func(key, value []byte) error) error {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return errNotObject
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return endOfValue(b, i+1)
	}
	for {
		if i == len(b) || b[i] != '"' {
			return syntaxError(b, i, "a key")
		}
		end, err := valueEnd(b, i)
		if err != nil {
			return err
		}
		key := b[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
			var s string
			if err := json.Unmarshal(b[i:end], &s); err != nil {
				return err
			}
			key = []byte(s)
		}
		i = skipSpace(b, end)
		if i == len(b) || b[i] != ':' {
			return syntaxError(b, i, "':'")
		}
		i = skipSpace(b, i+1)
		if end, err = valueEnd(b, i); err != nil {
			return err
		}
		value := b[i:end]
		if err := member(key, value); err != nil {
			return err
		}
		i = skipSpace(b, end)
		switch {
		case i < len(b) && b[i] == ',':
			i = skipSpace(b, i+1)
		case i < len(b) && b[i] == '}':
			return endOfValue(b, i+1)
		default:
			return syntaxError(b, i, "',' or '}'")
		}
	}
}

// decodeItems decodes the JSON array b into *items, each item with decode, which is given the
// item's raw JSON. A value that is not an array leaves *items nil.
func decodeItems[T any](b []byte, items *[]T, decode func(*T, []byte) error) error {
	*items = nil
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '[' {
		return errNotArray // b is valid JSON: exactObject checked it
	}
	*items = make([]T, 0)
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] != ']' {
		end, err := valueEnd(b, i)
		if err != nil {
			return err
		}
		*items = append(*items, *new(T))
		if err := decode(&(*items)[len(*items)-1], b[i:end]); err != nil {
			return err
		}
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return nil
}

// leaf decodes the JSON value b (already checked) into v. A value of another type, or null, is
// not an error: v is left zero (also when an earlier duplicate of the key set it), and the raw
// JSON keeps what came. The common plain values are read directly, as encoding/json would read
// them; anything else goes through it.
func leaf(b []byte, v any) error {
	switch v := v.(type) {
	case *string:
		*v = ""
		if s, ok := plainString(b); ok {
			*v = s
			return nil
		}
	case *ConversationStatus:
		*v = ""
		if s, ok := plainString(b); ok {
			*v = ConversationStatus(s)
			return nil
		}
	case *int:
		*v = 0
		if n, err := strconv.Atoi(string(b)); err == nil {
			*v = n
			return nil
		}
	case *float64:
		*v = 0
		if f, err := strconv.ParseFloat(string(b), 64); err == nil {
			*v = f
			return nil
		}
	case *bool:
		*v = false
		if string(b) == "true" || string(b) == "false" {
			*v = string(b) == "true"
			return nil
		}
	}
	return lenient(json.Unmarshal(b, v))
}

// simpleString reports whether b, a value delimited by valueEnd, is a JSON string without
// escapes or control characters.
func simpleString(b []byte) bool {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return false
	}
	for _, c := range b[1 : len(b)-1] {
		if c < 0x20 || c == '\\' {
			return false
		}
	}
	return true
}

// plainString returns the JSON string b when it has no escape and is valid UTF-8: its text is
// then its bytes.
func plainString(b []byte) (string, bool) {
	if !simpleString(b) || !utf8.Valid(b) {
		return "", false
	}
	return string(b[1 : len(b)-1]), true
}

// stringValue decodes the JSON string or null b (already checked) into *s; any other value is an
// error.
func stringValue(b []byte, s *string) error {
	*s = ""
	if p, ok := plainString(b); ok {
		*s = p
		return nil
	}
	return json.Unmarshal(b, s)
}

// valueEnd returns the end of the JSON value that starts at b[i]: after its closing quote or
// bracket, or before the byte that ends a number or literal. It checks only the nesting; the
// caller checks the value.
func valueEnd(b []byte, i int) (int, error) {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			for j++; j < len(b) && b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
				}
			}
			if j >= len(b) {
				return 0, errJSONEnd
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth < 0 {
				return j, nil // the end of the enclosing object or array
			}
		case ',', ' ', '\t', '\r', '\n', ':':
			if depth == 0 {
				return j, nil
			}
		default:
			continue
		}
		if depth == 0 {
			return j + 1, nil
		}
	}
	if depth != 0 {
		return 0, errJSONEnd
	}
	return len(b), nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// endOfValue checks that nothing but white space follows b[:i].
func endOfValue(b []byte, i int) error {
	if i = skipSpace(b, i); i != len(b) {
		return syntaxError(b, i, "the end of the JSON value")
	}
	return nil
}

func syntaxError(b []byte, i int, want string) error {
	if i >= len(b) {
		return errJSONEnd
	}
	return fmt.Errorf("invalid JSON at byte %d: %q where %s should be", i, b[i], want)
}

// optional decodes a number that may be missing, null or of another type: nil unless it is a
// T.
func optional[T any](raw []byte) *T {
	var v T
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil || string(raw) == "null" {
		return nil
	}
	return &v
}
