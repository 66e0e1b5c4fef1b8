package laburen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Query benchmarks measure one round trip on a loopback server. BenchmarkQueryBaseline sends
// the same request and decodes the same answer with plain net/http and encoding/json, through an
// HTTP client configured the same way, so that the difference is the SDK's own cost.
//
//	go test -run '^$' -bench 'BenchmarkQuery' -benchmem -count 6 .

var benchRequest = QueryRequest{Query: "Where is my order?", ConversationID: "clconv123", Temperature: Ptr(0.2)}

func benchServer(b testing.TB) (*httptest.Server, *http.Client) {
	b.Helper()
	answer := []byte(okAnswer)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	b.Cleanup(srv.Close)
	tr := defaultHTTPClient().Transport.(*http.Transport).Clone()
	b.Cleanup(tr.CloseIdleConnections)
	return srv, &http.Client{Transport: tr}
}

func BenchmarkQuery(b *testing.B) {
	srv, hc := benchServer(b)
	c, err := NewClient(WithBaseURL(srv.URL), WithAPIKey(testKey), WithHTTPClient(hc))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		res, err := c.Query(ctx, "clagent1", benchRequest)
		if err != nil || res.Answer != "Hello!" {
			b.Fatal(res, err)
		}
	}
}

// baselineRequest and baselineResponse are what a caller would write by hand.
type baselineRequest struct {
	Query          string   `json:"query"`
	ConversationID string   `json:"conversationId,omitempty"`
	Temperature    *float64 `json:"temperature,omitempty"`
}

type baselineResponse struct {
	Answer string `json:"answer"`
	Usage  struct {
		CompletionTokens int     `json:"completionTokens"`
		PromptTokens     int     `json:"promptTokens"`
		TotalTokens      int     `json:"totalTokens"`
		Cost             float64 `json:"cost"`
	} `json:"usage"`
	Sources []struct {
		Source string `json:"source"`
		Chunk  string `json:"chunk"`
	} `json:"sources"`
	Approvals      []json.RawMessage `json:"approvals"`
	MessageID      string            `json:"messageId"`
	ConversationID string            `json:"conversationId"`
	VisitorID      string            `json:"visitorId"`
	RequestHuman   bool              `json:"request_human"`
	Status         string            `json:"status"`
}

func baselineQuery(ctx context.Context, hc *http.Client, base, agentID string, req baselineRequest) (*baselineResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/agents/"+agentID+"/query", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+testKey)
	res, err := hc.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", res.StatusCode)
	}
	var out baselineResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func BenchmarkQueryBaseline(b *testing.B) {
	srv, hc := benchServer(b)
	ctx := context.Background()
	req := baselineRequest{Query: benchRequest.Query, ConversationID: benchRequest.ConversationID, Temperature: benchRequest.Temperature}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		res, err := baselineQuery(ctx, hc, srv.URL, "clagent1", req)
		if err != nil || res.Answer != "Hello!" {
			b.Fatal(res, err)
		}
	}
}

// TestQueryAllocationBudget holds the SDK to at most 1.1 times the allocations of the same round
// trip written with plain net/http and encoding/json (both sides of the loopback counted).
func TestQueryAllocationBudget(t *testing.T) {
	srv, hc := benchServer(t)
	c, err := NewClient(WithBaseURL(srv.URL), WithAPIKey(testKey), WithHTTPClient(hc))
	require.NoError(t, err)
	ctx := context.Background()
	req := baselineRequest{Query: benchRequest.Query, ConversationID: benchRequest.ConversationID, Temperature: benchRequest.Temperature}
	var failed atomic.Int64
	measure := func() (sdk, base float64) {
		sdk = testing.AllocsPerRun(200, func() {
			if _, err := c.Query(ctx, "clagent1", benchRequest); err != nil {
				failed.Add(1)
			}
		})
		base = testing.AllocsPerRun(200, func() {
			if _, err := baselineQuery(ctx, hc, srv.URL, "clagent1", req); err != nil {
				failed.Add(1)
			}
		})
		return sdk, base
	}
	sdk, base := measure()
	require.Zero(t, failed.Load())
	t.Logf("allocations per query: SDK %.0f, net/http baseline %.0f (%.2fx)", sdk, base, sdk/base)
	assert.LessOrEqual(t, sdk, 1.1*base)

	// The observation hook costs nothing without an Observer: its steps on the request path
	// allocate nothing. With one, the observation itself costs one record per call (the bound
	// leaves room for the few allocations by which two runs of the loopback differ).
	call := Call{Operation: "query", AgentID: "clagent1"}
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		_, obs := startObservation(ctx, &c.cfg, call)
		obs.attempt(1, 200, nil, -1)
		obs.firstAnswer()
		obs.end(nil, &QueryResponse{})
	}), "allocations of the unobserved hook")
	observed, err := NewClient(WithBaseURL(srv.URL), WithAPIKey(testKey), WithHTTPClient(hc),
		WithObserver(Observer{End: func(context.Context, Call, CallEnd) {}}))
	require.NoError(t, err)
	withObserver := testing.AllocsPerRun(200, func() {
		if _, err := observed.Query(ctx, "clagent1", benchRequest); err != nil {
			failed.Add(1)
		}
	})
	require.Zero(t, failed.Load())
	t.Logf("allocations per observed query: %.0f", withObserver)
	assert.LessOrEqual(t, withObserver, sdk+5)
}

// BenchmarkQueryBurst runs 8 waves of 128 concurrent queries per operation and reports the
// connections the server accepted per operation: through the SDK's default client, and through
// an HTTP client with Go's default transport settings (2 idle connections per host).
//
//	go test -run '^$' -bench 'BenchmarkQueryBurst' -benchtime 5x .
func BenchmarkQueryBurst(b *testing.B) {
	for _, tt := range []struct {
		name string
		hc   func() *http.Client
	}{
		{"default-client", func() *http.Client { return defaultHTTPClient() }},
		{"baseline-go-default-transport", func() *http.Client {
			return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			var conns atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(answer))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			c, err := NewClient(WithBaseURL(srv.URL), WithHTTPClient(tt.hc()))
			if err != nil {
				b.Fatal(err)
			}
			var failed atomic.Int64
			b.ResetTimer()
			for range b.N {
				for range 8 {
					var wg sync.WaitGroup
					for range 128 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							if _, err := c.Query(context.Background(), "a", benchRequest); err != nil {
								failed.Add(1)
							}
						}()
					}
					wg.Wait()
				}
			}
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d queries failed", failed.Load())
			}
			b.ReportMetric(float64(conns.Load())/float64(b.N), "conns/op")
		})
	}
}

// BenchmarkQueryLargeAnswer measures a Query whose answer is 1 MB of text, sent chunked (no
// Content-Length, as with gzip) and with Content-Length, beside the same round trip with plain
// net/http and encoding/json (io.ReadAll, json.Unmarshal).
//
//	go test -run '^$' -bench 'BenchmarkQueryLargeAnswer' -benchmem -count 6 .
func BenchmarkQueryLargeAnswer(b *testing.B) {
	text := bytes.Repeat([]byte("abcdefghij"), 100_000)
	answer, err := json.Marshal(map[string]any{"answer": string(text), "messageId": "m1", "conversationId": "c1"})
	if err != nil {
		b.Fatal(err)
	}
	for _, chunked := range []bool{true, false} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			if !chunked {
				w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
			}
			for rest := answer; len(rest) > 0; rest = rest[min(len(rest), 32<<10):] {
				_, _ = w.Write(rest[:min(len(rest), 32<<10)])
			}
		}))
		b.Cleanup(srv.Close)
		tr := defaultHTTPClient().Transport.(*http.Transport).Clone()
		b.Cleanup(tr.CloseIdleConnections)
		hc := &http.Client{Transport: tr}
		name := "content-length"
		if chunked {
			name = "chunked"
		}
		b.Run(name+"/sdk", func(b *testing.B) {
			c, err := NewClient(WithBaseURL(srv.URL), WithAPIKey(testKey), WithHTTPClient(hc))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				res, err := c.Query(context.Background(), "clagent1", benchRequest)
				if err != nil || len(res.Answer) != len(text) {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/baseline=net/http+encoding/json", func(b *testing.B) {
			req := baselineRequest{Query: benchRequest.Query, ConversationID: benchRequest.ConversationID, Temperature: benchRequest.Temperature}
			b.ReportAllocs()
			for b.Loop() {
				res, err := baselineQuery(context.Background(), hc, srv.URL, "clagent1", req)
				if err != nil || len(res.Answer) != len(text) {
					b.Fatal(err)
				}
			}
		})
	}
}
