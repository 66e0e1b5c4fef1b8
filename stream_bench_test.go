package laburen

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	sse "github.com/tmaxmax/go-sse"
)

// readerStream returns a Stream over r, as QueryStream makes it over a response body.
func readerStream(r io.Reader, cfg *config) *Stream {
	if cfg == nil {
		cfg = &config{maxEventSize: DefaultMaxEventSize, streamIdleTimeout: DefaultStreamIdleTimeout}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return newStream(context.Background(), ctx, cancel, "stream test", 200, io.NopCloser(r), cfg)
}

// smallEvents is n answer events of one word each, then [DONE].
func smallEvents(n int) []byte {
	var b bytes.Buffer
	for range n {
		b.WriteString("event: answer\ndata: word\n\n")
	}
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

func BenchmarkStreamSmallEvents(b *testing.B) {
	const n = 100_000
	input := smallEvents(n)
	report := func(b *testing.B) {
		events := float64(b.N) * (n + 1)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
		b.ReportMetric(float64(testing.AllocsPerRun(0, func() {}))/events, "x")
	}
	_ = report
	b.Run("baseline=sse.Read", func(b *testing.B) {
		b.ReportAllocs()
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
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(b.N)*(n+1)), "ns/event")
	})
	b.Run("Stream", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			st := readerStream(bytes.NewReader(input), nil)
			for st.Next() {
			}
			if st.Err() != nil || len(st.Answer()) != 4*n {
				b.Fatal(st.Err(), len(st.Answer()))
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(b.N)*(n+1)), "ns/event")
	})
}
