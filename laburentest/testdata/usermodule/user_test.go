// Package usermodule stands for a user's project: a module outside laburen-go that tests its
// code with laburentest, with nothing but the standard library. external_test.go copies it to a
// temporary module and runs go test there.
package usermodule

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

func TestQuery(t *testing.T) {
	srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer("Your order ships today.")))
	defer srv.Close()
	res, err := srv.Client().Query(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Where is my order?"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "Your order ships today." {
		t.Fatalf("answer %q", res.Answer)
	}
	conv, ok := srv.Conversation(res.ConversationID)
	if !ok || len(conv.Messages) != 2 || conv.Messages[0].Text != "Where is my order?" {
		t.Fatalf("conversation %+v", conv)
	}
}

func TestStream(t *testing.T) {
	srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer("Hola, ¿cómo estás?")))
	defer srv.Close()
	st, err := srv.Client().QueryStream(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var pieces int
	for st.Next() {
		if st.Current().Type == laburen.EventAnswer {
			pieces++
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if st.Answer() != "Hola, ¿cómo estás?" || pieces != 3 {
		t.Fatalf("answer %q in %d pieces", st.Answer(), pieces)
	}
}

func TestWebhookRoundTrip(t *testing.T) {
	srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer("One.\n\nTwo.")))
	defer srv.Close()
	srv.AddAgent("support", laburentest.Conversational())

	got := make(chan *laburen.WebhookEvent, 1)
	secret := []byte("0123456789abcdef0123456789abcdef")
	receiver := httptest.NewServer(laburen.NewWebhookHandler(func(_ context.Context, ev *laburen.WebhookEvent) error {
		got <- ev
		return nil
	}, laburen.WithWebhookSecret(secret)))
	defer receiver.Close()
	hook, err := laburen.SignWebhookURL(receiver.URL+"/hook", url.Values{"order": {"A-1"}}, secret)
	if err != nil {
		t.Fatal(err)
	}

	q, err := srv.Client().QueryAsync(context.Background(), "support", laburen.QueryRequest{Query: "Hi", WebhookURL: hook})
	if err != nil {
		t.Fatal(err)
	}
	if !q.Queued() {
		t.Fatal("not queued")
	}
	ev := <-got
	if ev.ConversationID != q.ConversationID || len(ev.Messages) != 2 || ev.Messages[1].Text != "Two." || ev.Params.Get("order") != "A-1" {
		t.Fatalf("event %v %+v", ev, ev.Messages)
	}
	ds, err := srv.WaitWebhooks(context.Background(), 1)
	if err != nil || ds[0].StatusCode != http.StatusOK {
		t.Fatal(ds, err)
	}
}

func TestFault(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	c := srv.Client()

	srv.UsageLimitNext(1)
	if _, err := c.Query(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Hi"}); !errors.Is(err, laburen.ErrUsageLimit) {
		t.Fatalf("got %v, want a usage limit", err)
	}

	srv.CutStreamNext(1, 2)
	st, err := c.QueryStream(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Final(); !errors.Is(err, laburen.ErrStreamTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want a truncated stream", err)
	}
}
