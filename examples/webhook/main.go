// Command webhook gets an agent's answer by webhook, as in conversational mode: it starts a
// receiver, signs the receiver's URL, sends the query with QueryAsync, and prints the answer's
// messages when Laburen delivers them.
//
//	LABUREN_API_KEY=... LABUREN_AGENT_ID=... \
//	LABUREN_WEBHOOK_ADDR=:8080 LABUREN_WEBHOOK_URL=https://<public host>/webhook/laburen \
//	go run ./examples/webhook "Where is my order?"
//
// Laburen must be able to reach the receiver: LABUREN_WEBHOOK_URL is its public URL (a tunnel
// to LABUREN_WEBHOOK_ADDR, for example), and LABUREN_WEBHOOK_ADDR the local address it listens
// on (default 127.0.0.1 on a free port; the URL then defaults to that address, which only a
// server on this machine can reach). LABUREN_WEBHOOK_SECRET signs the URL (at least 16 bytes;
// default: random bytes for this run). The agent must have conversational mode on; if it
// answers at once instead, the program prints that answer. A delivery that fails ends the
// program with an error at once.
//
// Without LABUREN_API_KEY and LABUREN_AGENT_ID it starts laburentest, the SDK's fake server,
// in-process with a conversational agent, and says so on stderr.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

// waitLimit bounds the wait for the delivery.
const waitLimit = 2 * time.Minute

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "webhook:", err)
		os.Exit(1)
	}
}

// hookParams are the receiver's own parameters, carried in the signed webhook URL: Laburen
// sends them back with the answer, and the signature proves they are the ones this program set.
type hookParams struct {
	Ref string `url:"ref"`
}

// run sends the question in args (or a default one) by QueryAsync and prints the messages of
// the answer that arrives at the receiver.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	// The real API when LABUREN_API_KEY and LABUREN_AGENT_ID are set, otherwise a fake server in
	// this process. In your program: c, err := laburen.NewClient() reads LABUREN_API_KEY.
	secret := []byte(getenv("LABUREN_WEBHOOK_SECRET"))
	switch {
	case len(secret) == 0:
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	case len(secret) < laburen.MinWebhookSecretSize:
		return fmt.Errorf("LABUREN_WEBHOOK_SECRET has %d bytes: it needs at least %d (32 random bytes are best)",
			len(secret), laburen.MinWebhookSecretSize)
	}

	c, agentID, fake, err := connect(getenv, stderr, laburentest.WithResponder(laburentest.Answer(
		"Hola! I found your order.\n\nIt shipped yesterday and arrives tomorrow.")))
	if err != nil {
		return err
	}
	if fake != nil {
		defer fake.Close()
	}
	if fake != nil { // the fake's agent answers by webhook, as in conversational mode
		fake.AddAgent(laburentest.DefaultAgentID, laburentest.Conversational())
	}

	// The receiver: NewWebhookHandler verifies the signature, drops duplicate deliveries and
	// answers 200 once fn returns; fn hands the event over to run.
	events := make(chan *laburen.WebhookEvent, 1)
	handler := laburen.NewWebhookHandler(func(ctx context.Context, ev *laburen.WebhookEvent) error {
		if ev.Name != laburen.WebhookEventAgentResponse {
			return nil // an event this program does not use: acknowledge it
		}
		select {
		case events <- ev:
		default: // an answer already arrived
		}
		return nil
	}, laburen.WithWebhookSecret(secret), laburen.WithWebhookDeduplicator(laburen.NewMemoryDeduplicator(100)))
	mux := http.NewServeMux()
	mux.Handle("/webhook/laburen", handler)
	// A delivery of this query (it carries ref) refused with a 4xx, for a URL that reaches
	// another path or a signature that does not match, never becomes an answer: report it
	// instead of waiting.
	ref := fmt.Sprintf("example-%d", time.Now().Unix())
	failed := make(chan error, 2)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	receive := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(sw, r)
		if sw.status >= 400 && sw.status <= 499 && r.URL.Query().Get("ref") == ref {
			fail(fmt.Errorf("the receiver refused a delivery to %s with HTTP %d", r.URL.Path, sw.status))
		}
	})

	addr := getenv("LABUREN_WEBHOOK_ADDR")
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("LABUREN_WEBHOOK_ADDR: %w", err)
	}
	receiver := &http.Server{Handler: receive, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	go func() { _ = receiver.Serve(ln) }()
	defer receiver.Shutdown(context.Background()) // waits for the handler in flight

	publicURL := getenv("LABUREN_WEBHOOK_URL")
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String() + "/webhook/laburen"
	}
	// The URL serves this one query: it expires once the answer can no longer come.
	hookURL, err := laburen.SignWebhookURL(publicURL, hookParams{Ref: ref}, secret, laburen.ExpiresAt(time.Now().Add(time.Hour)))
	if err != nil {
		return fmt.Errorf("LABUREN_WEBHOOK_URL: %w", err)
	}

	question := strings.Join(args, " ")
	if question == "" {
		question = "Where is my order?"
	}
	q, err := c.QueryAsync(ctx, agentID, laburen.QueryRequest{Query: question, WebhookURL: hookURL})
	if err != nil {
		return err
	}
	if !q.Queued() {
		fmt.Fprintln(stderr, "the agent answered at once: its conversational mode is off")
		fmt.Fprintln(stdout, q.Answer)
		return nil
	}
	fmt.Fprintf(stderr, "queued in conversation %s; waiting for the answer at %s\n", q.ConversationID, publicURL)
	if fake != nil { // the fake says when its delivery failed, wherever it was sent
		go func() {
			if ws, err := fake.WaitWebhooks(ctx, 1); err == nil && ws[0].Err != nil {
				fail(fmt.Errorf("the answer could not be delivered: %w", ws[0].Err))
			}
		}()
	}

	select {
	case ev := <-events:
		if got := ev.Params.Get("ref"); got != ref {
			return fmt.Errorf("the delivery carries ref %q, not %q", got, ref)
		}
		for _, m := range ev.Messages {
			fmt.Fprintln(stdout, m.Text)
		}
		return nil
	case err := <-failed:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(waitLimit):
		return errors.New("no answer arrived within " + waitLimit.String() + ": can Laburen reach " + publicURL + "?")
	}
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the server's writer, through which the webhook
// handler sets its read deadline.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// connect returns a client of the real API when LABUREN_API_KEY and LABUREN_AGENT_ID are set
// (and LABUREN_BASE_URL, when set, as its base URL), and the agent's ID. Otherwise it starts
// laburentest, a fake Laburen server in this process, with the options fakeOpts, says so on
// stderr, and returns a client of the fake, its agent and the fake, which the caller closes.
func connect(getenv func(string) string, stderr io.Writer, fakeOpts ...laburentest.Option) (*laburen.Client, string, *laburentest.Server, error) {
	key, agentID := getenv("LABUREN_API_KEY"), getenv("LABUREN_AGENT_ID")
	if key == "" || agentID == "" {
		fake := laburentest.NewServer(fakeOpts...)
		fmt.Fprintln(stderr, "LABUREN_API_KEY or LABUREN_AGENT_ID is not set: using laburentest, a fake Laburen server in this process")
		return fake.Client(), laburentest.DefaultAgentID, fake, nil
	}
	opts := []laburen.Option{laburen.WithAPIKey(key)}
	if base := getenv("LABUREN_BASE_URL"); base != "" {
		opts = append(opts, laburen.WithBaseURL(base))
	}
	c, err := laburen.NewClient(opts...)
	if err != nil {
		return nil, "", nil, fmt.Errorf("check LABUREN_API_KEY and LABUREN_BASE_URL: %w", err)
	}
	return c, agentID, nil, nil
}
