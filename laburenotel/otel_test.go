package laburenotel_test

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburenotel"
	"github.com/laburen/laburen-go/laburentest"
)

const (
	agentID   = laburentest.DefaultAgentID
	testQuery = "Where is my order QX4471?"
	answer    = "Your order QX4471 left the warehouse today."
)

// traced is a fake server and a client traced into an in-memory recorder.
type traced struct {
	srv *laburentest.Server
	c   *laburen.Client
	rec *tracetest.SpanRecorder
	tp  *sdktrace.TracerProvider
}

func newTraced(t *testing.T, opts ...laburen.Option) *traced {
	t.Helper()
	srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer(answer)))
	t.Cleanup(srv.Close)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	opts = append([]laburen.Option{laburenotel.New(laburenotel.WithTracerProvider(tp))}, opts...)
	return &traced{srv: srv, c: srv.Client(opts...), rec: rec, tp: tp}
}

// attrs returns a span's attributes as a map.
func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestQuerySpan(t *testing.T) {
	tr := newTraced(t)
	res, err := tr.c.Query(context.Background(), agentID, laburen.QueryRequest{Query: testQuery})
	require.NoError(t, err)
	require.Positive(t, res.Usage.TotalTokens)

	spans := tr.rec.Ended()
	require.Len(t, spans, 1)
	s := spans[0]
	assert.Equal(t, "invoke_agent "+agentID, s.Name())
	assert.Equal(t, trace.SpanKindClient, s.SpanKind())
	assert.Equal(t, codes.Unset, s.Status().Code)
	u, err := url.Parse(tr.srv.URL)
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	a := attrs(s)
	for key, want := range map[attribute.Key]attribute.Value{
		"gen_ai.operation.name":      attribute.StringValue("invoke_agent"),
		"gen_ai.provider.name":       attribute.StringValue("laburen"),
		"gen_ai.agent.id":            attribute.StringValue(agentID),
		"gen_ai.conversation.id":     attribute.StringValue(res.ConversationID),
		"gen_ai.response.id":         attribute.StringValue(res.MessageID),
		"gen_ai.usage.input_tokens":  attribute.IntValue(res.Usage.PromptTokens),
		"gen_ai.usage.output_tokens": attribute.IntValue(res.Usage.CompletionTokens),
		"gen_ai.request.stream":      attribute.BoolValue(false),
		"server.address":             attribute.StringValue(u.Hostname()),
		"server.port":                attribute.IntValue(port),
		"laburen.endpoint":           attribute.StringValue("query"),
	} {
		assert.Equal(t, want, a[key], "%s", key)
	}
	assert.NotContains(t, a, attribute.Key("error.type"))
	assert.Empty(t, s.Events())
}

// TestRequestModel: a query's ModelName is gen_ai.request.model, on the span and the metrics.
func TestRequestModel(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	tr := newTraced(t)
	tr.c = tr.srv.Client(laburenotel.New(laburenotel.WithTracerProvider(tr.tp), laburenotel.WithMeterProvider(mp)))
	_, err := tr.c.Query(context.Background(), agentID, laburen.QueryRequest{Query: testQuery, ModelName: laburen.ModelGPT4o})
	require.NoError(t, err)
	spans := tr.rec.Ended()
	require.Len(t, spans, 1)
	assert.Equal(t, "gpt_4o", attrs(spans[0])["gen_ai.request.model"].AsString())
	for _, p := range points(t, collect(t, reader)["gen_ai.client.operation.duration"]) {
		assert.Equal(t, "gpt_4o", value(p.attrs, "gen_ai.request.model"))
	}

	_, err = tr.c.Query(context.Background(), agentID, laburen.QueryRequest{Query: testQuery})
	require.NoError(t, err)
	assert.NotContains(t, attrs(tr.rec.Ended()[1]), attribute.Key("gen_ai.request.model"), "none when the agent's model is kept")
}

func TestAgentQuerySpan(t *testing.T) {
	tr := newTraced(t)
	m, err := tr.c.AgentQuery(context.Background(), agentID, laburen.AgentQueryRequest{Query: "Shipped today"})
	require.NoError(t, err)
	spans := tr.rec.Ended()
	require.Len(t, spans, 1)
	a := attrs(spans[0])
	assert.Equal(t, "query-agent", a["laburen.endpoint"].AsString())
	assert.Equal(t, m.MessageID, a["gen_ai.response.id"].AsString())
	assert.Equal(t, m.ConversationID, a["gen_ai.conversation.id"].AsString())
}

func TestStreamSpanEndsWithTheStream(t *testing.T) {
	tr := newTraced(t)
	st, err := tr.c.QueryStream(context.Background(), agentID, laburen.QueryRequest{Query: testQuery})
	require.NoError(t, err)
	defer st.Close()
	require.True(t, st.Next())
	assert.Empty(t, tr.rec.Ended(), "the span is open while the stream runs")
	for st.Next() {
	}
	lastEvent := time.Now()
	require.NoError(t, st.Err())

	spans := tr.rec.Ended()
	require.Len(t, spans, 1)
	s := spans[0]
	assert.Equal(t, codes.Unset, s.Status().Code)
	assert.False(t, s.EndTime().After(lastEvent))
	a := attrs(s)
	assert.True(t, a["gen_ai.request.stream"].AsBool())
	ttfc := a["gen_ai.response.time_to_first_chunk"].AsFloat64()
	assert.Positive(t, ttfc)
	assert.LessOrEqual(t, ttfc, s.EndTime().Sub(s.StartTime()).Seconds())
	require.NotNil(t, st.Response())
	assert.Equal(t, st.Response().MessageID, a["gen_ai.response.id"].AsString())
	assert.Equal(t, int64(st.Response().Usage.CompletionTokens), a["gen_ai.usage.output_tokens"].AsInt64())
}

func TestStreamFailuresAreErrors(t *testing.T) {
	tests := []struct {
		name     string
		fault    func(srv *laburentest.Server)
		opts     []laburen.Option
		cancel   bool // cancel the context after the first event
		wantType string
	}{
		{name: "[ERROR]USAGE_LIMIT", fault: func(s *laburentest.Server) { s.StreamErrorNext(1, 2, "USAGE_LIMIT") },
			wantType: "USAGE_LIMIT"},
		{name: "cut off", fault: func(s *laburentest.Server) { s.CutStreamNext(1, 2) }, wantType: "truncated"},
		{name: "cancelled", fault: func(s *laburentest.Server) { s.StallStreamNext(1, 2) }, cancel: true,
			wantType: "canceled"},
		{name: "idle timeout", fault: func(s *laburentest.Server) { s.StallStreamNext(1, 2) },
			opts: []laburen.Option{laburen.WithStreamIdleTimeout(50 * time.Millisecond)}, wantType: "idle_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTraced(t, tt.opts...)
			tt.fault(tr.srv)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st, err := tr.c.QueryStream(ctx, agentID, laburen.QueryRequest{Query: testQuery})
			require.NoError(t, err)
			defer st.Close()
			require.True(t, st.Next())
			if tt.cancel {
				cancel()
			}
			for st.Next() {
			}
			require.Error(t, st.Err())

			spans := tr.rec.Ended()
			require.Len(t, spans, 1)
			s := spans[0]
			assert.Equal(t, codes.Error, s.Status().Code)
			assert.Equal(t, tt.wantType, s.Status().Description)
			assert.Equal(t, tt.wantType, attrs(s)["error.type"].AsString())
			assert.Positive(t, attrs(s)["gen_ai.response.time_to_first_chunk"].AsFloat64())
		})
	}
}

func TestStreamClosedEarlyIsNotAnError(t *testing.T) {
	tr := newTraced(t)
	tr.srv.StallStreamNext(1, 1)
	st, err := tr.c.QueryStream(context.Background(), agentID, laburen.QueryRequest{Query: testQuery})
	require.NoError(t, err)
	require.True(t, st.Next())
	require.NoError(t, st.Close())
	spans := tr.rec.Ended()
	require.Len(t, spans, 1)
	assert.Equal(t, codes.Unset, spans[0].Status().Code)
	assert.True(t, attrs(spans[0])["laburen.stream.closed_early"].AsBool())
}

func TestRetryIsAnEventOfTheSpan(t *testing.T) {
	tr := newTraced(t)
	tr.srv.FailNext(1, 503, "<html>Service Unavailable</html>")
	_, err := tr.c.Query(context.Background(), agentID, laburen.QueryRequest{Query: testQuery})
	require.NoError(t, err)

	spans := tr.rec.Ended()
	require.Len(t, spans, 1, "one span for the call, its retries included")
	s := spans[0]
	assert.Equal(t, codes.Unset, s.Status().Code)
	require.Len(t, s.Events(), 1)
	ev := s.Events()[0]
	assert.Equal(t, "retry", ev.Name)
	a := map[attribute.Key]attribute.Value{}
	for _, kv := range ev.Attributes {
		a[kv.Key] = kv.Value
	}
	assert.Equal(t, int64(1), a["laburen.attempt"].AsInt64())
	assert.Equal(t, int64(503), a["http.response.status_code"].AsInt64())
	assert.Equal(t, "503", a["error.type"].AsString())
	assert.GreaterOrEqual(t, a["laburen.retry.wait"].AsFloat64(), 0.0)
}

func TestFailedQuerySpan(t *testing.T) {
	tr := newTraced(t)
	tr.srv.UsageLimitNext(1)
	_, err := tr.c.Query(context.Background(), agentID, laburen.QueryRequest{Query: testQuery})
	require.ErrorIs(t, err, laburen.ErrUsageLimit)
	spans := tr.rec.Ended()
	require.Len(t, spans, 1)
	assert.Equal(t, codes.Error, spans[0].Status().Code)
	assert.Equal(t, "USAGE_LIMIT", attrs(spans[0])["error.type"].AsString())
}

// TestSpansHoldNoSecretsOrText runs every kind of call and failure and looks for the API key,
// the query and the answer in everything the spans carry.
func TestSpansHoldNoSecretsOrText(t *testing.T) {
	tr := newTraced(t)
	ctx := context.Background()
	req := laburen.QueryRequest{Query: testQuery}
	_, err := tr.c.Query(ctx, agentID, req)
	require.NoError(t, err)
	_, err = tr.c.AgentQuery(ctx, agentID, laburen.AgentQueryRequest{Query: testQuery})
	require.NoError(t, err)
	st, err := tr.c.QueryStream(ctx, agentID, req)
	require.NoError(t, err)
	_, err = st.Final()
	require.NoError(t, err)
	tr.srv.FailNext(1, 503, `{"error":"`+testQuery+`"}`)
	tr.srv.FailNext(1, 400, `{"error":"bad query: `+testQuery+`"}`)
	_, err = tr.c.Query(ctx, agentID, req)
	require.Error(t, err)
	tr.srv.StreamErrorNext(1, 1, "bad query: "+testQuery)
	st, err = tr.c.QueryStream(ctx, agentID, req)
	require.NoError(t, err)
	_, err = st.Final()
	require.Error(t, err)

	spans := tr.rec.Ended()
	require.Len(t, spans, 5)
	var all []string
	add := func(kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			all = append(all, string(kv.Key)+"="+kv.Value.String())
		}
	}
	for _, s := range spans {
		all = append(all, s.Name(), s.Status().Description)
		add(s.Attributes())
		for _, ev := range s.Events() {
			all = append(all, ev.Name)
			add(ev.Attributes)
		}
	}
	text := strings.Join(all, "\n")
	for _, secret := range []string{laburentest.DefaultAPIKey, testQuery, "QX4471", answer, "warehouse"} {
		assert.NotContains(t, text, secret)
	}
}
