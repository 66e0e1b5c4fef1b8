package laburen

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const okAnswer = `{"answer":"Hello!","usage":{"completionTokens":28,"promptTokens":1250,"totalTokens":1278,"cost":0.0064},` +
	`"sources":[{"source":"FAQ.pdf","chunk":"To check your order status..."}],"approvals":[],` +
	`"messageId":"clmsg","conversationId":"clconv","visitorId":"clvis","request_human":false,"status":"UNRESOLVED"}`

// fullQuery sets every field of QueryRequest to a value that is not its zero value.
func fullQuery() QueryRequest {
	return QueryRequest{
		Query:            "Where is my order?",
		ConversationID:   "crmchatsappai_12_345",
		VisitorID:        "visitor-1",
		Channel:          ChannelWebsite,
		Context:          "The customer is a VIP.",
		SystemPrompt:     "You are a helpful agent.",
		UserPrompt:       "Answer briefly: {query}",
		ModelName:        ModelGPT4oMini,
		Temperature:      Ptr(0.2),
		MaxTokens:        Ptr(512),
		PresencePenalty:  Ptr(-0.5),
		FrequencyPenalty: Ptr(1.5),
		TopP:             Ptr(0.9),
		Filters:          &Filters{CustomIDs: []string{"c1"}, DatasourceIDs: []string{"d1", "d2"}, DatastoreIDs: []string{"s1"}},
		PromptType:       PromptTypeCustomerSupport,
		PromptTemplate:   "legacy {query}",
		Attachments: []Attachment{
			{Name: "invoice.pdf", URL: "https://files.example.com/invoice.pdf", Size: 2048, MimeType: "application/pdf"},
			{URL: "http://files.example.com/photo.png"},
		},
		Contact:    &Contact{Email: "ana@example.com", PhoneNumber: "+5491155550000", FirstName: "Ana", LastName: "Pérez", UserID: "u-1"},
		WebhookURL: "https://hooks.example.com/laburen",
	}
}

func TestQueryRequestShape(t *testing.T) {
	tests := []struct {
		name   string
		golden string
		req    QueryRequest
	}{
		{"only the query", "query_minimal", QueryRequest{Query: "Where is my order?"}},
		{"every field", "query_full", fullQuery()},
		{"zero numbers are sent", "query_zero_numbers", QueryRequest{
			Query: "Hi", Temperature: Ptr(0.0), PresencePenalty: Ptr(0.0), FrequencyPenalty: Ptr(0.0), TopP: Ptr(0.0),
		}},
		{"extra fields", "query_extra", QueryRequest{
			Query: "Hi", Channel: ChannelAPI,
			Extra: map[string]any{"newFeature": true, "options": map[string]any{"level": 2}},
		}},
		{"empty filters and contact", "query_empty_objects", QueryRequest{Query: "Hi", Filters: &Filters{}, Contact: &Contact{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newMockClient(t, http.StatusOK, okAnswer)
			_, err := c.Query(context.Background(), "agent-1", tt.req)
			require.NoError(t, err)
			reqs := srv.all()
			require.Len(t, reqs, 1)
			assert.Equal(t, http.MethodPost, reqs[0].Method)
			assert.Equal(t, "/api/agents/agent-1/query", reqs[0].Path)
			assertGolden(t, tt.golden, reqs[0].Body)
		})
	}
}

// TestQueryFullGoldenCoversEveryField keeps the "every field" golden honest: each JSON field of
// QueryRequest appears in it.
func TestQueryFullGoldenCoversEveryField(t *testing.T) {
	c, srv := newMockClient(t, http.StatusOK, okAnswer)
	_, err := c.Query(context.Background(), "agent-1", fullQuery())
	require.NoError(t, err)
	var sent map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(srv.all()[0].Body, &sent))
	for name := range jsonNames(reflect.TypeOf(QueryRequest{})) {
		assert.Contains(t, sent, name)
	}
	for _, name := range []string{"custom_ids", "datasource_ids", "datastore_ids"} {
		assert.Contains(t, string(sent["filters"]), `"`+name+`"`)
	}
	assert.NotContains(t, sent, "streaming", "a plain query leaves streaming out")
}

func TestRequestHeaders(t *testing.T) {
	tests := []struct {
		name      string
		opts      []Option
		wantAuth  string
		wantUA    string
		wantExtra map[string]string
	}{
		{name: "defaults", wantAuth: "Bearer " + testKey, wantUA: "laburen-go/" + Version},
		{
			name:     "user agent product and extra headers",
			opts:     []Option{WithUserAgent("my-bridge/1.2"), WithHeader("X-Tenant", "t1")},
			wantAuth: "Bearer " + testKey, wantUA: "my-bridge/1.2 laburen-go/" + Version,
			wantExtra: map[string]string{"X-Tenant": "t1"},
		},
		{name: "no key, no Authorization", opts: []Option{WithAPIKey("")}, wantUA: "laburen-go/" + Version},
		{name: "key is trimmed", opts: []Option{WithAPIKey("  other-key \n")}, wantAuth: "Bearer other-key", wantUA: "laburen-go/" + Version},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newMockClient(t, http.StatusOK, okAnswer, tt.opts...)
			_, err := c.Query(context.Background(), "agent-1", QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			h := srv.all()[0].Header
			assert.Equal(t, "application/json", h.Get("Content-Type"))
			assert.Equal(t, "application/json", h.Get("Accept"))
			assert.Equal(t, tt.wantUA, h.Get("User-Agent"))
			assert.Equal(t, tt.wantAuth, h.Get("Authorization"))
			_, hasAuth := h["Authorization"]
			assert.Equal(t, tt.wantAuth != "", hasAuth)
			for k, v := range tt.wantExtra {
				assert.Equal(t, v, h.Get(k))
			}
		})
	}
}

func TestAgentIDIsPathEscaped(t *testing.T) {
	tests := []struct {
		agentID string
		want    string
	}{
		{"clx1y2z3", "/api/agents/clx1y2z3/query"},
		{"my agent", "/api/agents/my%20agent/query"},
		{"a/b", "/api/agents/a%2Fb/query"},
		{"a?b#c", "/api/agents/a%3Fb%23c/query"},
		{"a%2Fb", "/api/agents/a%252Fb/query"},
		{"ñandú", "/api/agents/%C3%B1and%C3%BA/query"},
		{"..a", "/api/agents/..a/query"},
	}
	for _, tt := range tests {
		t.Run(tt.agentID, func(t *testing.T) {
			c, srv := newMockClient(t, http.StatusOK, okAnswer)
			_, err := c.Query(context.Background(), tt.agentID, QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			assert.Equal(t, tt.want, srv.all()[0].Path)
		})
	}
}

func TestBaseURLPath(t *testing.T) {
	for _, base := range []string{"https://h.test/api", "https://h.test/api/", "https://h.test/api//"} {
		t.Run(base, func(t *testing.T) {
			c, srv := newMockClient(t, http.StatusOK, okAnswer, WithBaseURL(base))
			_, err := c.Query(context.Background(), "x", QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			assert.Equal(t, "/api/agents/x/query", srv.all()[0].Path)
		})
	}
}

func TestQueryValidation(t *testing.T) {
	ok := func(mod func(*QueryRequest)) QueryRequest {
		r := QueryRequest{Query: "Hi"}
		mod(&r)
		return r
	}
	tests := []struct {
		name    string
		agentID string
		req     QueryRequest
		field   string
	}{
		{"empty agent", "", QueryRequest{Query: "Hi"}, "agentID"},
		{"blank agent", "  ", QueryRequest{Query: "Hi"}, "agentID"},
		{"agent with newline", "a\nb", QueryRequest{Query: "Hi"}, "agentID"},
		{"agent dot", ".", QueryRequest{Query: "Hi"}, "agentID"},
		{"agent dot dot", "..", QueryRequest{Query: "Hi"}, "agentID"},
		{"agent invalid UTF-8", "a\xffb", QueryRequest{Query: "Hi"}, "agentID"},
		{"empty query", "a", QueryRequest{}, "query"},
		{"blank query", "a", QueryRequest{Query: " \t\n"}, "query"},
		{"query invalid UTF-8", "a", QueryRequest{Query: "caf\xe9"}, "query"},
		{"unknown channel", "a", ok(func(r *QueryRequest) { r.Channel = "fax" }), "channel"},
		{"channel wrong case", "a", ok(func(r *QueryRequest) { r.Channel = "WhatsApp" }), "channel"},
		{"temperature NaN", "a", ok(func(r *QueryRequest) { r.Temperature = Ptr(math.NaN()) }), "temperature"},
		{"temperature +Inf", "a", ok(func(r *QueryRequest) { r.Temperature = Ptr(math.Inf(1)) }), "temperature"},
		{"temperature negative", "a", ok(func(r *QueryRequest) { r.Temperature = Ptr(-0.1) }), "temperature"},
		{"temperature above 2", "a", ok(func(r *QueryRequest) { r.Temperature = Ptr(2.01) }), "temperature"},
		{"presence penalty below -2", "a", ok(func(r *QueryRequest) { r.PresencePenalty = Ptr(-2.5) }), "presencePenalty"},
		{"frequency penalty -Inf", "a", ok(func(r *QueryRequest) { r.FrequencyPenalty = Ptr(math.Inf(-1)) }), "frequencyPenalty"},
		{"topP above 1", "a", ok(func(r *QueryRequest) { r.TopP = Ptr(1.5) }), "topP"},
		{"maxTokens zero", "a", ok(func(r *QueryRequest) { r.MaxTokens = Ptr(0) }), "maxTokens"},
		{"maxTokens negative", "a", ok(func(r *QueryRequest) { r.MaxTokens = Ptr(-3) }), "maxTokens"},
		{"blank system prompt", "a", ok(func(r *QueryRequest) { r.SystemPrompt = "   " }), "systemPrompt"},
		{"webhook relative", "a", ok(func(r *QueryRequest) { r.WebhookURL = "/webhook" }), "webhookUrl"},
		{"webhook ftp", "a", ok(func(r *QueryRequest) { r.WebhookURL = "ftp://example.com/hook" }), "webhookUrl"},
		{"webhook no host", "a", ok(func(r *QueryRequest) { r.WebhookURL = "https:///hook" }), "webhookUrl"},
		{"webhook port only", "a", ok(func(r *QueryRequest) { r.WebhookURL = "http://:8080/hook" }), "webhookUrl"},
		{"webhook unparsable", "a", ok(func(r *QueryRequest) { r.WebhookURL = "https://exa mple.com" }), "webhookUrl"},
		{"webhook without scheme", "a", ok(func(r *QueryRequest) { r.WebhookURL = "example.com/hook" }), "webhookUrl"},
		{"attachment without URL", "a", ok(func(r *QueryRequest) { r.Attachments = []Attachment{{Name: "x"}} }), "attachments[0].url"},
		{"second attachment relative", "a", ok(func(r *QueryRequest) {
			r.Attachments = []Attachment{{URL: "https://f.example.com/a"}, {URL: "files/b.png"}}
		}), "attachments[1].url"},
		{"attachment data URL", "a", ok(func(r *QueryRequest) { r.Attachments = []Attachment{{URL: "data:text/plain,hi"}} }), "attachments[0].url"},
		{"attachment negative size", "a", ok(func(r *QueryRequest) {
			r.Attachments = []Attachment{{URL: "https://f.example.com/a", Size: -1}}
		}), "attachments[0].size"},
		{"email without at", "a", ok(func(r *QueryRequest) { r.Contact = &Contact{Email: "ana.example.com"} }), "contact.email"},
		{"email with display name", "a", ok(func(r *QueryRequest) { r.Contact = &Contact{Email: "Ana <ana@example.com>"} }), "contact.email"},
		{"email without domain dot", "a", ok(func(r *QueryRequest) { r.Contact = &Contact{Email: "ana@example"} }), "contact.email"},
		{"email with spaces", "a", ok(func(r *QueryRequest) { r.Contact = &Contact{Email: " ana@example.com"} }), "contact.email"},
		{"chatwoot conversation missing customer", "a", ok(func(r *QueryRequest) { r.ConversationID = "crmchatsappai_12" }), "conversationId"},
		{"chatwoot conversation with spaces", "a", ok(func(r *QueryRequest) { r.ConversationID = "crmchatsappai_12_34 5" }), "conversationId"},
		{"chatwoot conversation empty account", "a", ok(func(r *QueryRequest) { r.ConversationID = "crmchatsappai__345" }), "conversationId"},
		{"extra names a modeled field", "a", ok(func(r *QueryRequest) { r.Extra = map[string]any{"temperature": 1} }), "extra"},
		{"extra sets streaming", "a", ok(func(r *QueryRequest) { r.Extra = map[string]any{"streaming": true} }), "extra"},
		{"extra cannot be encoded", "a", ok(func(r *QueryRequest) { r.Extra = map[string]any{"f": func() {}} }), "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newMockClient(t, http.StatusOK, okAnswer)
			res, err := c.Query(context.Background(), tt.agentID, tt.req)
			require.Error(t, err)
			assert.Nil(t, res)
			var vErr *ValidationError
			require.ErrorAs(t, err, &vErr)
			assert.Equal(t, tt.field, vErr.Field)
			assert.NotEmpty(t, vErr.Reason)
			assert.True(t, strings.HasPrefix(err.Error(), "laburen: query agent "), err.Error())
			assert.Empty(t, srv.all(), "nothing may be sent")
		})
	}
}

func TestQueryValidInputsAreSent(t *testing.T) {
	tests := []struct {
		name string
		req  QueryRequest
	}{
		{"bounds of the numbers", QueryRequest{Query: "Hi", Temperature: Ptr(2.0), TopP: Ptr(1.0),
			PresencePenalty: Ptr(-2.0), FrequencyPenalty: Ptr(2.0), MaxTokens: Ptr(1)}},
		{"every channel", QueryRequest{Query: "Hi", Channel: ChannelCRMChatsAppAI}},
		{"plain conversation ID", QueryRequest{Query: "Hi", ConversationID: "5491155550000"}},
		{"webhook with port and query", QueryRequest{Query: "Hi", WebhookURL: "http://hooks.example.com:8080/h?x=1"}},
		{"contact without email", QueryRequest{Query: "Hi", Contact: &Contact{PhoneNumber: "+54 9 11"}}},
		{"open model name", QueryRequest{Query: "Hi", ModelName: "brand_new_model"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newMockClient(t, http.StatusOK, okAnswer)
			_, err := c.Query(context.Background(), "a", tt.req)
			require.NoError(t, err)
			assert.Len(t, srv.all(), 1)
		})
	}
	for _, ch := range Channels() {
		c, srv := newMockClient(t, http.StatusOK, okAnswer)
		_, err := c.Query(context.Background(), "a", QueryRequest{Query: "Hi", Channel: ch})
		require.NoError(t, err, ch)
		assert.Len(t, srv.all(), 1)
	}
}

func TestQueryResponseDecoding(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, r *QueryResponse)
	}{
		{"documented response", okAnswer, func(t *testing.T, r *QueryResponse) {
			assert.Equal(t, "Hello!", r.Answer)
			assert.Equal(t, Usage{CompletionTokens: 28, PromptTokens: 1250, TotalTokens: 1278, Cost: 0.0064}, r.Usage)
			require.Len(t, r.Sources, 1)
			assert.Equal(t, "FAQ.pdf", r.Sources[0].Source)
			assert.Equal(t, "To check your order status...", r.Sources[0].Chunk)
			assert.JSONEq(t, `{"source":"FAQ.pdf","chunk":"To check your order status..."}`, string(r.Sources[0].Raw))
			assert.Empty(t, r.Approvals)
			assert.Equal(t, "clmsg", r.MessageID)
			assert.Equal(t, "clconv", r.ConversationID)
			assert.Equal(t, "clvis", r.VisitorID)
			assert.False(t, r.RequestHuman)
			assert.Equal(t, StatusUnresolved, r.Status)
			assert.JSONEq(t, okAnswer, string(r.Raw))
		}},
		{"every field missing", `{}`, func(t *testing.T, r *QueryResponse) {
			assert.Equal(t, QueryResponse{Raw: json.RawMessage(`{}`)}, *r)
		}},
		{"empty usage, null lists, human requested", `{"answer":"","usage":{},"sources":null,"request_human":true,"status":"HUMAN_REQUESTED"}`,
			func(t *testing.T, r *QueryResponse) {
				assert.Equal(t, Usage{}, r.Usage)
				assert.Nil(t, r.Sources)
				assert.True(t, r.RequestHuman)
				assert.Equal(t, StatusHumanRequested, r.Status)
			}},
		{"unknown fields and status are kept", `{"answer":"a","status":"SNOOZED","metadata":{"k":[1,2]},"brandNew":{"x":1}}`,
			func(t *testing.T, r *QueryResponse) {
				assert.Equal(t, ConversationStatus("SNOOZED"), r.Status)
				assert.JSONEq(t, `{"k":[1,2]}`, string(r.Metadata))
				var raw map[string]json.RawMessage
				require.NoError(t, json.Unmarshal(r.Raw, &raw))
				assert.JSONEq(t, `{"x":1}`, string(raw["brandNew"]))
			}},
		{"rich sources", `{"sources":[{"chunk":"c","datasource_id":"ds1","datasource_name":"Docs","datasource_type":"file",` +
			`"source_url":"https://x.example/doc","score":0,"page_number":3,"custom_id":"k"}]}`,
			func(t *testing.T, r *QueryResponse) {
				require.Len(t, r.Sources, 1)
				s := r.Sources[0]
				assert.Equal(t, "ds1", s.DatasourceID)
				assert.Equal(t, "Docs", s.DatasourceName)
				assert.Equal(t, "file", s.DatasourceType)
				assert.Equal(t, "https://x.example/doc", s.SourceURL)
				require.NotNil(t, s.Score)
				assert.Equal(t, 0.0, *s.Score)
				require.NotNil(t, s.PageNumber)
				assert.Equal(t, 3, *s.PageNumber)
				assert.Contains(t, string(s.Raw), `"custom_id":"k"`)
			}},
		{"approvals", `{"answer":"","approvals":[{"tool":{"id":"t1","type":"http","config":{}},"payload":{"a":1}},{"tool":"odd","payload":null}]}`,
			func(t *testing.T, r *QueryResponse) {
				require.Len(t, r.Approvals, 2)
				assert.Equal(t, "http", r.Approvals[0].ToolType)
				assert.JSONEq(t, `{"a":1}`, string(r.Approvals[0].Payload))
				assert.Contains(t, string(r.Approvals[0].Raw), `"id":"t1"`)
				assert.Empty(t, r.Approvals[1].ToolType)
				assert.Equal(t, `"odd"`, string(r.Approvals[1].Tool))
			}},
		{"odd types inside items keep the answer", `{"answer":"a","usage":{"totalTokens":"12","cost":0.5},` +
			`"sources":[{"source":"s","score":"0.8","page_number":"iv"}],"approvals":[{"tool":{"type":7},"payload":1}]}`,
			func(t *testing.T, r *QueryResponse) {
				assert.Equal(t, "a", r.Answer)
				assert.Equal(t, Usage{Cost: 0.5}, r.Usage)
				require.Len(t, r.Sources, 1)
				assert.Equal(t, "s", r.Sources[0].Source)
				assert.Nil(t, r.Sources[0].Score)
				assert.Contains(t, string(r.Sources[0].Raw), `"score":"0.8"`)
				require.Len(t, r.Approvals, 1)
				assert.Empty(t, r.Approvals[0].ToolType)
				assert.Contains(t, string(r.Raw), `"totalTokens":"12"`)
			}},
		{"surrounding whitespace", "\n  " + `{"answer":"a"}` + "\n", func(t *testing.T, r *QueryResponse) {
			assert.Equal(t, "a", r.Answer)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newMockClient(t, http.StatusOK, tt.body)
			res, err := c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			tt.check(t, res)
		})
	}
}

func TestResponseSizeLimit(t *testing.T) {
	body := `{"answer":"` + strings.Repeat("x", 200) + `"}`
	c, _ := newMockClient(t, http.StatusOK, body, WithMaxEventSize(100))
	_, err := c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exceeds 100 bytes")

	res, err := c.Query(context.Background(), "a", QueryRequest{Query: "Hi"}, WithMaxEventSize(len(body)))
	require.NoError(t, err, "a per-call option raises the limit")
	assert.Len(t, res.Answer, 200)
}

func TestPerCallOptionErrors(t *testing.T) {
	c, srv := newMockClient(t, http.StatusOK, okAnswer)
	_, err := c.Query(context.Background(), "a", QueryRequest{Query: "Hi"}, WithMaxRetries(-1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `laburen: query agent "a": WithMaxRetries`)
	_, err = c.AgentQuery(context.Background(), "a", AgentQueryRequest{Query: "Hi"}, WithBaseURL("nope"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WithBaseURL")
	assert.Empty(t, srv.all())
}

func TestPtr(t *testing.T) {
	p := Ptr(0.0)
	require.NotNil(t, p)
	assert.Equal(t, 0.0, *p)
	q := Ptr(0.0)
	assert.NotSame(t, p, q)
	b, err := json.Marshal(QueryRequest{Query: "q", Temperature: Ptr(0.0), MaxTokens: nil})
	require.NoError(t, err)
	assert.JSONEq(t, `{"query":"q","temperature":0}`, string(b))
}

func TestChannels(t *testing.T) {
	assert.Len(t, Channels(), 15)
	want := strings.Fields("api dashboard website form whatsapp telegram slack meta crisp zapier mail mercadolibre agent_builder chatwoot crmchatsappai")
	got := make([]string, len(Channels()))
	for i, ch := range Channels() {
		got[i] = string(ch)
		assert.True(t, ch.Valid())
	}
	assert.Equal(t, want, got)
	Channels()[0] = "sms" // a copy: the valid set does not change
	assert.False(t, Channel("sms").Valid())
	assert.True(t, ChannelAPI.Valid())
	for _, bad := range []Channel{"", "API", "sms", "whatsapp "} {
		assert.False(t, bad.Valid(), bad)
	}
}

func TestErrorsWrapValidation(t *testing.T) {
	c, _ := newMockClient(t, http.StatusOK, okAnswer)
	_, err := c.Query(context.Background(), "a", QueryRequest{})
	var vErr *ValidationError
	require.True(t, errors.As(err, &vErr))
	assert.Equal(t, `laburen: query agent "a": invalid query: is empty`, err.Error())
}

func TestQueryResponseLenientTopLevel(t *testing.T) {
	tests := []struct {
		name, body string
		answer     string
		errPart    string
	}{
		{"request_human as a string", `{"answer":"Hi","request_human":"false","status":"RESOLVED"}`, "Hi", ""},
		{"conversationId as a number", `{"conversationId":12,"answer":"Hi"}`, "Hi", ""},
		{"null answer", `{"answer":null,"request_human":"x"}`, "", ""},
		{"answer as a number", `{"request_human":"x","answer":42}`, "", "the answer is not a string: 42"},
		{"answer as an object", `{"answer":{"text":"Hi"}}`, "", "the answer is not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newMockClient(t, http.StatusOK, tt.body)
			res, err := c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
			if tt.errPart != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.errPart)
				assert.NotContains(t, err.Error(), "plain")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.answer, res.Answer)
			assert.JSONEq(t, tt.body, string(res.Raw))
		})
	}
}

// TestResponseKeysMatchExactly: a response's keys are matched as a JavaScript reader matches
// them: exactly, the last duplicate winning, escapes resolved. A key that differs only by case
// is not the field (encoding/json would take it, and the last of the two would win).
func TestResponseKeysMatchExactly(t *testing.T) {
	tests := []struct {
		name, body string
		check      func(t *testing.T, r *QueryResponse)
	}{
		{"case variant after", `{"conversationId":"A","CONVERSATIONID":"B"}`,
			func(t *testing.T, r *QueryResponse) { assert.Equal(t, "A", r.ConversationID) }},
		{"case variant before", `{"ConversationId":"B","conversationId":"A"}`,
			func(t *testing.T, r *QueryResponse) { assert.Equal(t, "A", r.ConversationID) }},
		{"case variant alone", `{"CONVERSATIONID":"B","Answer":"no"}`,
			func(t *testing.T, r *QueryResponse) {
				assert.Equal(t, []string{"", ""}, []string{r.ConversationID, r.Answer})
			}},
		{"last duplicate wins", `{"conversationId":"A","conversationId":"C"}`,
			func(t *testing.T, r *QueryResponse) { assert.Equal(t, "C", r.ConversationID) }},
		{"last duplicate wins when null", `{"conversationId":"A","conversationId":null}`,
			func(t *testing.T, r *QueryResponse) { assert.Equal(t, "", r.ConversationID) }},
		{"last duplicate wins when of another type", `{"conversationId":"A","conversationId":5,` +
			`"request_human":true,"request_human":"yes","status":"RESOLVED","status":[],"usage":{"cost":1},"usage":null,` +
			`"sources":[{"source":"a"}],"sources":{},"answer":"A","answer":null,"usage":{"totalTokens":2}}`,
			func(t *testing.T, r *QueryResponse) {
				assert.Equal(t, QueryResponse{Usage: Usage{TotalTokens: 2}}, QueryResponse{ConversationID: r.ConversationID,
					RequestHuman: r.RequestHuman, Status: r.Status, Usage: r.Usage, Sources: r.Sources, Answer: r.Answer})
			}},
		{"escaped key", `{"conversation\u0049d":"E"}`,
			func(t *testing.T, r *QueryResponse) { assert.Equal(t, "E", r.ConversationID) }},
		{"nested usage", `{"usage":{"totalTokens":1,"TotalTokens":2,"COST":9}}`,
			func(t *testing.T, r *QueryResponse) { assert.Equal(t, Usage{TotalTokens: 1}, r.Usage) }},
		{"nested source", `{"sources":[{"source":"a","Source":"b","SCORE":1}]}`, func(t *testing.T, r *QueryResponse) {
			require.Len(t, r.Sources, 1)
			assert.Equal(t, "a", r.Sources[0].Source)
			assert.Nil(t, r.Sources[0].Score)
			assert.JSONEq(t, `{"source":"a","Source":"b","SCORE":1}`, string(r.Sources[0].Raw))
		}},
		{"approval tool type", `{"approvals":[{"tool":{"type":"http","TYPE":"x"},"Tool":{}}]}`, func(t *testing.T, r *QueryResponse) {
			require.Len(t, r.Approvals, 1)
			assert.Equal(t, "http", r.Approvals[0].ToolType)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newMockClient(t, http.StatusOK, tt.body)
			res, err := c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			tt.check(t, res)
			assert.Equal(t, tt.body, string(res.Raw))

			var viaJSON QueryResponse
			require.NoError(t, json.Unmarshal([]byte(tt.body), &viaJSON))
			tt.check(t, &viaJSON)
		})
	}
	t.Run("agent query", func(t *testing.T) {
		c, _ := newMockClient(t, http.StatusOK, `{"conversationId":"A","CONVERSATIONID":"B","MessageId":"x"}`)
		res, err := c.AgentQuery(context.Background(), "a", AgentQueryRequest{Query: "Hi"})
		require.NoError(t, err)
		assert.Equal(t, []string{"A", ""}, []string{res.ConversationID, res.MessageID})
	})
}

// TestResponseJSONStillChecked: the exact-key reading refuses what encoding/json refuses.
func TestResponseJSONStillChecked(t *testing.T) {
	for _, body := range []string{
		`{"answer":"x",}`, `{"answer" "x"}`, `{"answer":"x"}x`, `{"answer":"x"}}`, `{'answer':"x"}`,
		`{"answer":"x","sources":[1,,2]}`, `{"usage":{"cost":01}}`, `{"answer":"x"`, `{"a":tru}`, `{"a":"\x"}`,
		"{\"answer\":\"a\x01b\"}", // a raw control character in a string without escapes
	} {
		t.Run(body, func(t *testing.T) {
			var r QueryResponse
			assert.Error(t, r.decodeOwned([]byte(body)))
			assert.False(t, json.Valid([]byte(body)))
		})
	}
}

// FuzzExactObject holds the exact-key walker to encoding/json: it accepts an object exactly
// when json.Valid does, and finds the keys and last values that a map decoding finds.
func FuzzExactObject(f *testing.F) {
	f.Add(`{"a":1,"A":[1,{"b":"}"}],"c":"\"x"}`)
	f.Add(`{"conversation\u0049d":"E","conversationId":null}`)
	f.Add(`{ "a" : { } , "b" : [ ] }`)
	f.Add(`{"a":1,}`)
	f.Fuzz(func(t *testing.T, body string) {
		got := map[string]string{}
		err := exactObject([]byte(body), func(key, value []byte) error {
			got[string(key)] = string(value)
			return nil
		})
		var want map[string]json.RawMessage
		werr := json.Unmarshal([]byte(body), &want)
		if werr != nil {
			if _, isType := werr.(*json.UnmarshalTypeError); isType || json.Valid([]byte(body)) {
				assert.Error(t, err, "not an object")
				return
			}
			assert.Error(t, err, "invalid JSON")
			return
		}
		if want == nil { // null
			assert.Error(t, err)
			return
		}
		require.NoError(t, err)
		require.Len(t, got, len(want))
		for k, v := range want {
			assert.Equal(t, string(v), got[k], k)
		}
	})
}
