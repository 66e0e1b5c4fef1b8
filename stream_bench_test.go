package laburen

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// Streaming benchmarks. Each SDK benchmark runs beside its baseline:
//
//	go test -run '^$' -bench 'BenchmarkStream' -benchtime 20x -count 6 .
//
// Results are in BENCHMARKS.md, section "Streaming".

// readerStream returns a Stream over r, as QueryStream makes it over a response body.
func readerStream(r io.Reader, cfg *config) *Stream {
	if cfg == nil {
		cfg = &config{maxEventSize: DefaultMaxEventSize, streamIdleTimeout: DefaultStreamIdleTimeout}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return newStream(context.Background(), ctx, cancel, "stream test", 200, io.NopCloser(r), cfg, nil)
}

// answerEvents is n answer events carrying word each, then [DONE].
func answerEvents(n int, word string) []byte {
	var b bytes.Buffer
	for range n {
		b.WriteString("event: answer\ndata: " + word + "\n\n")
	}
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// perEvent reports ns/event and allocs/event for a benchmark that handled events per op.
func perEvent(b *testing.B, events int, mallocs uint64) {
	n := float64(b.N) * float64(events)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/event")
	b.ReportMetric(float64(mallocs)/n, "allocs/event")
}

func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// BenchmarkStreamSmallEvents: 100,000 small answer events, joined. The baseline is a bare
// sse.Read loop over the same bytes that joins the answer events too.
func BenchmarkStreamSmallEvents(b *testing.B) {
	const n = 100_000
	for _, enc := range []struct{ name, word, decoded string }{
		{"plain", "word", "word"},
		{"percent-encoded", "w%C3%B3rd%20", "wórd "},
	} {
		input := answerEvents(n, enc.word)
		b.Run(enc.name+"/baseline=sse.Read", func(b *testing.B) {
			start := mallocs()
			for b.Loop() {
				var sb strings.Builder
				for ev, err := range sse.Read(bytes.NewReader(input), &sse.ReadConfig{MaxEventSize: DefaultMaxEventSize}) {
					if err != nil {
						b.Fatal(err)
					}
					if ev.Type == "answer" {
						sb.WriteString(ev.Data)
					}
				}
			}
			perEvent(b, n+1, mallocs()-start)
		})
		b.Run(enc.name+"/baseline=bufio", func(b *testing.B) {
			start := mallocs()
			for b.Loop() {
				if got := bufioAnswer(input); len(got) != n*len(enc.word) {
					b.Fatal(len(got))
				}
			}
			perEvent(b, n+1, mallocs()-start)
		})
		b.Run(enc.name+"/Stream", func(b *testing.B) {
			start := mallocs()
			for b.Loop() {
				st := readerStream(bytes.NewReader(input), nil)
				for st.Next() {
				}
				if st.Err() != nil || len(st.Answer()) != n*len(enc.decoded) {
					b.Fatal(st.Err(), len(st.Answer()))
				}
			}
			perEvent(b, n+1, mallocs()-start)
		})
	}
}

// bufioAnswer is the minimal loop over an event stream that a correct consumer of these
// inputs needs: a bufio.Reader splits the lines (LF only); "event:" and "data:" lose the colon
// and one optional space; the data lines of a block are joined with '\n' and copied; a blank
// line dispatches the block, whose data joins the answer when its type is "answer", and a
// "[DONE]" message ends the loop. It is the second baseline of the Stream.
func bufioAnswer(input []byte) string {
	br := bufio.NewReader(bytes.NewReader(input))
	var sb strings.Builder
	var typ, data []byte
	hasData := false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return sb.String()
		}
		line = line[:len(line)-1]
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch {
		case len(line) == 0 && hasData && string(typ) == "answer":
			sb.Write(data)
		case len(line) == 0 && hasData && len(typ) == 0 && string(data) == "[DONE]":
			return sb.String()
		case string(name) == "event":
			typ = append(typ[:0], value...)
		case string(name) == "data" && hasData:
			data = append(append(data, '\n'), value...)
		case string(name) == "data":
			data, hasData = append(data[:0], value...), true
		}
		if len(line) == 0 {
			typ, hasData = typ[:0], false
		}
	}
}

// BenchmarkStreamSmallEventsRatio runs the Stream and its two baselines (the bare sse.Read loop
// and the minimal bufio loop of BenchmarkStreamSmallEvents) in each iteration, in an order that
// rotates from one iteration to the next, and reports the ratios of their times, which a busy
// machine disturbs much less than separate benchmarks: the median over the iterations of each
// iteration's ratio, which a burst of load during one iteration does not move.
func BenchmarkStreamSmallEventsRatio(b *testing.B) {
	const n = 100_000
	for _, enc := range []struct{ name, word string }{{"plain", "word"}, {"percent-encoded", "w%C3%B3rd%20"}} {
		input := answerEvents(n, enc.word)
		var bare, minimal, stream string
		run := []func(){
			func() {
				var sb strings.Builder
				for ev, err := range sse.Read(bytes.NewReader(input), &sse.ReadConfig{MaxEventSize: DefaultMaxEventSize}) {
					if err != nil {
						b.Fatal(err)
					}
					if ev.Type == "answer" {
						sb.WriteString(ev.Data)
					}
				}
				bare = sb.String()
			},
			func() { minimal = bufioAnswer(input) },
			func() {
				st := readerStream(bytes.NewReader(input), nil)
				for st.Next() {
				}
				if st.Err() != nil {
					b.Fatal(st.Err())
				}
				stream = st.Answer()
			},
		}
		b.Run(enc.name, func(b *testing.B) {
			var total [3]time.Duration
			var toMinimal, toBase []float64
			for i := 0; b.Loop(); i++ {
				var took [3]time.Duration
				for k := range run {
					k = (k + i) % len(run)
					t := time.Now()
					run[k]()
					took[k] = time.Since(t)
					total[k] += took[k]
				}
				toMinimal = append(toMinimal, float64(took[2])/float64(took[1]))
				toBase = append(toBase, float64(took[2])/float64(took[0]))
				if stream != decodePayload(bare) || minimal != bare {
					b.Fatal("the three answers differ")
				}
			}
			perEvent := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N*(n+1)) }
			b.ReportMetric(median(toMinimal), "Stream/bufio")
			b.ReportMetric(perEvent(total[0]), "baseline-ns/event")
			b.ReportMetric(perEvent(total[1]), "bufio-ns/event")
			b.ReportMetric(perEvent(total[2]), "Stream-ns/event")
			b.ReportMetric(median(toBase), "Stream/sse.Read")
		})
	}
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// BenchmarkStreamLargeEvent: a 1 MiB event, an endpoint_response (which the Stream decodes as
// JSON) and a tool_call (which it does not). "one read" hands out the whole body at once (a
// single pass); "1400B reads" hands it out 1,400 bytes per read, as a network does, which makes
// a bare sse.Read rescan the event at every read.
func BenchmarkStreamLargeEvent(b *testing.B) {
	for _, typ := range []string{"endpoint_response", "tool_call"} {
		body := []byte("event: " + typ + "\ndata: " + `{"messageId":"m1","answer":"` +
			strings.Repeat("All work and no play. ", (1<<20)/22) + `"}` + "\n\ndata: [DONE]\n\n")
		reader := func(chunk int) io.Reader {
			if chunk == 0 {
				return bytes.NewReader(body)
			}
			return &chunkReader{r: bytes.NewReader(body), n: chunk}
		}
		bare := func(b *testing.B, chunk int, decode bool) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				for ev, err := range sse.Read(reader(chunk), &sse.ReadConfig{MaxEventSize: DefaultMaxEventSize}) {
					if err != nil {
						b.Fatal(err)
					}
					if decode && ev.Type == typ {
						var res QueryResponse
						if err := decodeOwnedJSON([]byte(ev.Data), &res); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
		}
		stream := func(b *testing.B, chunk int) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				st := readerStream(reader(chunk), nil)
				n := 0
				for st.Next() {
					n = len(st.Current().Data)
				}
				if st.Err() != nil || n != len(body)-len("event: \ndata: \n\ndata: [DONE]\n\n")-len(typ) {
					b.Fatal(st.Err(), n)
				}
			}
		}
		decode := typ == "endpoint_response" // the Stream parses it: so does its second baseline
		b.Run(typ+"/baseline=sse.Read/one read", func(b *testing.B) { bare(b, 0, false) })
		if decode {
			b.Run(typ+"/baseline=sse.Read+json/one read", func(b *testing.B) { bare(b, 0, true) })
		}
		b.Run(typ+"/sse.Read/1400B reads", func(b *testing.B) { bare(b, 1400, decode) })
		b.Run(typ+"/Stream/one read", func(b *testing.B) { stream(b, 0) })
		b.Run(typ+"/Stream/1400B reads", func(b *testing.B) { stream(b, 1400) })
	}
}

// BenchmarkStreamFirstEventDelay: the time from the server's flush of the first event to the
// caller holding it, over loopback HTTP, while the server holds the rest of the stream back.
// The baseline reads the raw body up to the event's blank line.
func BenchmarkStreamFirstEventDelay(b *testing.B) {
	sent := make(chan time.Time, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		io.ReadAll(r.Body)
		t0 := time.Now()
		io.WriteString(w, "event: answer\ndata: Hello\n\n")
		w.(http.Flusher).Flush()
		sent <- t0
		<-r.Context().Done() // hold the stream open until the client has the event
	}))
	defer srv.Close()
	c, err := NewClient(WithBaseURL(srv.URL), WithHTTPClient(srv.Client()), WithAPIKey("k"))
	if err != nil {
		b.Fatal(err)
	}
	report := func(b *testing.B, delays []time.Duration) {
		slices.Sort(delays)
		b.ReportMetric(float64(delays[len(delays)/2].Microseconds()), "µs-median-delay")
		b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds()), "µs-p99-delay")
	}
	b.Run("baseline=raw body", func(b *testing.B) {
		var delays []time.Duration
		for b.Loop() {
			res, err := srv.Client().Post(srv.URL+"/agents/a/query", "application/json", strings.NewReader(`{}`))
			if err != nil {
				b.Fatal(err)
			}
			br := bufio.NewReader(res.Body)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					b.Fatal(err)
				}
				if line == "\n" {
					break
				}
			}
			delays = append(delays, time.Since(<-sent))
			res.Body.Close()
		}
		report(b, delays)
	})
	b.Run("Stream", func(b *testing.B) {
		var delays []time.Duration
		for b.Loop() {
			st, err := c.QueryStream(context.Background(), "a", QueryRequest{Query: "Hi"})
			if err != nil {
				b.Fatal(err)
			}
			if !st.Next() {
				b.Fatal(st.Err())
			}
			delays = append(delays, time.Since(<-sent))
			st.Close()
		}
		report(b, delays)
	})
}

// openIdleStreams opens n streams over loopback that have each delivered one event and wait
// for more, with the SDK or with net/http and a bufio.Reader, and returns the heap and the
// goroutines they hold per stream (the server's side, the same for both, included).
func openIdleStreams(tb testing.TB, n int, sdk bool) (heapPerStream, goroutinesPerStream float64) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: answer\ndata: Hello\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	c, err := NewClient(WithBaseURL(srv.URL), WithHTTPClient(hc), WithAPIKey("k"))
	if err != nil {
		tb.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	closers := make([]io.Closer, 0, n)
	for range n {
		if sdk {
			st, err := c.QueryStream(context.Background(), "a", QueryRequest{Query: "Hi"})
			if err != nil || !st.Next() {
				tb.Fatal(err, st.Err())
			}
			closers = append(closers, st)
			continue
		}
		req, _ := http.NewRequest("POST", srv.URL+"/agents/a/query", strings.NewReader(`{"query":"Hi","streaming":true}`))
		req.Header.Set("Authorization", "Bearer k")
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		br := bufio.NewReader(res.Body)
		for line := ""; line != "\n"; {
			if line, err = br.ReadString('\n'); err != nil {
				tb.Fatal(err)
			}
		}
		closers = append(closers, struct {
			*bufio.Reader
			io.Closer
		}{br, res.Body})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	g1 := runtime.NumGoroutine()
	for _, c := range closers {
		c.Close()
	}
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n), float64(g1-g0) / float64(n)
}

// BenchmarkStreamIdle: 1,000 open streams over loopback, each idle after its first event. The
// baseline holds each response with net/http and a bufio.Reader. Run it with -benchtime 1x.
func BenchmarkStreamIdle(b *testing.B) {
	const n = 1000
	for _, v := range []struct {
		name string
		sdk  bool
	}{{"baseline=net/http+bufio", false}, {"Stream", true}} {
		b.Run(v.name, func(b *testing.B) {
			var heap, goroutines float64
			for b.Loop() {
				heap, goroutines = openIdleStreams(b, n, v.sdk)
			}
			b.ReportMetric(heap, "heap-B/stream")
			b.ReportMetric(goroutines, "goroutines/stream")
		})
	}
}
