// Command chatwoot connects a Chatwoot (CRM) conversation with a Laburen agent. The
// conversation is named crmchatsappai_{accountId}_{customerId}, so that the customer's
// message, the agent's answer and the operator's reply all land in the thread the CRM already
// has: a malformed ID would silently start another one, so the SDK refuses it.
//
//	LABUREN_API_KEY=... LABUREN_AGENT_ID=... go run ./examples/chatwoot 12 345 "Where is my order?"
//
// It sends the customer's message with Query and prints the answer, then records an operator's
// reply with AgentQuery in the same conversation. Without LABUREN_API_KEY and LABUREN_AGENT_ID
// it starts laburentest, the SDK's fake server, in-process and says so on stderr.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chatwoot:", err)
		os.Exit(1)
	}
}

// operatorReply is the message the example records on the operator's behalf.
const operatorReply = "Hi, this is Ana from support: I'm checking it with the warehouse."

// run takes the Chatwoot account ID, customer ID and the customer's message from args (each
// with a default).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	account, customer, message := "12", "345", "Where is my order?"
	if len(args) > 0 {
		account = args[0]
	}
	if len(args) > 1 {
		customer = args[1]
	}
	if len(args) > 2 {
		message = strings.Join(args[2:], " ")
	}
	conversationID, err := laburen.ChatwootConversationID(account, customer)
	if err != nil {
		return err // a *laburen.ValidationError naming the bad part
	}

	// The real API when LABUREN_API_KEY and LABUREN_AGENT_ID are set, otherwise a fake server in
	// this process. In your program: c, err := laburen.NewClient() reads LABUREN_API_KEY.
	c, agentID, fake, err := connect(getenv, stderr)
	if err != nil {
		return err
	}
	if fake != nil {
		defer fake.Close()
	}

	// The customer's message, as the CRM receives it.
	res, err := c.Query(ctx, agentID, laburen.QueryRequest{
		Query:          message,
		ConversationID: conversationID,
		Channel:        laburen.ChannelCRMChatsAppAI,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "conversation:", res.ConversationID)
	fmt.Fprintln(stdout, "customer:", message)
	fmt.Fprintln(stdout, "agent:", res.Answer)

	// An operator answers in the CRM: the message joins the same conversation.
	m, err := c.AgentQuery(ctx, agentID, laburen.AgentQueryRequest{
		Query:          operatorReply,
		ConversationID: conversationID,
		Channel:        laburen.ChannelCRMChatsAppAI,
		Metadata:       map[string]any{"source": "chatwoot"},
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "operator:", operatorReply)
	fmt.Fprintln(stdout, "status:", m.Status)
	return nil
}

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
