package laburenotel_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburenotel"
	"github.com/laburen/laburen-go/laburentest"
)

var webhookSecret = []byte("0123456789abcdef0123456789abcdef")

// asyncRoundTrip sends a QueryAsync whose answer a conversational agent delivers to a webhook
// receiver wrapped by WebhookFunc, and returns the spans of both ends. sign tells whether the
// URL is signed (and the receiver checks it).
func asyncRoundTrip(t *testing.T, sign bool, fnErr error) (query, delivery sdktrace.ReadOnlySpan, received *laburen.WebhookEvent) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	opt := laburenotel.WithTracerProvider(tp)

	var hookOpts []laburen.WebhookOption
	if sign {
		hookOpts = append(hookOpts, laburen.WithWebhookSecret(webhookSecret))
	}
	events := make(chan *laburen.WebhookEvent, 1)
	recv := httptest.NewServer(laburen.NewWebhookHandler(laburenotel.WebhookFunc(
		func(ctx context.Context, ev *laburen.WebhookEvent) error {
			assert.True(t, trace.SpanContextFromContext(ctx).IsValid(), "fn runs in the delivery's span")
			events <- ev
			return fnErr
		}, opt), hookOpts...))
	defer recv.Close()
	srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer(answer)))
	defer srv.Close()
	srv.AddAgent(agentID, laburentest.Conversational())
	c := srv.Client(laburenotel.New(opt))

	ctx, base, err := laburenotel.TraceWebhookURL(context.Background(), recv.URL+"/hook?tenant=7", opt)
	require.NoError(t, err)
	hookURL := base
	if sign {
		hookURL, err = laburen.SignWebhookURL(base, nil, webhookSecret)
		require.NoError(t, err)
	}
	q, err := c.QueryAsync(ctx, agentID, laburen.QueryRequest{Query: testQuery, WebhookURL: hookURL})
	require.NoError(t, err)
	require.True(t, q.Queued())
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = srv.WaitWebhooks(wctx, 1)
	require.NoError(t, err)

	spans := rec.Ended()
	require.Len(t, spans, 2)
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindConsumer {
			delivery = s
		} else {
			query = s
		}
	}
	require.NotNil(t, query)
	require.NotNil(t, delivery)
	return query, delivery, <-events
}

func TestWebhookDeliveryIsLinkedToTheQuery(t *testing.T) {
	query, delivery, ev := asyncRoundTrip(t, true, nil)

	assert.Equal(t, "invoke_agent "+agentID, query.Name())
	assert.Equal(t, trace.SpanKindClient, query.SpanKind())
	assert.True(t, attrs(query)["laburen.async"].AsBool())
	assert.Equal(t, ev.ConversationID, attrs(query)["gen_ai.conversation.id"].AsString())
	assert.NotEmpty(t, attrs(query)["laburen.input_message.id"].AsString(), "the queued message's ID")
	assert.NotContains(t, attrs(query), attribute.Key("gen_ai.response.id"), "the answer's ID comes with the webhook")

	assert.Equal(t, "webhook agent.response", delivery.Name())
	require.Len(t, delivery.Links(), 1)
	assert.Equal(t, query.SpanContext().TraceID(), delivery.Links()[0].SpanContext.TraceID())
	assert.Equal(t, query.SpanContext().SpanID(), delivery.Links()[0].SpanContext.SpanID())
	assert.Equal(t, query.SpanContext().SpanID(), delivery.Parent().SpanID(), "one trace: the query's")
	assert.Equal(t, query.SpanContext().TraceID(), delivery.SpanContext().TraceID())
	a := attrs(delivery)
	assert.Equal(t, "agent.response", a["laburen.webhook.event"].AsString())
	assert.Equal(t, ev.ConversationID, a["gen_ai.conversation.id"].AsString())
	assert.Equal(t, codes.Unset, delivery.Status().Code)
	// The parameter came back verified, beside the base URL's own.
	assert.Equal(t, "7", ev.Params.Get("tenant"))
	assert.Equal(t, query.SpanContext().SpanID().String(), traceparentSpanID(t, ev.Params))
}

func traceparentSpanID(t *testing.T, params url.Values) string {
	t.Helper()
	tp := params.Get(laburenotel.TraceParentParam)
	require.Len(t, tp, 55) // 00-<trace>-<span>-<flags>
	return tp[36:52]
}

func TestWebhookWithoutSignatureIsNotLinked(t *testing.T) {
	// Without a secret the parameters are not verified (Params is nil): anyone could have
	// written the traceparent, so no link is made.
	_, delivery, ev := asyncRoundTrip(t, false, nil)
	assert.Nil(t, ev.Params)
	assert.Empty(t, delivery.Links())
}

func TestWebhookFunctionFailureIsAnError(t *testing.T) {
	_, delivery, _ := asyncRoundTrip(t, true, context.DeadlineExceeded)
	assert.Equal(t, codes.Error, delivery.Status().Code)
	assert.Equal(t, "deadline_exceeded", attrs(delivery)["error.type"].AsString())
}

func TestTraceWebhookURL(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	opt := laburenotel.WithTracerProvider(tp)
	tests := []struct {
		name, base string
		wantErr    string
		wantParam  bool
	}{
		{name: "plain", base: "https://me.example/hook", wantParam: true},
		{name: "with a query", base: "https://me.example/hook?tenant=7", wantParam: true},
		{name: "traceparent already there", base: "https://me.example/hook?traceparent=x", wantErr: "already has a traceparent parameter"},
		{name: "not a URL", base: "https://me.example/%zz", wantErr: "base is not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := laburenotel.TraceWebhookURL(context.Background(), tt.base, opt)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			u, err := url.Parse(got)
			require.NoError(t, err)
			assert.Equal(t, tt.wantParam, u.Query().Has(laburenotel.TraceParentParam))
			base, err := url.Parse(tt.base)
			require.NoError(t, err)
			for k := range base.Query() {
				assert.Equal(t, base.Query().Get(k), u.Query().Get(k))
			}
		})
	}
	t.Run("spans not recorded", func(t *testing.T) {
		ctx, got, err := laburenotel.TraceWebhookURL(context.Background(), "https://me.example/hook",
			laburenotel.WithTracerProvider(noop.NewTracerProvider()))
		require.NoError(t, err)
		assert.Equal(t, "https://me.example/hook", got)
		assert.Equal(t, context.Background(), ctx)
	})
}
