package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/internal/httpurl"
)

// webhook dispatches "webhook sign" and "webhook send".
func (cl *cli) webhook(ctx context.Context, args []string) error {
	fs := newFlags("webhook", "sign|send [flags] [arguments]",
		"sign  print a signed webhook URL\n"+
			"send  POST a test agent.response delivery to a webhook receiver\n\n"+
			"Run \"laburen webhook sign -h\" or \"laburen webhook send -h\" for their flags.")
	if err := fs.parse(args, 1, -1); err != nil {
		return err
	}
	switch fs.Arg(0) {
	case "sign":
		return cl.webhookSign(fs.Args()[1:])
	case "send":
		return cl.webhookSend(ctx, fs.Args()[1:])
	}
	return fs.fail("unknown subcommand %q", fs.Arg(0))
}

// webhookSign prints a signed webhook URL.
func (cl *cli) webhookSign(args []string) error {
	fs := newFlags("webhook sign", "-secret SECRET URL [KEY=VALUE]...",
		"Prints URL with the KEY=VALUE parameters added and signed with SECRET, as\n"+
			"laburen.SignWebhookURL does: a query's webhookUrl, which a receiver configured with\n"+
			"laburen.WithWebhookSecret(SECRET) accepts, its parameters verified. The signed URL is a\n"+
			"credential: keep it out of logs.")
	secret := fs.String("secret", "", "the webhook `SECRET` (at least 16 bytes)")
	if err := fs.parse(args, 1, -1); err != nil {
		return err
	}
	if *secret == "" {
		return fs.fail("-secret is required")
	}
	params := url.Values{}
	for _, kv := range fs.Args()[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fs.fail("%q is not KEY=VALUE", kv)
		}
		params.Add(k, v)
	}
	signed, err := laburen.SignWebhookURL(fs.Arg(0), params, []byte(*secret))
	if err != nil {
		return fs.fail("%v", err)
	}
	fmt.Fprintln(cl.stdout, signed)
	return nil
}

// defaultDeliveryText is the message of a delivery sent without -text.
const defaultDeliveryText = "Hola! This is a test delivery from laburen webhook send."

// delivery is the body of an agent.response webhook delivery.
type delivery struct {
	ConversationID string                `json:"conversationId"`
	Messages       []deliveryMessage     `json:"messages"`
	AgentResponse  laburen.QueryResponse `json:"agentResponse"`
}

type deliveryMessage struct {
	Text string `json:"text"`
}

// webhookSend POSTs test deliveries to a receiver and prints the status of each answer.
func (cl *cli) webhookSend(ctx context.Context, args []string) error {
	fs := newFlags("webhook send", "-url URL [-secret SECRET] [-conversation ID] [-text TEXT]... [-times N]",
		"POSTs a delivery shaped as Laburen's agent.response (header X-Laburen-Event:\n"+
			"agent.response; JSON body with conversationId, messages and agentResponse) to URL, N times\n"+
			"with the same messageId as redeliveries are, and prints the status of each answer. With\n"+
			"-secret the URL is signed first, as laburen.SignWebhookURL does. The exit status is 1 when\n"+
			"an answer is not 200 OK.")
	target := fs.String("url", "", "the receiver's `URL`")
	secret := fs.String("secret", "", "sign the URL with `SECRET`, the receiver's laburen.WithWebhookSecret")
	conv := fs.String("conversation", "", "the conversation `ID` (default: a new one)")
	var texts stringList
	fs.Var(&texts, "text", "a chat message `TEXT` of the answer, in order (repeatable; default: one test message)")
	times := fs.Int("times", 1, "send the delivery `N` times")
	if err := fs.parse(args, 0, 0); err != nil {
		return err
	}
	u, err := httpurl.Parse(*target)
	switch {
	case *target == "":
		return fs.fail("-url is required")
	case err != nil:
		return fs.fail("-url %v", err)
	case *times < 1:
		return fs.fail("-times must be at least 1")
	}
	dest := *target
	if *secret != "" {
		if dest, err = laburen.SignWebhookURL(dest, nil, []byte(*secret)); err != nil {
			return fs.fail("%v", err)
		}
	}
	shown := *u // the URL without its query, which may hold the signature
	shown.RawQuery, shown.ForceQuery = "", false

	if len(texts) == 0 {
		texts = stringList{defaultDeliveryText}
	}
	d := delivery{ConversationID: *conv}
	if d.ConversationID == "" {
		d.ConversationID = newID()
	}
	for _, t := range texts {
		d.Messages = append(d.Messages, deliveryMessage{Text: t})
	}
	d.AgentResponse = laburen.QueryResponse{
		Answer:         strings.Join(texts, "\n\n"),
		Sources:        []laburen.Source{},
		Approvals:      []laburen.Approval{},
		MessageID:      newID(),
		ConversationID: d.ConversationID,
		VisitorID:      newID(),
		Status:         laburen.StatusUnresolved,
	}
	body, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("laburen webhook send: encode the delivery: %w", err)
	}

	hc := &http.Client{Timeout: 30 * time.Second}
	failed := 0
	for i := 1; i <= *times; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, dest, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("laburen webhook send: POST %s: %w", shown.Redacted(), unwrapURLError(err))
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "laburen-cli/"+laburen.Version)
		req.Header.Set(laburen.WebhookEventHeader, laburen.WebhookEventAgentResponse)
		res, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("laburen webhook send: POST %s: %w", shown.Redacted(), unwrapURLError(err))
		}
		answer, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
		res.Body.Close()
		fmt.Fprintf(cl.stdout, "delivery %d: %s\n", i, res.Status)
		if res.StatusCode != http.StatusOK {
			failed++
			if msg := strings.TrimSpace(string(answer)); msg != "" {
				fmt.Fprintf(cl.stderr, "delivery %d: the receiver answered %q\n", i, msg)
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("laburen webhook send: %d of %d deliveries were not answered 200 OK", failed, *times)
	}
	return nil
}

// unwrapURLError drops the *url.Error around err, which repeats the URL and so the signature.
func unwrapURLError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

// newID returns a CUID-like ID: "c" and 24 lowercase letters and digits.
func newID() string {
	return "c" + strings.ToLower(rand.Text()[:24])
}
