package laburentest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

// A test starts a server, gets a client pointed at it, and checks what the server stored.
func ExampleNewServer() {
	srv := laburentest.NewServer()
	defer srv.Close()

	c := srv.Client()
	res, err := c.Query(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Where is my order?"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Answer)

	conv, _ := srv.Conversation(res.ConversationID)
	for _, m := range conv.Messages {
		fmt.Printf("%s: %s\n", m.Role, m.Text)
	}
	// Output:
	// Hello from laburentest! You said: Where is my order?
	// user: Where is my order?
	// ai: Hello from laburentest! You said: Where is my order?
}

// A responder decides the answers; a stream sends them in word-sized events.
func ExampleWithResponder() {
	srv := laburentest.NewServer(laburentest.WithResponder(
		func(ctx context.Context, agentID string, req laburen.QueryRequest) (laburentest.Reply, error) {
			if strings.Contains(req.Query, "human") {
				return laburentest.Reply{Answer: "Transferring you.", RequestHuman: true}, nil
			}
			return laburentest.Reply{Answer: "Your order ships today."}, nil
		}))
	defer srv.Close()

	st, err := srv.Client().QueryStream(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Where is my order?"})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	for st.Next() {
		if ev := st.Current(); ev.Type == laburen.EventAnswer {
			fmt.Printf("%q\n", ev.Text)
		}
	}
	fmt.Println(st.Err())

	res, err := srv.Client().Query(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "A human, please"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Answer, res.RequestHuman, res.Status)
	// Output:
	// "Your"
	// " order"
	// " ships"
	// " today."
	// <nil>
	// Transferring you. true HUMAN_REQUESTED
}

// Faults play the API's failures: here a usage limit inside a 200 stream, and a stream cut
// off before its end.
func ExampleServer_StreamErrorNext() {
	srv := laburentest.NewServer()
	defer srv.Close()
	c := srv.Client()

	srv.StreamErrorNext(1, 2, "USAGE_LIMIT")
	st, err := c.QueryStream(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Hi"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = st.Final()
	fmt.Printf("%q %v\n", st.Answer(), errors.Is(err, laburen.ErrUsageLimit))

	srv.CutStreamNext(1, 3)
	st, err = c.QueryStream(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Hi"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = st.Final()
	fmt.Printf("%q %v\n", st.Answer(), errors.Is(err, laburen.ErrStreamTruncated))
	// Output:
	// "Hello from" true
	// "Hello from laburentest!" true
}

// A conversational agent answers by webhook: the server POSTs the answer to the receiver, and
// WaitWebhooks waits for the delivery.
func ExampleServer_WaitWebhooks() {
	srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer("Hola!\n\nYour order shipped yesterday.")))
	defer srv.Close()
	srv.AddAgent(laburentest.DefaultAgentID, laburentest.Conversational())

	// The delivery may arrive before QueryAsync returns: hand the messages over on a channel
	// so that the output keeps its order.
	received := make(chan []laburen.WebhookMessage, 1)
	receiver := httptest.NewServer(laburen.NewWebhookHandler(func(ctx context.Context, ev *laburen.WebhookEvent) error {
		received <- ev.Messages
		return nil
	}))
	defer receiver.Close()

	q, err := srv.Client().QueryAsync(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{
		Query: "Where is my order?", WebhookURL: receiver.URL + "/webhook/laburen"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(q.Status)
	for _, m := range <-received {
		fmt.Println("received:", m.Text)
	}

	deliveries, err := srv.WaitWebhooks(context.Background(), 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(deliveries[0].StatusCode, deliveries[0].ConversationID == q.ConversationID)
	// Output:
	// queued
	// received: Hola!
	// received: Your order shipped yesterday.
	// 200 true
}
