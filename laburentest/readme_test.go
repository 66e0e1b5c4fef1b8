package laburentest_test

// The code of the README's "Testing your code" section, kept here so that it is compiled and
// run. TestReadmeTestingSection checks that each region between "// README <name>" and
// "// README end" is, line for line, a Go block of that section.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/internal/readmecheck"
	"github.com/laburen/laburen-go/laburentest"
)

// README testing
func TestOrderQuestion(t *testing.T) {
	// New closes the server when the test ends.
	srv := laburentest.New(t, laburentest.WithResponder(laburentest.Answer("It ships today.")))
	c := srv.Client() // a *laburen.Client pointed at the fake, with its API key

	res, err := c.Query(t.Context(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Where is my order?"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "It ships today." {
		t.Errorf("answer %q", res.Answer)
	}
	conv, _ := srv.Conversation(res.ConversationID) // what the server stored
	if len(conv.Messages) != 2 || conv.Messages[0].Role != laburentest.RoleUser {
		t.Errorf("history %+v", conv.Messages)
	}

	srv.UsageLimitNext(1) // the next request gets 402 {"error":"USAGE_LIMIT"}
	_, err = c.Query(t.Context(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Hi"})
	if !errors.Is(err, laburen.ErrUsageLimit) {
		t.Errorf("got %v, want a usage limit", err)
	}
}

// README end

// readmeFaults is the README's list of faults.
func readmeFaults(srv *laburentest.Server) {
	// README faults
	srv.FailNext(1, 503, "<html>...</html>") // any status and body
	srv.RateLimitNext(2, time.Second)        // 429 {"error":"RATE_LIMIT"} with Retry-After: 1
	srv.UsageLimitNext(1)                    // 402 {"error":"USAGE_LIMIT"}
	srv.StreamErrorNext(1, 3, "USAGE_LIMIT") // 3 events, then data: [ERROR]USAGE_LIMIT in a 200 stream
	srv.CutStreamNext(1, 3)                  // 3 events, then the connection drops without [DONE]
	srv.StallStreamNext(1, 0)                // headers, then silence until the client goes away
	srv.SetEventDelay(10 * time.Millisecond) // a pause before every stream event
	srv.DuplicateWebhooksNext(1)             // the next webhook delivery arrives twice
	// README end
}

func TestReadmeFaults(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	readmeFaults(srv)
	want := []int{503, 429, 429, 402, 200}
	for _, status := range want {
		res, _ := post(t, srv, queryPath, laburentest.DefaultAPIKey, `{"query":"hi"}`)
		assert.Equal(t, status, res.StatusCode)
	}
}

func TestReadmeWebhooks(t *testing.T) {
	ctx := t.Context()
	received := make(chan string, 2)
	receiver := httptest.NewServer(laburen.NewWebhookHandler(func(_ context.Context, ev *laburen.WebhookEvent) error {
		received <- ev.Messages[0].Text
		return nil
	}))
	defer receiver.Close()
	srv := laburentest.NewServer()
	defer srv.Close()
	c := srv.Client()
	// README webhooks
	srv.AddAgent("support", laburentest.Conversational()) // queries need a webhookUrl, answers come by POST
	q, err := c.QueryAsync(ctx, "support", laburen.QueryRequest{Query: "Hi", WebhookURL: receiver.URL + "/hook"})
	if err != nil || !q.Queued() {
		t.Fatal(q, err)
	}
	deliveries, err := srv.WaitWebhooks(ctx, 1) // the answer was POSTed to the receiver
	if err != nil {
		t.Fatal(err)
	}
	// README end
	assert.Equal(t, http.StatusOK, deliveries[0].StatusCode)
	assert.Equal(t, "Hello from laburentest! You said: Hi", <-received)
}

func TestReadmeUpstream(t *testing.T) {
	// README upstream
	srv := laburentest.New(t,
		laburentest.WithSSEErrorBodies(),                              // errors before a stream: data: [ERROR]NOT_FOUND
		laburentest.WithWebhookRedelivery(time.Second, 5*time.Second), // up to 3 attempts per webhook
	)
	srv.SetResponder(func(ctx context.Context, agentID string, req laburen.QueryRequest) (laburentest.Reply, error) {
		conv, _ := srv.Conversation(req.ConversationID) // the server's state, no package variable
		return laburentest.Reply{
			Answer: fmt.Sprintf("Message %d received.", len(conv.Messages)),
			Events: []laburentest.Event{{Name: "tool_call", Data: `{"name":"track_order"}`}}, // before the answer
		}, nil
	})
	// README end
	res, body := post(t, srv, "/agents/nope/query", laburentest.DefaultAPIKey, `{"query":"hi","streaming":true}`)
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	assert.Equal(t, "data: [ERROR]NOT_FOUND\n\n", body)
	st, err := srv.Client().QueryStream(t.Context(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi"})
	require.NoError(t, err)
	require.True(t, st.Next())
	assert.Equal(t, laburen.EventToolCall, st.Current().Type)
	final, err := st.Final()
	require.NoError(t, err)
	assert.Equal(t, "Message 1 received.", final.Answer)
}

func TestReadmeTestingSection(t *testing.T) {
	readme := readmecheck.ReadFile(t, "../README.md")
	src := readmecheck.ReadFile(t, "readme_test.go")
	readmecheck.Match(t, readmecheck.Blocks(t, readme, "Testing your code"), src, "testing", "faults", "webhooks", "upstream")
}
