package laburen_test

// Runnable examples of the client's calls. They run against laburentest, the fake Laburen
// server, so their output is checked by go test; with a real account, make the client with
// laburen.NewClient() and use your agent's ID instead.

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

// Query returns the whole answer; pass its ConversationID back to continue the conversation.
func ExampleClient_Query() {
	srv := laburentest.NewServer()
	defer srv.Close()
	c := srv.Client() // with a real account: laburen.NewClient()
	ctx := context.Background()

	res, err := c.Query(ctx, laburentest.DefaultAgentID, laburen.QueryRequest{
		Query:       "Where is my order?",
		Temperature: laburen.Ptr(0.2),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Answer)
	fmt.Println(res.Status, res.Usage.TotalTokens)

	next, err := c.Query(ctx, laburentest.DefaultAgentID, laburen.QueryRequest{
		Query:          "Thanks!",
		ConversationID: res.ConversationID,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(next.ConversationID == res.ConversationID)
	// Output:
	// Hello from laburentest! You said: Where is my order?
	// UNRESOLVED 13
	// true
}

// QueryStream returns once the headers arrived; Next and Current then read the answer as it
// is generated, and Err tells whether it ended with the server's [DONE].
func ExampleClient_QueryStream() {
	srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer("Your order ships today.")))
	defer srv.Close()
	c := srv.Client()

	st, err := c.QueryStream(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Where is my order?"})
	if err != nil {
		log.Fatal(err) // an HTTP error: 401, 402, 404, 429...
	}
	defer st.Close()
	for st.Next() {
		ev := st.Current()
		switch ev.Type {
		case laburen.EventAnswer:
			fmt.Printf("%q\n", ev.Text)
		case laburen.EventEndpointResponse:
			fmt.Println("response:", ev.Response.Answer)
		}
	}
	if err := st.Err(); err != nil {
		log.Fatal(err) // cut off, [ERROR] event, idle timeout, context ended
	}
	// Output:
	// "Your"
	// " order"
	// " ships"
	// " today."
	// response: Your order ships today.
}

// Text is the range-over-func form of a stream: it yields the answer's pieces and closes the
// stream itself.
func ExampleStream_Text() {
	srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer("Hola! How can I help?")))
	defer srv.Close()

	st, err := srv.Client().QueryStream(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Hi"})
	if err != nil {
		log.Fatal(err)
	}
	for text, err := range st.Text() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(text)
	}
	fmt.Println()
	// Output:
	// Hola! How can I help?
}

// A stream that fails says why: here a usage limit that arrives inside the stream, after part
// of the answer.
func ExampleStream_Final() {
	srv := laburentest.NewServer()
	defer srv.Close()
	srv.StreamErrorNext(1, 2, "USAGE_LIMIT")

	st, err := srv.Client().QueryStream(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Hi"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = st.Final()
	fmt.Println(errors.Is(err, laburen.ErrUsageLimit))
	fmt.Printf("arrived before the error: %q\n", st.Answer())
	// Output:
	// true
	// arrived before the error: "Hello from"
}

// AgentQuery records a message written by the agent side. On WhatsApp the channelExternalId
// routes it to the customer's conversation: the same ID finds the same conversation.
func ExampleClient_AgentQuery() {
	srv := laburentest.NewServer()
	defer srv.Close()
	c := srv.Client()
	ctx := context.Background()
	orgID, agentID := laburentest.DefaultOrganizationID, laburentest.DefaultAgentID

	extID, err := laburen.WhatsAppChannelExternalID(orgID, agentID, "+54 9 11 5555-0000")
	if err != nil {
		log.Fatal(err)
	}
	first, err := c.AgentQuery(ctx, agentID, laburen.AgentQueryRequest{
		Query: "Your order shipped", Channel: laburen.ChannelWhatsApp, ChannelExternalID: extID})
	if err != nil {
		log.Fatal(err)
	}
	second, err := c.AgentQuery(ctx, agentID, laburen.AgentQueryRequest{
		Query: "It arrives tomorrow", Channel: laburen.ChannelWhatsApp, ChannelExternalID: extID})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(first.Status, first.ConversationID == second.ConversationID)

	conv, _ := srv.Conversation(first.ConversationID)
	fmt.Println(conv.ChannelExternalID == orgID+"_"+agentID+"_5491155550000")
	for _, m := range conv.Messages {
		fmt.Printf("%s: %s\n", m.Role, m.Text)
	}
	// Output:
	// UNRESOLVED true
	// true
	// agent: Your order shipped
	// agent: It arrives tomorrow
}

// A Chatwoot (CRM) conversation is named by its crmchatsappai_ ID, so that the agent's
// messages land in the conversation the CRM already has.
func ExampleChatwootConversationID_agentQuery() {
	srv := laburentest.NewServer()
	defer srv.Close()

	convID, err := laburen.ChatwootConversationID("12", "345")
	if err != nil {
		log.Fatal(err)
	}
	m, err := srv.Client().AgentQuery(context.Background(), laburentest.DefaultAgentID, laburen.AgentQueryRequest{
		Query: "An operator will call you", ConversationID: convID, Channel: laburen.ChannelChatwoot})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.ConversationID)

	// A malformed ID is refused before anything is sent.
	_, err = srv.Client().AgentQuery(context.Background(), laburentest.DefaultAgentID, laburen.AgentQueryRequest{
		Query: "Hi", ConversationID: "crmchatsappai_12"})
	var vErr *laburen.ValidationError
	fmt.Println(errors.As(err, &vErr), vErr.Field, len(srv.Requests()))
	// Output:
	// crmchatsappai_12_345
	// true conversationId 1
}
