package laburentest

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"

	"github.com/laburen/laburen-go"
)

// Responder writes the AI agent's answer to a query. ctx ends when the client goes away, or,
// for a query queued in conversational mode, when the server closes. agentID is the agent
// named in the path; req is the request as received, with ConversationID and VisitorID set to
// the conversation the server chose, so that a responder can read the history with
// Server.Conversation (the user's message is already in it). Extra holds the body fields
// laburen.QueryRequest does not model.
//
// An error fails the query before any answer is sent: an *laburen.APIError with a StatusCode
// is answered with that status and {"error": Code or Message}; any other error with a 500
// {"error":"INTERNAL_SERVER_ERROR"}. A Responder is called from several goroutines at once.
type Responder func(ctx context.Context, agentID string, req laburen.QueryRequest) (Reply, error)

// Reply is the AI agent's answer to a query, as a Responder writes it. Only Answer is needed;
// the server fills the rest.
type Reply struct {
	// Answer is the answer text. A stream sends it in word-sized chunks.
	Answer string
	// Sources are the knowledge-base chunks to report; each is sent as its Raw JSON when it has
	// one, else as its non-empty fields.
	Sources []laburen.Source
	// Approvals are tool calls waiting for approval; each is sent as its Raw JSON when it has
	// one, else as {"tool": Tool, "payload": Payload}.
	Approvals []laburen.Approval
	// Usage is the usage to report; nil counts the words of the query and of the answer.
	Usage *laburen.Usage
	// RequestHuman sets request_human; the conversation's status then becomes
	// StatusHumanRequested unless Status says otherwise.
	RequestHuman bool
	// Status, when set, becomes the conversation's status.
	Status laburen.ConversationStatus
	// Messages are the chat messages of a webhook delivery; nil splits Answer at blank lines.
	Messages []string
	// Metadata, when set, is sent as the response's "metadata".
	Metadata map[string]any
	// Events are events a stream sends before the answer, in order, such as a tool call.
	// A JSON answer and a webhook delivery leave them out.
	Events []Event
}

// Event is a named stream event of a Reply, such as
// Event{Name: "tool_call", Data: `{"name":"track_order"}`}. Data is encoded like every payload
// of the stream. Name must not contain a line break; an empty Name sends an unnamed event.
type Event struct {
	Name string
	Data string
}

// DefaultResponder is the server's responder unless WithResponder sets another. It needs no
// model: its answer is always "Hello from laburentest! You said: " followed by the query.
func DefaultResponder(_ context.Context, _ string, req laburen.QueryRequest) (Reply, error) {
	return Reply{Answer: "Hello from laburentest! You said: " + req.Query}, nil
}

// Answer returns a Responder that always answers text.
func Answer(text string) Responder {
	return func(context.Context, string, laburen.QueryRequest) (Reply, error) {
		return Reply{Answer: text}, nil
	}
}

// queryResponse is the JSON answer of /query, in the API's field order.
type queryResponse struct {
	Answer         string                     `json:"answer"`
	Usage          usage                      `json:"usage"`
	Sources        []any                      `json:"sources"`
	Approvals      []any                      `json:"approvals"`
	MessageID      string                     `json:"messageId"`
	ConversationID string                     `json:"conversationId"`
	VisitorID      string                     `json:"visitorId"`
	RequestHuman   bool                       `json:"request_human"`
	Status         laburen.ConversationStatus `json:"status"`
	Metadata       map[string]any             `json:"metadata,omitempty"`
}

type usage struct {
	CompletionTokens int     `json:"completionTokens"`
	PromptTokens     int     `json:"promptTokens"`
	TotalTokens      int     `json:"totalTokens"`
	Cost             float64 `json:"cost"`
}

// agentQueryResponse is the JSON answer of /query-agent.
type agentQueryResponse struct {
	MessageID      string                     `json:"messageId"`
	ConversationID string                     `json:"conversationId"`
	VisitorID      string                     `json:"visitorId"`
	Status         laburen.ConversationStatus `json:"status"`
}

// agentQueryStreamResponse is the endpoint_response of a streamed /query-agent: the recorded
// message as the answer.
type agentQueryStreamResponse struct {
	MessageID      string                     `json:"messageId"`
	Answer         string                     `json:"answer"`
	ConversationID string                     `json:"conversationId"`
	VisitorID      string                     `json:"visitorId"`
	Status         laburen.ConversationStatus `json:"status"`
}

// queuedResponse is the immediate answer of a query in conversational mode.
type queuedResponse struct {
	Status         string `json:"status"`
	ConversationID string `json:"conversationId"`
	VisitorID      string `json:"visitorId"`
	InputMessageID string `json:"inputMessageId"`
	Message        string `json:"message"`
	WebhookURL     string `json:"webhookUrl"`
}

const queuedMessage = "Your message has been queued. Response will be sent to the provided webhookUrl after processing."

// webhookBody is the body of an agent.response webhook delivery.
type webhookBody struct {
	ConversationID string          `json:"conversationId"`
	Messages       []webhookText   `json:"messages"`
	AgentResponse  json.RawMessage `json:"agentResponse"`
}

type webhookText struct {
	Text string `json:"text"`
}

// wireSource is a source's non-empty fields.
type wireSource struct {
	Source         string   `json:"source,omitempty"`
	Chunk          string   `json:"chunk,omitempty"`
	DatasourceID   string   `json:"datasource_id,omitempty"`
	DatasourceName string   `json:"datasource_name,omitempty"`
	DatasourceType string   `json:"datasource_type,omitempty"`
	SourceURL      string   `json:"source_url,omitempty"`
	Score          *float64 `json:"score,omitempty"`
	PageNumber     *int     `json:"page_number,omitempty"`
}

// wireApproval is an approval built from its parts.
type wireApproval struct {
	Tool    any             `json:"tool"`
	Payload json.RawMessage `json:"payload"`
}

// buildResponse assembles the response object of a reply.
func buildResponse(rep Reply, query, messageID, conversationID, visitorID string, status laburen.ConversationStatus) queryResponse {
	res := queryResponse{
		Answer:         rep.Answer,
		Sources:        []any{},
		Approvals:      []any{},
		MessageID:      messageID,
		ConversationID: conversationID,
		VisitorID:      visitorID,
		RequestHuman:   rep.RequestHuman,
		Status:         status,
		Metadata:       rep.Metadata,
	}
	if rep.Usage != nil {
		res.Usage = usage(*rep.Usage)
	} else {
		prompt, completion := len(strings.Fields(query)), len(strings.Fields(rep.Answer))
		res.Usage = usage{
			PromptTokens:     prompt,
			CompletionTokens: completion,
			TotalTokens:      prompt + completion,
			Cost:             float64(prompt+completion) / 100000,
		}
	}
	for _, src := range rep.Sources {
		if len(src.Raw) > 0 {
			res.Sources = append(res.Sources, src.Raw)
			continue
		}
		res.Sources = append(res.Sources, wireSource{src.Source, src.Chunk, src.DatasourceID,
			src.DatasourceName, src.DatasourceType, src.SourceURL, src.Score, src.PageNumber})
	}
	for _, a := range rep.Approvals {
		if len(a.Raw) > 0 {
			res.Approvals = append(res.Approvals, a.Raw)
			continue
		}
		w := wireApproval{Tool: a.Tool, Payload: a.Payload}
		if len(a.Tool) == 0 {
			w.Tool = map[string]string{"type": a.ToolType}
		}
		if len(w.Payload) == 0 {
			w.Payload = json.RawMessage("null")
		}
		res.Approvals = append(res.Approvals, w)
	}
	return res
}

// webhookMessages splits an answer into chat messages at blank lines.
func webhookMessages(rep Reply) []webhookText {
	parts := rep.Messages
	if parts == nil {
		for p := range strings.SplitSeq(strings.ReplaceAll(rep.Answer, "\r\n", "\n"), "\n\n") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
	}
	out := make([]webhookText, 0, len(parts))
	for _, p := range parts {
		out = append(out, webhookText{Text: p})
	}
	return out
}

// marshal encodes v as JSON.stringify would: without escaping <, > and &.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
