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

// Ptr returns a pointer to v. Use it for the optional numbers of a request where zero is a
// meaningful value: Temperature: laburen.Ptr(0.0) sends "temperature": 0, while a nil pointer
// leaves the field out.
func Ptr[T any](v T) *T { return &v }

// Channel is the channel a message comes from. The API accepts only the documented values,
// which are the constants below; the SDK refuses any other before sending. The zero value
// leaves the field out and the API uses ChannelAPI.
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

// Channels returns every documented channel, in the API reference's order. The slice is a
// copy: changing it changes nothing else.
func Channels() []Channel { return slices.Clone(channels) }

var channels = []Channel{
	ChannelAPI, ChannelDashboard, ChannelWebsite, ChannelForm, ChannelWhatsApp, ChannelTelegram,
	ChannelSlack, ChannelMeta, ChannelCrisp, ChannelZapier, ChannelMail, ChannelMercadoLibre,
	ChannelAgentBuilder, ChannelChatwoot, ChannelCRMChatsAppAI,
}

// Valid reports whether c is one of the documented channels.
func (c Channel) Valid() bool { return slices.Contains(channels, c) }

// ModelName selects the model that answers a query, overriding the agent's own. The list of
// models grows, so any string is accepted; the constants are the documented values.
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

// ConversationStatus is the status of a conversation as the API reports it. Other values may
// appear; the constants are the known ones.
type ConversationStatus string

// Known conversation statuses.
const (
	StatusUnresolved     ConversationStatus = "UNRESOLVED"
	StatusResolved       ConversationStatus = "RESOLVED"
	StatusHumanRequested ConversationStatus = "HUMAN_REQUESTED"
)

// StatusQueued is not a conversation status but the status field of the reply to a query that
// the server queued instead of answering (conversational mode, see Client.QueryAsync): the
// answer arrives later at the query's webhook URL. QueryResponse.Queued tests for it.
const StatusQueued ConversationStatus = "queued"

// PromptType is the deprecated promptType of a query.
type PromptType string

// Prompt types (deprecated by the API).
const (
	PromptTypeRaw             PromptType = "raw"
	PromptTypeCustomerSupport PromptType = "customer_support"
)

// QueryRequest is the body of a user message sent to an agent (POST /agents/{id}/query). Only
// Query is required; every field left at its zero value is left out of the JSON.
type QueryRequest struct {
	// Query is the user's message. Required.
	Query string `json:"query"`
	// ConversationID continues an existing conversation; the server starts one when empty. A
	// Chatwoot conversation ID (crmchatsappai_...) is checked before sending.
	ConversationID string `json:"conversationId,omitzero"`
	// VisitorID names the end user; the server generates one when empty.
	VisitorID string `json:"visitorId,omitzero"`
	// Channel the message comes from; the API's default is ChannelAPI.
	Channel Channel `json:"channel,omitzero"`
	// Context is extra instructions appended to the agent's system prompt for this call.
	Context string `json:"context,omitzero"`
	// SystemPrompt replaces the agent's system prompt for this call only.
	SystemPrompt string `json:"systemPrompt,omitzero"`
	// UserPrompt is a user-prompt template in which {query} is replaced by Query.
	UserPrompt string `json:"userPrompt,omitzero"`
	// ModelName overrides the agent's model for this call.
	ModelName ModelName `json:"modelName,omitzero"`
	// Temperature, from 0 to 2; nil leaves the agent's setting.
	Temperature *float64 `json:"temperature,omitempty"`
	// MaxTokens caps the answer's length in tokens; at least 1 when set.
	MaxTokens *int `json:"maxTokens,omitempty"`
	// PresencePenalty, from -2 to 2.
	PresencePenalty *float64 `json:"presencePenalty,omitempty"`
	// FrequencyPenalty, from -2 to 2.
	FrequencyPenalty *float64 `json:"frequencyPenalty,omitempty"`
	// TopP, from 0 to 1.
	TopP *float64 `json:"topP,omitempty"`
	// Filters restricts the knowledge the agent searches.
	Filters *Filters `json:"filters,omitempty"`
	// PromptType is deprecated by the API.
	PromptType PromptType `json:"promptType,omitzero"`
	// PromptTemplate is deprecated by the API.
	PromptTemplate string `json:"promptTemplate,omitzero"`
	// Attachments are files sent with the message; their URLs must be fetchable by Laburen.
	Attachments []Attachment `json:"attachments,omitempty"`
	// Contact is the CRM contact of the end user.
	Contact *Contact `json:"contact,omitempty"`
	// WebhookURL switches to conversational mode: the answer is POSTed later to this absolute
	// http(s) URL. Use Client.QueryAsync for it.
	WebhookURL string `json:"webhookUrl,omitzero"`
	// Extra holds body fields the SDK does not model yet; they are sent as given. A key that
	// names a field the SDK models is refused.
	Extra map[string]any `json:"-"`
}

// Filters restricts the datasources an agent searches for one query.
type Filters struct {
	// CustomIDs keeps the datasources tagged with one of these custom IDs.
	CustomIDs []string `json:"custom_ids,omitempty"`
	// DatasourceIDs keeps these datasources.
	DatasourceIDs []string `json:"datasource_ids,omitempty"`
	// DatastoreIDs keeps the datasources of these datastores (accepted upstream, not in the
	// API reference).
	DatastoreIDs []string `json:"datastore_ids,omitempty"`
}

// Attachment is a file sent with a message.
type Attachment struct {
	// Name is the file name.
	Name string `json:"name,omitzero"`
	// URL must be an absolute http(s) URL that Laburen can fetch. Required.
	URL string `json:"url"`
	// Size is the file size in bytes.
	Size int64 `json:"size,omitzero"`
	// MimeType such as "image/png".
	MimeType string `json:"mimeType,omitzero"`
}

// Contact is a CRM contact. The server matches an existing contact by email, then phone
// number, then user ID, and creates one otherwise.
type Contact struct {
	// Email is matched first; it must be a plain address ("ana@example.com").
	Email string `json:"email,omitzero"`
	// PhoneNumber is matched second.
	PhoneNumber string `json:"phoneNumber,omitzero"`
	// FirstName of the contact.
	FirstName string `json:"firstName,omitzero"`
	// LastName of the contact.
	LastName string `json:"lastName,omitzero"`
	// UserID is your own ID for the user, matched last.
	UserID string `json:"userId,omitzero"`
}

// AgentQueryRequest is the body of an agent-side message recorded in a conversation (POST
// /agents/{id}/query-agent). It does not call the AI. Only Query is required.
type AgentQueryRequest struct {
	// Query is the agent-side message text. Required.
	Query string `json:"query"`
	// ConversationID is the target conversation; for Chatwoot build it with
	// ChatwootConversationID.
	ConversationID string `json:"conversationId,omitzero"`
	// VisitorID names the end user.
	VisitorID string `json:"visitorId,omitzero"`
	// Channel the message belongs to; the API's default is ChannelAPI.
	Channel Channel `json:"channel,omitzero"`
	// ChannelExternalID routes the message on its channel. With ChannelWhatsApp it is required
	// and must be built by WhatsAppChannelExternalID.
	ChannelExternalID string `json:"channelExternalId,omitzero"`
	// IsDraft creates a draft message; it needs an API key.
	IsDraft bool `json:"isDraft,omitzero"`
	// ContactID names an existing contact.
	ContactID string `json:"contactId,omitzero"`
	// Contact is the CRM contact of the end user.
	Contact *Contact `json:"contact,omitempty"`
	// Metadata is free-form metadata stored with the message.
	Metadata map[string]any `json:"metadata,omitempty"`
	// Extra holds body fields the SDK does not model yet, as in QueryRequest.
	Extra map[string]any `json:"-"`
}

// QueryResponse is the agent's answer to a query. Every field may be missing from the server's
// JSON; Raw keeps the whole object, including fields the SDK does not model. When the agent is
// in conversational mode and the request had a webhookUrl, the server queues the query instead
// of answering: Queued then reports true, the queued fields (InputMessageID, Message,
// WebhookURL) are set and the answer comes later by webhook (see Client.QueryAsync).
type QueryResponse struct {
	// Answer is the agent's reply. It is empty when AI is off for the conversation or when a
	// tool waits for approval.
	Answer string `json:"answer"`
	// Usage is the token count and cost of the call.
	Usage Usage `json:"usage"`
	// Sources are the knowledge-base chunks the answer used.
	Sources []Source `json:"sources"`
	// Approvals are tool calls that wait for a human's approval.
	Approvals []Approval `json:"approvals"`
	// MessageID identifies the answer message.
	MessageID string `json:"messageId"`
	// ConversationID identifies the conversation; keep it to continue the conversation.
	ConversationID string `json:"conversationId"`
	// VisitorID identifies the end user.
	VisitorID string `json:"visitorId"`
	// RequestHuman is true when the agent asked for a human operator.
	RequestHuman bool `json:"request_human"`
	// Status is the conversation's status after the answer.
	Status ConversationStatus `json:"status"`
	// Metadata is the server's free-form metadata, raw.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// InputMessageID identifies the user's message of a queued query.
	InputMessageID string `json:"inputMessageId,omitempty"`
	// Message is the server's note on a queued query.
	Message string `json:"message,omitempty"`
	// WebhookURL is where the answer to a queued query will be POSTed.
	WebhookURL string `json:"webhookUrl,omitempty"`
	// Raw is the response object exactly as received.
	Raw json.RawMessage `json:"-"`
}

// Queued reports whether the server queued the query instead of answering it (Status is
// StatusQueued): the answer will be POSTed to the query's webhook URL.
func (r *QueryResponse) Queued() bool { return r != nil && r.Status == StatusQueued }

// UnmarshalJSON decodes the response and keeps the raw object in Raw.
func (r *QueryResponse) UnmarshalJSON(b []byte) error {
	return r.decodeOwned(slices.Clone(b))
}

// Usage is the token count and cost of a call. Missing counts are zero.
type Usage struct {
	// CompletionTokens is the number of tokens of the answer.
	CompletionTokens int `json:"completionTokens"`
	// PromptTokens is the number of tokens of the prompt, knowledge included.
	PromptTokens int `json:"promptTokens"`
	// TotalTokens is the sum of both.
	TotalTokens int `json:"totalTokens"`
	// Cost is the call's cost as the server reports it.
	Cost float64 `json:"cost"`
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

// Source is a knowledge-base chunk an answer used. The API documents Source and Chunk; the
// other fields appear when the server sends them, and Raw keeps the whole item.
type Source struct {
	// Source names the document, such as "FAQ.pdf".
	Source string `json:"source"`
	// Chunk is the text the answer drew on.
	Chunk string `json:"chunk"`
	// DatasourceID identifies the datasource the chunk comes from.
	DatasourceID string `json:"datasource_id"`
	// DatasourceName is the datasource's name.
	DatasourceName string `json:"datasource_name"`
	// DatasourceType is the kind of datasource ("file", "web_page", ...).
	DatasourceType string `json:"datasource_type"`
	// SourceURL is where the document lives, when it has a URL.
	SourceURL string `json:"source_url"`
	// Score is the chunk's relevance; nil when not sent (or not a number).
	Score *float64 `json:"score"`
	// PageNumber is the chunk's page in its document; nil when not sent.
	PageNumber *int `json:"page_number"`
	// Raw is the item exactly as received.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the source and keeps the raw item in Raw.
func (s *Source) UnmarshalJSON(b []byte) error {
	return s.decode(slices.Clone(b))
}

// decode reads a source from b, which it keeps in Raw. A source that is not an object keeps
// only Raw.
func (s *Source) decode(b []byte) error {
	s.Raw = b
	return lenient(exactObject(b, func(key, v []byte) error {
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

// Approval is a tool call that waits for a human's approval before it runs.
type Approval struct {
	// ToolType is the type of the tool, taken from Tool.
	ToolType string `json:"-"`
	// Tool is the tool object, raw.
	Tool json.RawMessage `json:"tool"`
	// Payload is the call's payload, raw.
	Payload json.RawMessage `json:"payload"`
	// Raw is the item exactly as received.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the approval, reading the tool's type, and keeps the raw item in Raw.
func (a *Approval) UnmarshalJSON(b []byte) error {
	return a.decode(slices.Clone(b))
}

// decode reads an approval from b, which it keeps in Raw.
func (a *Approval) decode(b []byte) error {
	a.Raw = b
	err := exactObject(b, func(key, v []byte) error {
		switch string(key) {
		case "tool":
			a.Tool = json.RawMessage(v)
		case "payload":
			a.Payload = json.RawMessage(v)
		}
		return nil
	})
	a.ToolType = ""
	_ = exactObject(a.Tool, func(key, v []byte) error { // a tool without a string type keeps ToolType empty
		if string(key) == "type" {
			return leaf(v, &a.ToolType)
		}
		return nil
	})
	return lenient(err)
}

// AgentQueryResponse is the answer to AgentQuery: where the message was recorded.
type AgentQueryResponse struct {
	// MessageID identifies the recorded message.
	MessageID string `json:"messageId"`
	// ConversationID is the conversation the message was recorded in; check it against the
	// one you meant.
	ConversationID string `json:"conversationId"`
	// VisitorID identifies the end user.
	VisitorID string `json:"visitorId"`
	// Status is the conversation's status.
	Status ConversationStatus `json:"status"`
	// Raw is the response object exactly as received.
	Raw json.RawMessage `json:"-"`
}

// decodeOwned is UnmarshalJSON for a body the request path hands over: kept without a copy.
// Keys match exactly, as a JavaScript reader matches them: "ConversationId" is not
// "conversationId". A field of an unexpected type is left zero (Raw keeps it), except the answer
// itself: an answer that is not a string is an error, never an empty answer passed on to a user.
func (r *QueryResponse) decodeOwned(b []byte) error {
	err := exactObject(b, func(key, v []byte) error {
		switch string(key) {
		case "answer":
			if s, ok := plainString(v); ok {
				r.Answer = s
			} else if err := json.Unmarshal(v, &r.Answer); err != nil {
				return fmt.Errorf("the answer is not a string: %s", shorten(string(v), 100))
			}
		case "usage":
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
	return lenient(exactObject(b, func(key, v []byte) error {
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
	b, err := json.Marshal(body.wire(streaming))
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
// walks an object once, finding each member's key and the extent of its value; the values of
// known keys are decoded by encoding/json, the others checked with json.Valid.

// errNotObject reports a value that should be a JSON object and is not; lenient drops it.
var errNotObject = &json.UnmarshalTypeError{Value: "non-object", Type: reflect.TypeFor[map[string]any]()}

// errJSONEnd is encoding/json's error for a value cut short.
var errJSONEnd = errors.New("unexpected end of JSON input")

// errNotArray reports a value that should be a JSON array and is not; lenient drops it.
var errNotArray = &json.UnmarshalTypeError{Value: "non-array", Type: reflect.TypeFor[[]any]()}

// exactObject calls member for each member of the JSON object b, in order, with its key
// (unescaped) and its raw value. b must be the object and nothing else but white space.
func exactObject(b []byte, member func(key, value []byte) error) error {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		if !json.Valid(b) {
			return errors.New("invalid JSON")
		}
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
		if !json.Valid(b[i:end]) {
			return syntaxError(b, i, "a JSON string")
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
		if !simpleString(value) && !json.Valid(value) {
			return syntaxError(b, i, "a JSON value")
		}
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
// item's raw JSON. A value that is not an array leaves *items as it was.
func decodeItems[T any](b []byte, items *[]T, decode func(*T, []byte) error) error {
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

// leaf decodes the JSON value b (already checked) into v. A value of another type is not an
// error: v keeps its zero value, and the raw JSON keeps what came. The common plain values are
// read directly, as encoding/json would read them; anything else goes through it.
func leaf(b []byte, v any) error {
	switch v := v.(type) {
	case *string:
		if s, ok := plainString(b); ok {
			*v = s
			return nil
		}
	case *ConversationStatus:
		if s, ok := plainString(b); ok {
			*v = ConversationStatus(s)
			return nil
		}
	case *int:
		if n, err := strconv.Atoi(string(b)); err == nil {
			*v = n
			return nil
		}
	case *float64:
		if f, err := strconv.ParseFloat(string(b), 64); err == nil {
			*v = f
			return nil
		}
	case *bool:
		if string(b) == "true" || string(b) == "false" {
			*v = string(b) == "true"
			return nil
		}
	}
	return lenient(json.Unmarshal(b, v))
}

// plainString returns the JSON string b when it has no escape and is valid UTF-8: its text is
// then its bytes.
func plainString(b []byte) (string, bool) {
	if !simpleString(b) || !utf8.Valid(b) {
		return "", false
	}
	return string(b[1 : len(b)-1]), true
}

// simpleString reports whether b, a value delimited by valueEnd, is a JSON string without
// escapes or control characters: valid JSON without a scan by encoding/json.
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
