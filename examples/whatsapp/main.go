// Command whatsapp records a message written by the agent side (a human operator, a CRM, a
// WhatsApp sender) in a customer's WhatsApp conversation. The conversation is found by its
// channelExternalId, {organizationId}_{agentId}_{phone}: with a wrong one the message would
// land in someone else's thread, so the SDK builds it and refuses what it cannot build.
//
//	LABUREN_API_KEY=... LABUREN_AGENT_ID=... LABUREN_ORGANIZATION_ID=... \
//	go run ./examples/whatsapp "+54 9 11 5555-0000" "Your order shipped today."
//
// Without LABUREN_API_KEY and LABUREN_AGENT_ID it starts laburentest, the SDK's fake server,
// in-process and says so on stderr.
package main

import (
	"context"
	"errors"
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
		fmt.Fprintln(os.Stderr, "whatsapp:", err)
		os.Exit(1)
	}
}

// run records the message (args[1:], or a default one) in the conversation of the phone number
// args[0] (or a default one).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	phone, text := "+54 9 11 5555-0000", "Your order shipped today."
	if len(args) > 0 {
		phone = args[0]
	}
	if len(args) > 1 {
		text = strings.Join(args[1:], " ")
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
	orgID := getenv("LABUREN_ORGANIZATION_ID")
	if fake != nil {
		orgID = laburentest.DefaultOrganizationID
	}
	if orgID == "" { // with the real API, the organization is LABUREN_ORGANIZATION_ID
		return errors.New("LABUREN_ORGANIZATION_ID is not set: the channelExternalId needs your organization's ID")
	}

	extID, err := laburen.WhatsAppChannelExternalID(orgID, agentID, phone)
	if err != nil {
		return err // a *laburen.ValidationError naming the bad part; nothing was sent
	}
	m, err := c.AgentQuery(ctx, agentID, laburen.AgentQueryRequest{
		Query:             text,
		Channel:           laburen.ChannelWhatsApp,
		ChannelExternalID: extID,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "channelExternalId:", extID)
	fmt.Fprintln(stdout, "conversation:", m.ConversationID)
	fmt.Fprintln(stdout, "message:", m.MessageID, "status:", m.Status)
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
