package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/laburen/laburen-go"
)

// query asks an agent and prints its answer.
func (cl *cli) query(ctx context.Context, args []string) error {
	fs := newFlags("query", "[-agent ID] [-conversation ID] [-visitor ID] [-json] [-no-stream] MESSAGE",
		"Sends MESSAGE to the agent and streams the answer to stdout as it arrives. The conversation's\n"+
			"ID goes to stderr (\"conversation: ID\"): pass it to -conversation to continue.")
	t := apiFlags(fs)
	conv := fs.String("conversation", "", "continue the conversation `ID`")
	visitor := fs.String("visitor", "", "the end user's visitor `ID`")
	asJSON := fs.Bool("json", false, "print the whole response object as JSON instead of the answer")
	noStream := fs.Bool("no-stream", false, "print the answer once it is complete instead of streaming it")
	if err := fs.parse(args, 1, 1); err != nil {
		return err
	}
	c, agent, done, err := cl.connect(fs, t)
	if err != nil {
		return err
	}
	defer done()
	req := laburen.QueryRequest{Query: fs.Arg(0), ConversationID: *conv, VisitorID: *visitor}
	var convID string
	if *asJSON || *noStream {
		res, err := c.Query(ctx, agent, req)
		if err != nil {
			return err
		}
		if *asJSON {
			fmt.Fprintf(cl.stdout, "%s\n", res.Raw)
		} else {
			fmt.Fprintln(cl.stdout, res.Answer)
		}
		convID = res.ConversationID
	} else if convID, err = streamAnswer(ctx, c, agent, req, cl.stdout); err != nil {
		return err
	}
	if convID != "" {
		fmt.Fprintln(cl.stderr, "conversation:", convID)
	}
	return nil
}

// streamAnswer asks the agent and writes the answer to w as it streams in, ending it with a
// line break (also when the stream fails halfway). It returns the conversation's ID, empty when
// the server did not send it.
func streamAnswer(ctx context.Context, c *laburen.Client, agent string, req laburen.QueryRequest, w io.Writer) (string, error) {
	st, err := c.QueryStream(ctx, agent, req)
	if err != nil {
		return "", err
	}
	defer st.Close()
	lineOpen := false
	defer func() {
		if lineOpen {
			fmt.Fprintln(w)
		}
	}()
	wrote := false
	for text, err := range st.Text() {
		if err != nil {
			return "", err
		}
		if text != "" {
			io.WriteString(w, text)
			wrote, lineOpen = true, !strings.HasSuffix(text, "\n")
		}
	}
	lineOpen = lineOpen || !wrote // an empty answer is an empty line
	if res := st.Response(); res != nil {
		return res.ConversationID, nil
	}
	return "", nil
}

// agentQuery records an agent-side message, routed by the SDK's helpers.
func (cl *cli) agentQuery(ctx context.Context, args []string) error {
	fs := newFlags("agent-query", "[-agent ID] [-conversation ID] [-whatsapp-org ID -phone PHONE] [-chatwoot-account ID -chatwoot-customer ID] [-json] MESSAGE",
		"Records MESSAGE as written by the agent side (an operator, a CRM) in a conversation, without\n"+
			"calling the AI. Prints the message's ID on stdout and the conversation's on stderr.\n"+
			"-whatsapp-org and -phone route it to a WhatsApp thread (channelExternalId built by\n"+
			"laburen.WhatsAppChannelExternalID); -chatwoot-account and -chatwoot-customer to a Chatwoot\n"+
			"conversation (laburen.ChatwootConversationID). Malformed routing parts are refused.")
	t := apiFlags(fs)
	conv := fs.String("conversation", "", "the conversation `ID`")
	visitor := fs.String("visitor", "", "the end user's visitor `ID`")
	org := fs.String("whatsapp-org", "", "WhatsApp routing: the organization `ID`")
	phone := fs.String("phone", "", "WhatsApp routing: the user's `PHONE` number, such as \"+54 9 11 5555-0000\"")
	account := fs.String("chatwoot-account", "", "Chatwoot routing: the account `ID`")
	customer := fs.String("chatwoot-customer", "", "Chatwoot routing: the customer `ID`")
	asJSON := fs.Bool("json", false, "print the whole response object as JSON")
	if err := fs.parse(args, 1, 1); err != nil {
		return err
	}
	whatsapp, chatwoot := *org != "" || *phone != "", *account != "" || *customer != ""
	switch {
	case whatsapp && (*org == "" || *phone == ""):
		return fs.fail("WhatsApp routing needs both -whatsapp-org and -phone")
	case chatwoot && (*account == "" || *customer == ""):
		return fs.fail("Chatwoot routing needs both -chatwoot-account and -chatwoot-customer")
	case whatsapp && chatwoot:
		return fs.fail("route to WhatsApp or to Chatwoot, not both")
	case chatwoot && *conv != "":
		return fs.fail("-conversation and Chatwoot routing both name the conversation: give one")
	}
	c, agent, done, err := cl.connect(fs, t)
	if err != nil {
		return err
	}
	defer done()
	req := laburen.AgentQueryRequest{Query: fs.Arg(0), ConversationID: *conv, VisitorID: *visitor}
	switch {
	case whatsapp:
		req.Channel = laburen.ChannelWhatsApp
		if req.ChannelExternalID, err = laburen.WhatsAppChannelExternalID(*org, agent, *phone); err != nil {
			return err
		}
	case chatwoot:
		req.Channel = laburen.ChannelCRMChatsAppAI
		if req.ConversationID, err = laburen.ChatwootConversationID(*account, *customer); err != nil {
			return err
		}
	}
	res, err := c.AgentQuery(ctx, agent, req)
	if err != nil {
		return err
	}
	if *asJSON {
		fmt.Fprintf(cl.stdout, "%s\n", res.Raw)
	} else {
		fmt.Fprintln(cl.stdout, res.MessageID)
	}
	if res.ConversationID != "" {
		fmt.Fprintln(cl.stderr, "conversation:", res.ConversationID)
	}
	return nil
}

// chat is a terminal chat that keeps the conversation.
func (cl *cli) chat(ctx context.Context, args []string) error {
	fs := newFlags("chat", "[-agent ID]",
		"A terminal chat: type a message and press Enter; the answer streams in. \"/new\" starts a new\n"+
			"conversation; \"/quit\", the end of the input (Ctrl-D) or Ctrl-C leaves. The prompt goes to\n"+
			"stderr and the answers to stdout.")
	t := apiFlags(fs)
	if err := fs.parse(args, 0, 0); err != nil {
		return err
	}
	c, agent, done, err := cl.connect(fs, t)
	if err != nil {
		return err
	}
	defer done()

	// Lines are read in their own goroutine so that Ctrl-C also ends a wait for input.
	lines := make(chan string)
	go func() {
		defer close(lines)
		in := bufio.NewScanner(cl.stdin)
		for in.Scan() {
			select {
			case lines <- in.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	conversationID := ""
	for {
		fmt.Fprint(cl.stderr, "> ")
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-ctx.Done():
		}
		if !ok {
			fmt.Fprintln(cl.stderr)
			return nil
		}
		switch line = strings.TrimSpace(line); line {
		case "":
		case "/quit":
			return nil
		case "/new":
			conversationID = ""
			fmt.Fprintln(cl.stderr, "(new conversation)")
		default:
			id, err := streamAnswer(ctx, c, agent, laburen.QueryRequest{Query: line, ConversationID: conversationID}, cl.stdout)
			switch {
			case ctx.Err() != nil:
				fmt.Fprintln(cl.stderr)
				return nil
			case err != nil:
				fmt.Fprintln(cl.stderr, "error:", err)
			case id != "":
				conversationID = id
			}
		}
	}
}
