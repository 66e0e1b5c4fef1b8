package laburen

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkWebhookHandler measures NewWebhookHandler with a secret receiving distinct
// deliveries of the documented body, beside a hand-written handler that checks the same
// HMAC-SHA256 signature, reads the body with io.ReadAll and decodes it with one json.Unmarshal
// into a similar struct. Both answer the same prebuilt requests, in the same run.
//
//	go test -run '^$' -bench 'BenchmarkWebhookHandler' -benchmem -count 6 .
func BenchmarkWebhookHandler(b *testing.B) {
	const n = 256
	signed, err := SignWebhookURL("https://hooks.example.com/webhook/laburen", url.Values{"tenant": {"acme"}}, whSecret)
	if err != nil {
		b.Fatal(err)
	}
	target := strings.TrimPrefix(signed, "https://hooks.example.com")
	reqs := make([]*http.Request, n)
	bodies := make([]*benchBody, n)
	for i := range reqs {
		body := strings.Replace(whDocBody, `"messageId":"clmsg1"`, fmt.Sprintf(`"messageId":"clmsg%d"`, i), 1)
		u, err := url.ParseRequestURI(target)
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = &benchBody{data: []byte(body)}
		reqs[i] = &http.Request{
			Method: http.MethodPost, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{"Content-Type": {"application/json"}, WebhookEventHeader: {WebhookEventAgentResponse}},
			Body:          bodies[i],
			ContentLength: int64(len(body)),
		}
	}
	handled := 0
	handlers := []struct {
		name string
		h    http.Handler
	}{
		{"sdk", NewWebhookHandler(func(_ context.Context, ev *WebhookEvent) error {
			if ev.AgentResponse != nil && len(ev.Messages) == 2 {
				handled++
			}
			return nil
		}, WithWebhookSecret(whSecret), WithWebhookLogger(nil))},
		{"baseline", baselineWebhookHandler(whSecret, func(p *baselineWebhook) {
			if p.AgentResponse != nil && len(p.Messages) == 2 {
				handled++
			}
		})},
	}
	for _, h := range handlers {
		b.Run(h.name, func(b *testing.B) {
			w := &benchResponse{header: http.Header{}}
			handled = 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				bodies[i%n].Reset()
				w.status = 0
				h.h.ServeHTTP(w, reqs[i%n])
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
			if handled == 0 {
				b.Fatal("no delivery reached the function")
			}
		})
	}
}

// baselineWebhook is the documented body, decoded by hand.
type baselineWebhook struct {
	ConversationID string `json:"conversationId"`
	Messages       []struct {
		Text string `json:"text"`
	} `json:"messages"`
	AgentResponse *baselineResponse `json:"agentResponse"` // as in the Query benchmark
}

// baselineWebhookHandler checks the URL's signature (the query before it, as signed), reads
// the body and decodes it once.
func baselineWebhookHandler(secret []byte, fn func(*baselineWebhook)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.RawQuery
		i := strings.LastIndex(q, WebhookSignatureParam+"=")
		if r.Method != http.MethodPost || i < 0 {
			http.Error(w, "unsigned", http.StatusUnauthorized)
			return
		}
		sig, err := base64.RawURLEncoding.DecodeString(q[i+len(WebhookSignatureParam)+1:])
		m := hmac.New(sha256.New, secret)
		io.WriteString(m, "laburen-webhook-url-v1\n"+r.URL.EscapedPath()+"\n"+strings.TrimSuffix(q[:i], "&"))
		if err != nil || !hmac.Equal(sig, m.Sum(nil)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, DefaultWebhookMaxBodySize))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		var p baselineWebhook
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "malformed", http.StatusBadRequest)
			return
		}
		fn(&p)
		w.WriteHeader(http.StatusOK)
	})
}

// benchBody is a request body that can be read again.
type benchBody struct {
	data []byte
	r    bytes.Reader
}

func (b *benchBody) Reset()                     { b.r.Reset(b.data) }
func (b *benchBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *benchBody) Close() error               { return nil }

// benchResponse is a ResponseWriter that keeps only the status.
type benchResponse struct {
	header http.Header
	status int
}

func (w *benchResponse) Header() http.Header         { return w.header }
func (w *benchResponse) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchResponse) WriteHeader(status int)      { w.status = status }
