package laburenotel_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburenotel"
	"github.com/laburen/laburen-go/laburentest"
)

// collect reads every metric of the scope, by name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != laburenotel.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// point is a data point of a histogram or a sum: its attributes, count and sum.
type point struct {
	attrs attribute.Set
	count uint64
	sum   float64
}

// points returns the data points of a float or int histogram, or of a float sum.
func points(t *testing.T, a metricdata.Aggregation) []point {
	t.Helper()
	var out []point
	switch h := a.(type) {
	case metricdata.Histogram[float64]:
		for _, p := range h.DataPoints {
			out = append(out, point{p.Attributes, p.Count, p.Sum})
		}
	case metricdata.Histogram[int64]:
		for _, p := range h.DataPoints {
			out = append(out, point{p.Attributes, p.Count, float64(p.Sum)})
		}
	case metricdata.Sum[float64]:
		for _, p := range h.DataPoints {
			out = append(out, point{p.Attributes, 1, p.Value})
		}
	default:
		t.Fatalf("unexpected aggregation %T", a)
	}
	return out
}

func value(s attribute.Set, k attribute.Key) string {
	v, _ := s.Value(k)
	return v.String()
}

func TestMetrics(t *testing.T) {
	srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer(answer)))
	defer srv.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	c := srv.Client(laburenotel.New(laburenotel.WithMeterProvider(mp)))
	ctx := context.Background()

	res, err := c.Query(ctx, agentID, laburen.QueryRequest{Query: testQuery})
	require.NoError(t, err)
	st, err := c.QueryStream(ctx, agentID, laburen.QueryRequest{Query: testQuery})
	require.NoError(t, err)
	sres, err := st.Final()
	require.NoError(t, err)
	srv.UsageLimitNext(1)
	_, err = c.Query(ctx, agentID, laburen.QueryRequest{Query: testQuery})
	require.ErrorIs(t, err, laburen.ErrUsageLimit)

	m := collect(t, reader)

	durations := points(t, m["gen_ai.client.operation.duration"])
	require.Len(t, durations, 2, "successes and USAGE_LIMIT failures apart")
	var ok, failed point
	for _, p := range durations {
		assert.Equal(t, "invoke_agent", value(p.attrs, "gen_ai.operation.name"))
		assert.Equal(t, "laburen", value(p.attrs, "gen_ai.provider.name"))
		assert.Equal(t, agentID, value(p.attrs, "gen_ai.agent.id"))
		assert.NotEmpty(t, value(p.attrs, "server.address"))
		if value(p.attrs, "error.type") == "" {
			ok = p
		} else {
			failed = p
		}
	}
	assert.EqualValues(t, 2, ok.count)
	assert.Positive(t, ok.sum)
	assert.EqualValues(t, 1, failed.count)
	assert.Equal(t, "USAGE_LIMIT", value(failed.attrs, "error.type"))

	tokens := points(t, m["gen_ai.client.token.usage"])
	require.Len(t, tokens, 2)
	for _, p := range tokens {
		assert.EqualValues(t, 2, p.count)
		switch value(p.attrs, "gen_ai.token.type") {
		case "input":
			assert.EqualValues(t, res.Usage.PromptTokens+sres.Usage.PromptTokens, p.sum)
		case "output":
			assert.EqualValues(t, res.Usage.CompletionTokens+sres.Usage.CompletionTokens, p.sum)
		default:
			t.Errorf("token type %q", value(p.attrs, "gen_ai.token.type"))
		}
	}

	first := points(t, m["gen_ai.client.operation.time_to_first_chunk"])
	require.Len(t, first, 1)
	assert.EqualValues(t, 1, first[0].count, "streams only")
	assert.Positive(t, first[0].sum)

	cost := points(t, m["laburen.client.cost"])
	require.Len(t, cost, 1)
	require.Positive(t, res.Usage.Cost)
	assert.InDelta(t, res.Usage.Cost+sres.Usage.Cost, cost[0].sum, 1e-12)
}
