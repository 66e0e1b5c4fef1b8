package laburentest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

func TestClientQueryAndHistory(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	c := srv.Client()
	ctx := context.Background()
	agent := laburentest.DefaultAgentID

	res, err := c.Query(ctx, agent, laburen.QueryRequest{Query: "Where is my order?"})
	require.NoError(t, err)
	assert.Equal(t, "Hello from laburentest! You said: Where is my order?", res.Answer)
	assert.Equal(t, laburen.StatusUnresolved, res.Status)
	assert.Equal(t, 13, res.Usage.TotalTokens)

	m, err := c.AgentQuery(ctx, agent, laburen.AgentQueryRequest{Query: "It ships today", ConversationID: res.ConversationID,
		Metadata: map[string]any{"operator": "ana"}})
	require.NoError(t, err)
	assert.Equal(t, res.ConversationID, m.ConversationID)
	assert.Equal(t, res.VisitorID, m.VisitorID)
	assert.Equal(t, laburen.StatusUnresolved, m.Status)

	res2, err := c.Query(ctx, agent, laburen.QueryRequest{Query: "Thanks", ConversationID: res.ConversationID})
	require.NoError(t, err)
	assert.Equal(t, res.ConversationID, res2.ConversationID)

	conv, ok := srv.Conversation(res.ConversationID)
	require.True(t, ok)
	assert.Equal(t, agent, conv.AgentID)
	assert.Equal(t, res.VisitorID, conv.VisitorID)
	assert.Equal(t, laburen.ChannelAPI, conv.Channel)
	type msg struct {
		Role laburentest.Role
		Text string
	}
	var got []msg
	for _, m := range conv.Messages {
		got = append(got, msg{m.Role, m.Text})
	}
	assert.Equal(t, []msg{
		{laburentest.RoleUser, "Where is my order?"},
		{laburentest.RoleAI, res.Answer},
		{laburentest.RoleAgent, "It ships today"},
		{laburentest.RoleUser, "Thanks"},
		{laburentest.RoleAI, res2.Answer},
	}, got)
	assert.Equal(t, res.MessageID, conv.Messages[1].ID)
	assert.Equal(t, m.MessageID, conv.Messages[2].ID)
	assert.Equal(t, map[string]any{"operator": "ana"}, conv.Messages[2].Metadata)

	// The copies are the caller's.
	conv.Messages[0].Text = "changed"
	again, _ := srv.Conversation(res.ConversationID)
	assert.Equal(t, "Where is my order?", again.Messages[0].Text)
	assert.Len(t, srv.Conversations(), 1)
	_, ok = srv.Conversation("nope")
	assert.False(t, ok)
}

func TestRequestsRecorded(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	srv.RateLimitNext(1, 0)

	_, err := srv.Client(laburen.WithUserAgent("my-app/1.0")).Query(context.Background(), "agent handle", laburen.QueryRequest{Query: "hi"})
	require.ErrorIs(t, err, laburen.ErrNotFound, "the retry reaches an unknown agent")

	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	for i, want := range []int{http.StatusTooManyRequests, http.StatusNotFound} {
		r := reqs[i]
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "/api/agents/agent handle/query", r.Path)
		assert.Equal(t, "/api/agents/agent%20handle/query", r.RequestURI)
		assert.Equal(t, "agent handle", r.AgentID)
		assert.Equal(t, "Bearer "+laburentest.DefaultAPIKey, r.Header.Get("Authorization"))
		assert.Contains(t, r.Header.Get("User-Agent"), "my-app/1.0")
		assert.JSONEq(t, `{"query":"hi"}`, string(r.Body))
		assert.Equal(t, want, r.StatusCode)
	}
}

func TestContacts(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	c := srv.Client()
	ctx := context.Background()
	agent := laburentest.DefaultAgentID

	steps := []struct {
		name    string
		contact laburen.Contact
		id      string // contactId (query-agent)
		same    int    // the index of the step whose contact it must be, or -1 for a new one
	}{
		{"created", laburen.Contact{Email: "ana@example.com", FirstName: "Ana"}, "", -1},
		{"by email", laburen.Contact{Email: "ana@example.com", PhoneNumber: "5491155550000"}, "", 0},
		{"by phone", laburen.Contact{PhoneNumber: "5491155550000", UserID: "u-1"}, "", 0},
		{"by user ID", laburen.Contact{UserID: "u-1"}, "", 0},
		{"new email and phone", laburen.Contact{Email: "bob@example.com", PhoneNumber: "5491144440000"}, "", -1},
		{"email wins over phone", laburen.Contact{Email: "bob@example.com", PhoneNumber: "5491155550000"}, "", 4},
		{"phone when the email is new", laburen.Contact{Email: "new@example.com", PhoneNumber: "5491155550000"}, "", 0},
		{"by contactId", laburen.Contact{}, "crm-77", -1},
		{"contactId again", laburen.Contact{LastName: "Diaz"}, "crm-77", 7},
	}
	ids := make([]string, len(steps))
	for i, st := range steps {
		var convID string
		if st.id == "" {
			res, err := c.Query(ctx, agent, laburen.QueryRequest{Query: "hi", Contact: &st.contact})
			require.NoError(t, err, st.name)
			convID = res.ConversationID
		} else {
			res, err := c.AgentQuery(ctx, agent, laburen.AgentQueryRequest{Query: "hi", ContactID: st.id, Contact: &st.contact})
			require.NoError(t, err, st.name)
			convID = res.ConversationID
		}
		conv, ok := srv.Conversation(convID)
		require.True(t, ok)
		ids[i] = conv.ContactID
		if st.same >= 0 {
			assert.Equal(t, ids[st.same], ids[i], st.name)
		} else {
			assert.NotContains(t, ids[:i], ids[i], st.name)
		}
	}
	contacts := srv.Contacts()
	require.Len(t, contacts, 3)
	assert.Equal(t, laburentest.Contact{ID: ids[0], Email: "ana@example.com", PhoneNumber: "5491155550000",
		FirstName: "Ana", UserID: "u-1"}, contacts[0])
	assert.Equal(t, "bob@example.com", contacts[1].Email)
	assert.Equal(t, laburentest.Contact{ID: "crm-77", LastName: "Diaz"}, contacts[2])
}

func TestAgentQueryRouting(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	c := srv.Client()
	ctx := context.Background()
	agent := laburentest.DefaultAgentID

	extID, err := laburen.WhatsAppChannelExternalID(laburentest.DefaultOrganizationID, agent, "+54 9 11 5555-0000")
	require.NoError(t, err)
	other, err := laburen.WhatsAppChannelExternalID(laburentest.DefaultOrganizationID, agent, "+54 9 11 4444-0000")
	require.NoError(t, err)
	send := func(id string) string {
		m, err := c.AgentQuery(ctx, agent, laburen.AgentQueryRequest{Query: "hola", Channel: laburen.ChannelWhatsApp, ChannelExternalID: id})
		require.NoError(t, err)
		return m.ConversationID
	}
	first := send(extID)
	assert.Equal(t, first, send(extID), "the same channelExternalId finds the same conversation")
	assert.NotEqual(t, first, send(other))
	conv, _ := srv.Conversation(first)
	assert.Equal(t, laburen.ChannelWhatsApp, conv.Channel)
	assert.Equal(t, extID, conv.ChannelExternalID)
	assert.Len(t, conv.Messages, 2)

	chatwoot, err := laburen.ChatwootConversationID("12", "345")
	require.NoError(t, err)
	m, err := c.AgentQuery(ctx, agent, laburen.AgentQueryRequest{Query: "hi", ConversationID: chatwoot, Channel: laburen.ChannelChatwoot})
	require.NoError(t, err)
	assert.Equal(t, "crmchatsappai_12_345", m.ConversationID)
	_, ok := srv.Conversation("crmchatsappai_12_345")
	assert.True(t, ok)

	// A draft needs a valid key, even on a public agent.
	srv.AddAgent("pub", laburentest.Public())
	res, body := post(t, srv, "/agents/pub/query-agent", "", `{"query":"draft","isDraft":true}`)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, body)
	d, err := c.AgentQuery(ctx, "pub", laburen.AgentQueryRequest{Query: "draft", IsDraft: true})
	require.NoError(t, err)
	conv, _ = srv.Conversation(d.ConversationID)
	assert.True(t, conv.Messages[0].Draft)
}

func TestResponder(t *testing.T) {
	var mu sync.Mutex
	var seen []laburen.QueryRequest
	srv := laburentest.NewServer(laburentest.WithResponder(func(_ context.Context, agentID string, req laburen.QueryRequest) (laburentest.Reply, error) {
		mu.Lock()
		seen = append(seen, req)
		mu.Unlock()
		switch req.Query {
		case "human":
			return laburentest.Reply{Answer: "Passing you to a human.", RequestHuman: true,
				Sources:   []laburen.Source{{Source: "FAQ.pdf", Chunk: "Humans work 9 to 5."}},
				Approvals: []laburen.Approval{{ToolType: "http", Payload: json.RawMessage(`{"a":1}`)}},
				Usage:     &laburen.Usage{TotalTokens: 99}, Metadata: map[string]any{"k": "v"}}, nil
		case "broke":
			return laburentest.Reply{}, errors.New("boom")
		case "limit":
			return laburentest.Reply{}, &laburen.APIError{StatusCode: http.StatusPaymentRequired, Code: "USAGE_LIMIT"}
		}
		return laburentest.Reply{Answer: agentID}, nil
	}))
	defer srv.Close()
	c := srv.Client()
	ctx := context.Background()

	res, err := c.Query(ctx, laburentest.DefaultAgentID, laburen.QueryRequest{Query: "human", VisitorID: "v-1",
		Extra: map[string]any{"newField": "x"}})
	require.NoError(t, err)
	assert.True(t, res.RequestHuman)
	assert.Equal(t, laburen.StatusHumanRequested, res.Status)
	assert.Equal(t, 99, res.Usage.TotalTokens)
	require.Len(t, res.Sources, 1)
	assert.JSONEq(t, `{"source":"FAQ.pdf","chunk":"Humans work 9 to 5."}`, string(res.Sources[0].Raw))
	require.Len(t, res.Approvals, 1)
	assert.Equal(t, "http", res.Approvals[0].ToolType)
	assert.JSONEq(t, `{"k":"v"}`, string(res.Metadata))
	conv, _ := srv.Conversation(res.ConversationID)
	assert.Equal(t, laburen.StatusHumanRequested, conv.Status)

	mu.Lock()
	require.Len(t, seen, 1)
	assert.Equal(t, res.ConversationID, seen[0].ConversationID, "the responder sees the conversation chosen")
	assert.Equal(t, "v-1", seen[0].VisitorID)
	assert.Equal(t, map[string]any{"newField": "x"}, seen[0].Extra)
	mu.Unlock()

	_, err = c.Query(ctx, laburentest.DefaultAgentID, laburen.QueryRequest{Query: "broke"})
	assert.ErrorIs(t, err, laburen.ErrServer)
	_, err = c.Query(ctx, laburentest.DefaultAgentID, laburen.QueryRequest{Query: "limit"})
	assert.ErrorIs(t, err, laburen.ErrUsageLimit)
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name     string
		fault    func(*laburentest.Server)
		wantErr  error
		code     string
		statuses []int // of the requests the query made
	}{
		{"status and body", func(s *laburentest.Server) { s.FailNext(1, 500, `{"error":"INTERNAL_SERVER_ERROR"}`) },
			laburen.ErrServer, "INTERNAL_SERVER_ERROR", []int{500}},
		{"retried 503 then success", func(s *laburentest.Server) { s.FailNext(2, 503, "<html><title>Down</title></html>") },
			nil, "", []int{503, 503, 200}},
		{"rate limited twice then success", func(s *laburentest.Server) { s.RateLimitNext(2, time.Millisecond) },
			nil, "", []int{429, 429, 200}},
		{"rate limited past the retries", func(s *laburentest.Server) { s.RateLimitNext(3, 0) },
			laburen.ErrRateLimited, "RATE_LIMIT", []int{429, 429, 429}},
		{"usage limit", func(s *laburentest.Server) { s.UsageLimitNext(1) },
			laburen.ErrUsageLimit, "USAGE_LIMIT", []int{402}},
		{"stream faults wait for a stream", func(s *laburentest.Server) {
			s.CutStreamNext(1, 0)
			s.StallStreamNext(1, 0)
			s.StreamErrorNext(1, 0, "X")
		},
			nil, "", []int{200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer()
			defer srv.Close()
			tt.fault(srv)

			res, err := srv.Client().Query(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi"})
			var statuses []int
			for _, r := range srv.Requests() {
				statuses = append(statuses, r.StatusCode)
			}
			assert.Equal(t, tt.statuses, statuses)
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.NotEmpty(t, res.Answer)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			var apiErr *laburen.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tt.code, apiErr.Code)
			assert.Empty(t, srv.Conversations(), "a status fault stores nothing")
		})
	}
}

func TestRetryAfterHeader(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{{2 * time.Second, "2"}, {1500 * time.Millisecond, "1.5"}, {0, "0"}, {-1, ""}}
	for _, tt := range tests {
		srv := laburentest.NewServer()
		srv.RateLimitNext(1, tt.d)
		res, body := post(t, srv, queryPath, laburentest.DefaultAPIKey, `{"query":"hi"}`)
		assert.Equal(t, http.StatusTooManyRequests, res.StatusCode)
		assert.Equal(t, `{"error":"RATE_LIMIT"}`, body)
		assert.Equal(t, tt.want, res.Header.Get("Retry-After"))
		srv.ClearFaults()
		srv.Close()
	}
	srv := laburentest.NewServer()
	defer srv.Close()
	srv.UsageLimitNext(5)
	srv.ClearFaults()
	res, _ := post(t, srv, queryPath, laburentest.DefaultAPIKey, `{"query":"hi"}`)
	assert.Equal(t, http.StatusOK, res.StatusCode, "ClearFaults drops queued faults")
}

// receiver is a webhook receiver that passes every delivery's header and body to a channel.
type delivery struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, status int) (*httptest.Server, chan delivery) {
	t.Helper()
	got := make(chan delivery, 10)
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), b}
		w.WriteHeader(status)
	}))
	t.Cleanup(rs.Close)
	return rs, got
}

func TestConversationalMode(t *testing.T) {
	srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer("First part.\n\nSecond part.")))
	defer srv.Close()
	srv.AddAgent("conv", laburentest.Conversational())
	rs, got := newReceiver(t, http.StatusOK)
	hook := rs.URL + "/webhook/laburen?tenant=7"

	res, body := post(t, srv, "/agents/conv/query", laburentest.DefaultAPIKey, `{"query":"hi","webhookUrl":"`+hook+`"}`)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Equal(t, []string{"status", "conversationId", "visitorId", "inputMessageId", "message", "webhookUrl"}, jsonKeys(t, []byte(body)))
	var queued map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &queued))
	assert.Equal(t, "queued", queued["status"])
	assert.Equal(t, "Your message has been queued. Response will be sent to the provided webhookUrl after processing.", queued["message"])
	assert.Equal(t, hook, queued["webhookUrl"])

	d := <-got
	assert.Equal(t, "agent.response", d.header.Get("x-laburen-event"))
	assert.Equal(t, "application/json", d.header.Get("Content-Type"))
	assert.Equal(t, []string{"conversationId", "messages", "agentResponse"}, jsonKeys(t, d.body))
	var payload struct {
		ConversationID string              `json:"conversationId"`
		Messages       []map[string]string `json:"messages"`
		AgentResponse  laburen.QueryResponse
	}
	require.NoError(t, json.Unmarshal(d.body, &payload))
	assert.Equal(t, queued["conversationId"], payload.ConversationID)
	assert.Equal(t, []map[string]string{{"text": "First part."}, {"text": "Second part."}}, payload.Messages)

	ws, err := srv.WaitWebhooks(context.Background(), 1)
	require.NoError(t, err)
	require.Len(t, ws, 1)
	assert.Equal(t, hook, ws[0].URL)
	assert.Equal(t, http.StatusOK, ws[0].StatusCode)
	assert.NoError(t, ws[0].Err)
	assert.Equal(t, d.body, ws[0].Body)

	conv, _ := srv.Conversation(queued["conversationId"])
	require.Len(t, conv.Messages, 2)
	assert.Equal(t, queued["inputMessageId"], conv.Messages[0].ID)
	assert.Equal(t, laburentest.RoleAI, conv.Messages[1].Role)

	// Through the SDK, with a duplicated delivery and a failing receiver.
	bad, badGot := newReceiver(t, http.StatusInternalServerError)
	srv.DuplicateWebhooksNext(1)
	q, err := srv.Client().QueryAsync(context.Background(), "conv", laburen.QueryRequest{Query: "again", WebhookURL: bad.URL})
	require.NoError(t, err)
	assert.True(t, q.Queued())
	<-badGot
	<-badGot
	ws, err = srv.WaitWebhooks(context.Background(), 3)
	require.NoError(t, err)
	require.Len(t, ws, 3)
	for _, w := range ws[1:] {
		assert.Equal(t, http.StatusInternalServerError, w.StatusCode)
		assert.ErrorContains(t, w.Err, "HTTP 500")
	}
	assert.Equal(t, ws[1].Body, ws[2].Body)

	// An agent without conversational mode answers at once.
	q, err = srv.Client().QueryAsync(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "now", WebhookURL: hook})
	require.NoError(t, err)
	assert.False(t, q.Queued())
	assert.Equal(t, "First part.\n\nSecond part.", q.Answer)
	assert.Len(t, srv.Webhooks(), 3)
}

func TestWaitWebhooksEnds(t *testing.T) {
	srv := laburentest.NewServer()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ws, err := srv.WaitWebhooks(ctx, 1)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, ws)
	srv.Close()
	_, err = srv.WaitWebhooks(context.Background(), 1)
	assert.ErrorContains(t, err, "server closed")
}

func TestCloseCancelsDeliveries(t *testing.T) {
	arrived := make(chan struct{})
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // the server notices a client gone only once the body is read
		close(arrived)
		<-r.Context().Done() // a receiver that never answers
	}))
	defer rs.Close()
	srv := laburentest.NewServer()
	srv.AddAgent(laburentest.DefaultAgentID, laburentest.Conversational())
	_, err := srv.Client().QueryAsync(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi", WebhookURL: rs.URL})
	require.NoError(t, err)
	<-arrived

	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the delivery in flight")
	}
	ws := srv.Webhooks()
	require.Len(t, ws, 1)
	assert.ErrorIs(t, ws[0].Err, context.Canceled)
}

func TestAPIKeys(t *testing.T) {
	srv := laburentest.NewServer(laburentest.WithAPIKeys("k1", "k2"))
	defer srv.Close()
	for _, c := range []*laburen.Client{srv.Client(), srv.Client(laburen.WithAPIKey("k2"))} {
		_, err := c.Query(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi"})
		assert.NoError(t, err)
	}
	_, err := srv.Client(laburen.WithAPIKey(laburentest.DefaultAPIKey)).Query(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi"})
	assert.ErrorIs(t, err, laburen.ErrUnauthorized)
	assert.Equal(t, "Bearer k1", srv.Requests()[0].Header.Get("Authorization"), "Client uses the first key")
}
