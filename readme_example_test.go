package laburen_test

// The code of the README's Quick start, Configuration, Errors and Routing IDs sections, kept
// here so that the compiler checks it. TestReadmeCoreSnippets (readme_test.go) checks that each
// region between "// README <section>" and "// README end" is, line for line, the README's code.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/laburen/laburen-go"
)

// Example_quickStart is the body of the README's quick start program. It calls the real API, so
// it is compiled and not run.
func Example_quickStart() {
	// README quick start
	c, err := laburen.NewClient() // the key comes from LABUREN_API_KEY
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Query(context.Background(), os.Getenv("LABUREN_AGENT_ID"), laburen.QueryRequest{
		Query:       "Where is my order?",
		Temperature: laburen.Ptr(0.2), // pointers only where 0 is a meaningful value
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Answer)
	fmt.Println("conversation:", res.ConversationID, "tokens:", res.Usage.TotalTokens)
	// README end
}

// readmeContext stands for what the README's fragments take as given.
func readmeContext() (*laburen.Client, context.Context, string, laburen.QueryRequest) {
	c, err := laburen.NewClient()
	if err != nil {
		log.Fatal(err)
	}
	return c, context.Background(), os.Getenv("LABUREN_AGENT_ID"), laburen.QueryRequest{Query: "Hi"}
}

// Example_perCallOptions is the README's per-call option line.
func Example_perCallOptions() {
	c, ctx, agentID, req := readmeContext()
	// README configuration
	res, err := c.Query(ctx, agentID, req, laburen.WithMaxRetries(0))
	// README end
	fmt.Println(res, err)
}

// Example_errors is the README's error handling.
func Example_errors() {
	c, ctx, agentID, req := readmeContext()
	// README errors
	res, err := c.Query(ctx, agentID, req)
	var apiErr *laburen.APIError
	switch {
	case errors.Is(err, laburen.ErrUsageLimit): // HTTP 402, or [ERROR]USAGE_LIMIT inside a stream
	case errors.Is(err, laburen.ErrUnauthorized): // 401 or 403
	case errors.As(err, &apiErr):
		log.Printf("status %d, code %q: %s", apiErr.StatusCode, apiErr.Code, apiErr.Message)
	}
	var vErr *laburen.ValidationError // bad input, found before anything was sent
	if errors.As(err, &vErr) {
		log.Printf("fix the field %s: %s", vErr.Field, vErr.Reason)
	}
	// README end
	fmt.Println(res)
}

// Example_routingIDs is the README's routing IDs.
func Example_routingIDs() {
	c, ctx, agentID, _ := readmeContext()
	orgID := os.Getenv("LABUREN_ORGANIZATION_ID")
	// README routing IDs
	// WhatsApp: channelExternalId = {organizationId}_{agentId}_{wa_id}
	extID, err := laburen.WhatsAppChannelExternalID(orgID, agentID, "+54 9 11 5555-0000")
	// extID == orgID + "_" + agentID + "_5491155550000"
	org, agent, phone, err := laburen.ParseWhatsAppChannelExternalID(extID)

	m, err := c.AgentQuery(ctx, agentID, laburen.AgentQueryRequest{
		Query: "Your order shipped", Channel: laburen.ChannelWhatsApp, ChannelExternalID: extID})

	// Chatwoot / CRM: conversationId = crmchatsappai_{accountId}_{customerId}
	convID, err := laburen.ChatwootConversationID("12", "345") // "crmchatsappai_12_345"
	account, customer, err := laburen.ParseChatwootConversationID(convID)
	// README end
	fmt.Println(org, agent, phone, m, account, customer, err)
}

// ExampleWhatsAppChannelExternalID builds and parses the routing ID of a WhatsApp conversation.
func ExampleWhatsAppChannelExternalID() {
	extID, err := laburen.WhatsAppChannelExternalID("clorg1", "clagent1", "+54 9 11 5555-0000")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(extID)
	org, agent, phone, err := laburen.ParseWhatsAppChannelExternalID(extID)
	fmt.Println(org, agent, phone, err)

	_, err = laburen.WhatsAppChannelExternalID("clorg1", "clagent1", "011 5555-0000")
	var vErr *laburen.ValidationError
	fmt.Println(errors.As(err, &vErr), vErr.Field)
	// Output:
	// clorg1_clagent1_5491155550000
	// clorg1 clagent1 5491155550000 <nil>
	// true phone
}

// ExampleChatwootConversationID builds and parses the conversation ID of a Chatwoot conversation.
func ExampleChatwootConversationID() {
	convID, err := laburen.ChatwootConversationID("12", "345")
	fmt.Println(convID, err)
	account, customer, err := laburen.ParseChatwootConversationID(convID)
	fmt.Println(account, customer, err)
	_, _, err = laburen.ParseChatwootConversationID("crmchatsappai_12")
	fmt.Println(err)
	// Output:
	// crmchatsappai_12_345 <nil>
	// 12 345 <nil>
	// laburen: parse Chatwoot conversation ID: invalid conversationId: "crmchatsappai_12" is not crmchatsappai_{accountId}_{customerId}
}
