package laburen_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/laburen/laburen-go"
)

// A receiver of conversational-mode answers: it accepts only the URLs it signed, hands each
// answer to its function once, and acknowledges events it does not use.
func ExampleNewWebhookHandler() {
	secret := []byte("load-32-random-bytes-from-config") // at least 16 bytes; never in the code

	handler := laburen.NewWebhookHandler(func(ctx context.Context, ev *laburen.WebhookEvent) error {
		if ev.Name != laburen.WebhookEventAgentResponse {
			return nil // an event this receiver does not use: acknowledge it
		}
		order := ev.Params.Get("order") // verified: it comes from the signed URL
		for _, m := range ev.Messages {
			fmt.Printf("order %s, conversation %s: %s\n", order, ev.ConversationID, m.Text)
		}
		return nil // an error or a panic answers 500, and Laburen may deliver again
	},
		laburen.WithWebhookSecret(secret),
		laburen.WithWebhookDeduplicator(laburen.NewMemoryDeduplicator(10_000)),
	)
	srv := httptest.NewServer(handler) // in a service: http.Handle("/webhook/laburen", handler)
	defer srv.Close()

	// The URL to send as QueryRequest.WebhookURL with Client.QueryAsync.
	hookURL, err := laburen.SignWebhookURL(srv.URL+"/webhook/laburen", struct {
		Order string `url:"order"`
	}{Order: "A-1001"}, secret)
	if err != nil {
		log.Fatal(err)
	}

	// Laburen delivers the answer, here twice; then someone who guessed the path posts a fake.
	body := `{"conversationId":"clconv1","messages":[{"text":"Hola!"},{"text":"Your order shipped yesterday."}],` +
		`"agentResponse":{"messageId":"clmsg1","answer":"Hola! Your order shipped yesterday."}}`
	for _, target := range []string{hookURL, hookURL, srv.URL + "/webhook/laburen?order=A-1002"} {
		req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
		if err != nil {
			log.Fatal(err)
		}
		req.Header.Set(laburen.WebhookEventHeader, laburen.WebhookEventAgentResponse)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		res.Body.Close()
		fmt.Println(res.Status)
	}
	// Output:
	// order A-1001, conversation clconv1: Hola!
	// order A-1001, conversation clconv1: Your order shipped yesterday.
	// 200 OK
	// 200 OK
	// 401 Unauthorized
}

// The signature covers the path and every query parameter, the base URL's own included.
func ExampleSignWebhookURL() {
	type hookParams struct {
		Tenant string `url:"tenant"`
		Order  int    `url:"order,omitempty"`
	}
	secret := []byte("example-secret-0123456789")
	hookURL, err := laburen.SignWebhookURL("https://example.com/webhook/laburen?src=laburen",
		hookParams{Tenant: "acme", Order: 1001}, secret)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(hookURL)
	// Output:
	// https://example.com/webhook/laburen?order=1001&src=laburen&tenant=acme&laburen_sig=9XTKVdfFPWasDDQ2zDlH4q7ZbnDn4KJ0vnXoEPizYmw
}

// QueryAsync returns as soon as the query is queued; the answer comes later to the webhook.
func ExampleClient_QueryAsync() {
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"queued","conversationId":"clconv1","visitorId":"visitor-abc123",`+
			`"inputMessageId":"msg_input123","message":"Your message has been queued.",`+
			`"webhookUrl":"https://your-server.com/webhook/laburen"}`)
	}))
	defer fake.Close()

	c, err := laburen.NewClient(laburen.WithBaseURL(fake.URL), laburen.WithAPIKey("sk-example"))
	if err != nil {
		log.Fatal(err)
	}
	q, err := c.QueryAsync(context.Background(), "agent-id", laburen.QueryRequest{
		Query:      "Where is my order?",
		WebhookURL: "https://your-server.com/webhook/laburen", // from SignWebhookURL
	})
	if err != nil {
		log.Fatal(err)
	}
	if !q.Queued() { // conversational mode is off for this agent: it answered at once
		fmt.Println(q.Answer)
		return
	}
	fmt.Println(q.Status, q.ConversationID, q.InputMessageID)
	// Output:
	// queued clconv1 msg_input123
}

// The whole flow as the README shows it: a receiver, the signed URL of its webhook, and the
// query that hands that URL to Laburen. It needs a Laburen account, so it is compiled, not run.
func Example_conversationalMode() {
	ctx := context.Background()
	c, err := laburen.NewClient() // the key comes from LABUREN_API_KEY
	if err != nil {
		log.Fatal(err)
	}
	agentID := os.Getenv("LABUREN_AGENT_ID")
	receiver := &http.Server{Addr: ":8080", ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	go func() { log.Fatal(receiver.ListenAndServe()) }()

	// README receiving
	secret := []byte("load-32-random-bytes-from-config") // at least 16 bytes; never in the code

	handler := laburen.NewWebhookHandler(func(ctx context.Context, ev *laburen.WebhookEvent) error {
		if ev.Name != laburen.WebhookEventAgentResponse {
			return nil // an event this receiver does not use: acknowledge it
		}
		order := ev.Params.Get("order") // verified: it comes from the signed URL
		for _, m := range ev.Messages {
			fmt.Printf("order %s, conversation %s: %s\n", order, ev.ConversationID, m.Text)
		}
		return nil // an error or a panic answers 500, and Laburen may deliver again
	},
		laburen.WithWebhookSecret(secret),
		laburen.WithWebhookDeduplicator(laburen.NewMemoryDeduplicator(10_000)),
	)
	http.Handle("/webhook/laburen", handler)

	// The URL to send as QueryRequest.WebhookURL with Client.QueryAsync.
	hookURL, err := laburen.SignWebhookURL("https://hooks.example.com/webhook/laburen", struct {
		Order string `url:"order"`
	}{Order: "A-1001"}, secret)
	// README end
	if err != nil {
		log.Fatal(err)
	}

	// README QueryAsync
	q, err := c.QueryAsync(ctx, agentID, laburen.QueryRequest{
		Query:      "Where is my order?",
		WebhookURL: hookURL, // from SignWebhookURL, below
	})
	if err != nil {
		log.Fatal(err)
	}
	if !q.Queued() { // conversational mode is off for this agent: it answered at once
		fmt.Println(q.Answer)
		return
	}
	fmt.Println(q.Status, q.ConversationID, q.InputMessageID) // queued clconv1 msg_input123
	// README end
}
