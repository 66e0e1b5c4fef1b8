package laburen

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nextWaiting returns a stream that gave its first event ("Hel") and a Next, run in another
// goroutine, that now waits for the body; its result comes on first.
func nextWaiting(t *testing.T) (*Stream, chan bool) {
	t.Helper()
	c, p, release := stalledServer(t, "event: answer\ndata: Hel\n\n", "event: answer\ndata: lo\n\ndata: [DONE]\n\n")
	t.Cleanup(release)
	st, err := c.QueryStream(context.Background(), "a", QueryRequest{Query: "Hi"})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	require.True(t, st.Next())
	reading := p.arm()
	first := make(chan bool, 1)
	go func() { first <- st.Next() }()
	select {
	case <-reading:
	case <-time.After(10 * time.Second):
		t.Fatal("the first Next never read the body")
	}
	return st, first
}

// assertEnded checks that the Next whose result comes on first was ended.
func assertEnded(t *testing.T, first chan bool) {
	t.Helper()
	select {
	case more := <-first:
		assert.False(t, more, "the first Next")
	case <-time.After(10 * time.Second):
		t.Fatal("the first Next was not ended")
	}
}

// TestStreamNextFromTwoGoroutines: a Next called while another waits for the body ends the
// stream with an error that says so, for both callers; never a truncated body.
func TestStreamNextFromTwoGoroutines(t *testing.T) {
	st, first := nextWaiting(t)
	assert.False(t, st.Next(), "the second Next")
	assert.ErrorContains(t, st.Err(), "Next called while another Next ran")
	assertEnded(t, first)
	require.Error(t, st.Err())
	assert.Contains(t, st.Err().Error(), `laburen: stream query agent "a": Next called while another Next ran`)
	assert.NotErrorIs(t, st.Err(), ErrStreamTruncated)
	assert.Equal(t, "Hel", st.Answer())
}

// TestStreamCurrentWhileNextRuns: Current and Answer called while a Next waits for the body in
// another goroutine read nothing that Next writes: they return empty and end the stream as a
// second Next does. Response is safe from any goroutine; once the stream ended, all read again.
func TestStreamCurrentWhileNextRuns(t *testing.T) {
	st, first := nextWaiting(t)
	assert.Nil(t, st.Response())
	assert.Equal(t, StreamEvent{}, st.Current())
	assert.Empty(t, st.Answer())
	assertEnded(t, first)
	assert.ErrorContains(t, st.Err(), "Next called while another Next ran")
	assert.Equal(t, "Hel", st.Answer())
	assert.Equal(t, "Hel", st.Current().Text, "after the end, the last event")
}

// TestStreamErrWhileNextRuns: Err called while a Next waits in another goroutine reads nothing
// that Next writes: it reports the misuse, and the waiting Next ends.
func TestStreamErrWhileNextRuns(t *testing.T) {
	st, first := nextWaiting(t)
	assert.ErrorContains(t, st.Err(), "Next called while another Next ran")
	assertEnded(t, first)
	assert.ErrorContains(t, st.Err(), "Next called while another Next ran")
}

// TestStreamAnswerAfterClose: Close from another goroutine ends a waiting Next, and what arrived
// stays readable at once, before that Next has returned.
func TestStreamAnswerAfterClose(t *testing.T) {
	st, first := nextWaiting(t)
	require.NoError(t, st.Close())
	assert.Equal(t, "Hel", st.Answer())
	assert.Equal(t, "Hel", st.Current().Text)
	assert.ErrorIs(t, st.Err(), ErrStreamClosed)
	assert.False(t, <-first)
}

// TestStreamTwoReaders: two goroutines that each read one stream with Next and Current touch
// nothing at the same time (run it with -race) and never panic; the stream ends with the
// misuse reported, or at [DONE] when one goroutine read it all before the other began.
func TestStreamTwoReaders(t *testing.T) {
	for range 50 {
		st := readerStream(&chunkReader{r: bytes.NewReader(answerEvents(1000, "w")), n: 1400}, nil)
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for st.Next() {
					if ev := st.Current(); ev != (StreamEvent{}) {
						assert.Equal(t, "w", ev.Text)
					}
					_ = st.Answer()
					_ = st.Err()
				}
			}()
		}
		wg.Wait()
		if err := st.Err(); err != nil {
			assert.ErrorContains(t, err, "Next called while another Next ran")
		}
		st.Close()
	}
}

// TestStreamNextAfterTheEndKeepsErr: a Next that overlaps another once the stream has ended is
// no misuse to report: Err keeps how the stream ended.
func TestStreamNextAfterTheEndKeepsErr(t *testing.T) {
	for _, tt := range []struct{ name, in string }{
		{"[DONE]", "event: answer\ndata: hi\n\ndata: [DONE]\n\n"},
		{"[ERROR]", "event: answer\ndata: hi\n\ndata: [ERROR]USAGE_LIMIT\n\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := readerStream(strings.NewReader(tt.in), nil)
			drainStream(st)
			want := st.Err()
			st.reading.Store(busy) // as while another goroutine's Next runs
			assert.False(t, st.Next())
			st.reading.Store(free)
			assert.Equal(t, want, st.Err())
		})
	}
}

func TestStreamMaxAnswerSize(t *testing.T) {
	tests := []struct {
		name, in, answer string
		ok               bool
	}{
		{"at the limit", "event: answer\ndata: 12345\n\nevent: answer\ndata: 67890\n\n", "1234567890", true},
		{"over it", "event: answer\ndata: 12345\n\nevent: answer\ndata: 678901\n\n", "12345", false},
		{"decoded length counts", "event: answer\ndata: %41%42%43%44%45%46%47%48%49%4A\n\n", "ABCDEFGHIJ", true},
		{"other events do not count", "event: tool_call\ndata: " + strings.Repeat("x", 100) + "\n\nevent: answer\ndata: 1234567890\n\n", "1234567890", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config{maxEventSize: DefaultMaxEventSize, maxAnswerSize: 10}
			st := readerStream(strings.NewReader(tt.in+"data: [DONE]\n\n"), cfg)
			drainStream(st)
			assert.Equal(t, tt.answer, st.Answer())
			if tt.ok {
				assert.NoError(t, st.Err())
				return
			}
			require.Error(t, st.Err())
			assert.Contains(t, st.Err().Error(), "the answer is larger than 10 bytes (raise the limit with WithMaxAnswerSize)")
			assert.NotErrorIs(t, st.Err(), ErrStreamTruncated)
		})
	}
	_, err := NewClient(WithMaxAnswerSize(0))
	assert.ErrorContains(t, err, "WithMaxAnswerSize: 0 is not positive")
}

// TestStreamNeverReadLeavesNothing: streams that are opened and never read nor closed leave no
// goroutine behind once their context ends.
func TestStreamNeverReadLeavesNothing(t *testing.T) {
	check := leakCheck(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeSSE(w, "event: answer\ndata: Hi\n\n")
		<-r.Context().Done()
	}))
	hc := &http.Client{Transport: &http.Transport{}}
	c, err := NewClient(WithBaseURL(srv.URL), WithHTTPClient(hc), WithAPIKey("k"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var streams []*Stream
	for range 20 {
		st, err := c.QueryStream(ctx, "a", QueryRequest{Query: "Hi"})
		require.NoError(t, err)
		streams = append(streams, st)
	}
	cancel()
	srv.Close()
	hc.CloseIdleConnections()
	check()
	runtime.KeepAlive(streams)
}

// TestStreamEmptyEventsAreLinear: after a 4 MiB event has grown the buffers, 100,000 events with
// empty data, blocks without data or comments cost about what as many "data: x" events cost.
// The quadratic rescan this guards against took 687 times as long.
func TestStreamEmptyEventsAreLinear(t *testing.T) {
	big := "event: tool_call\ndata: " + strings.Repeat("x", 4<<20) + "\n\n"
	cost := func(block string) time.Duration {
		in := big + strings.Repeat(block, 100_000) + "data: [DONE]\n\n"
		best := time.Duration(1<<63 - 1)
		for range 3 {
			start := time.Now()
			st := readerStream(&chunkReader{r: strings.NewReader(in), n: 1400}, nil)
			for st.Next() {
			}
			require.NoError(t, st.Err())
			best = min(best, time.Since(start))
		}
		return best
	}
	base := cost("data: x\n\n")
	for _, block := range []string{"data:\n\n", "event: ping\n\n", ": comment\n\n", "id: 1\nretry: 5\n\n"} {
		ratio := float64(cost(block)) / float64(base)
		t.Logf("%q: %.2fx the cost of as many \"data: x\" events", block, ratio)
		assert.Less(t, ratio, 3.0, "%q costs %.2fx \"data: x\"", block, ratio)
	}
}

// xReader hands out n bytes 'x', 1,400 per read, from no buffer of its own.
type xReader struct{ n int }

func (r *xReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n, 1400)
	for i := range p[:k] {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

// heapHeld returns the heap that fn's result keeps, after a collection.
func heapHeld(fn func() any) int64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := fn()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc)
}

// TestStreamMemoryAfterALargeEvent: after one 1 MiB event, an open stream waiting for more holds
// at most 2.5 MiB, and a finished one (which keeps the answer, the response and the last event)
// at most 1.5 MiB. Percent-encoded, the last event also keeps its text as received (Raw), so a
// finished stream holds about 2 MiB. An endpoint_response is held as its Data, its Response's
// Raw and Answer (a string and a []byte cannot share memory), and its Raw when encoded.
func TestStreamMemoryAfterALargeEvent(t *testing.T) {
	const mib = 1 << 20
	for _, ev := range []struct {
		name, typ, head, tail string  // the payload: head, then 'x' to 1 MiB in all, then tail
		open, finished        float64 // the budgets, in MiB
	}{
		{"tool_call", "tool_call", "", "", 2.5, 1.5},
		{"answer", "answer", "", "", 2.5, 1.5},
		{"encoded tool_call", "tool_call", "", "%41", 2.5, 2.5},
		{"encoded answer", "answer", "", "%41", 2.5, 2.5},
		{"endpoint_response", "endpoint_response", `{"answer":"`, `"}`, 3.5, 3.5},
		{"encoded endpoint_response", "endpoint_response", "%7B%22answer%22%3A%22", "%22%7D", 4.5, 4.5},
	} {
		for _, tt := range []struct {
			name  string
			tail  string
			limit float64
		}{{"open", "", ev.open}, {"finished", "data: [DONE]\n\n", ev.finished}} {
			t.Run(ev.name+"/"+tt.name, func(t *testing.T) {
				held := heapHeld(func() any {
					body := io.MultiReader(strings.NewReader("event: "+ev.typ+"\ndata: "+ev.head),
						&xReader{n: mib - len(ev.head) - len(ev.tail)}, strings.NewReader(ev.tail+"\n\n"+tt.tail))
					st := readerStream(body, nil)
					require.True(t, st.Next())
					require.Len(t, st.Current().Raw, mib)
					if tt.tail != "" {
						require.False(t, st.Next())
						require.NoError(t, st.Err())
					}
					return st
				})
				t.Logf("%s stream after a 1 MiB %s event holds %.2f MiB", tt.name, ev.name, float64(held)/mib)
				assert.Less(t, float64(held)/mib, tt.limit)
			})
		}
	}
}

// TestIdleStreamsCostWhatNetHTTPCosts: open streams waiting for their next event hold no more
// goroutines than net/http with a bufio.Reader, and not much more heap (the target is 1.15x,
// measured by BenchmarkStreamIdle; the margin here is generous).
func TestIdleStreamsCostWhatNetHTTPCosts(t *testing.T) {
	const n = 100
	openIdleStreams(t, 10, false) // warm up what the first connections set up
	openIdleStreams(t, 10, true)
	baseHeap, baseG := openIdleStreams(t, n, false)
	heap, g := openIdleStreams(t, n, true)
	t.Logf("per stream: %.0f B and %.2f goroutines; net/http+bufio: %.0f B and %.2f goroutines", heap, g, baseHeap, baseG)
	assert.LessOrEqual(t, g, baseG+0.05, "goroutines per stream")
	assert.Less(t, heap, 1.5*baseHeap, "heap per stream")
}
