package laburen_test

// The code of the README's Streaming section, kept here so that the compiler checks it and go
// test runs it against laburentest. TestReadmeStreamingSnippets (stream_test.go) checks that
// each region between "// README <name>" and "// README end" is, line for line, the README's
// code.

import (
	"context"
	"fmt"
	"log"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

// streamNext is the README's loop over the events of a stream.
func streamNext(ctx context.Context, c *laburen.Client, agentID string) error {
	// README streaming
	st, err := c.QueryStream(ctx, agentID, laburen.QueryRequest{Query: "Where is my order?"})
	if err != nil {
		return err // an HTTP error (401, 402, 404, 429...) as *laburen.APIError
	}
	defer st.Close()
	for st.Next() {
		ev := st.Current()
		switch ev.Type {
		case laburen.EventAnswer:
			fmt.Print(ev.Text) // a piece of the answer, as soon as it is generated
		case laburen.EventToolCall:
			log.Printf("tool call: %s", ev.Data)
		}
	}
	if err := st.Err(); err != nil { // nil only after the server's final [DONE]
		return err // [ERROR] event, cut off, context ended, idle timeout, Close
	}
	fmt.Println()
	fmt.Println("answer:", st.Answer())
	if res := st.Response(); res != nil { // the endpoint_response event, when it came
		fmt.Println("status:", res.Status) // and res.ConversationID, res.Sources...
	}
	// README end
	return nil
}

// streamText is the README's range-over-func form.
func streamText(st *laburen.Stream) error {
	// README streaming text
	for text, err := range st.Text() { // closes the stream when the loop ends
		if err != nil {
			return err
		}
		fmt.Print(text)
	}
	// README end
	fmt.Println()
	return nil
}

// streamFinal is the README's wait for the whole response.
func streamFinal(st *laburen.Stream) error {
	// README streaming final
	res, err := st.Final() // reads to the end; Answer holds the joined text
	if err != nil {
		return err
	}
	fmt.Println(res.Answer, res.Status)
	// README end
	return nil
}

// Example_streaming runs the README's streaming code against the fake server.
func Example_streaming() {
	srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer("Your order ships today.")))
	defer srv.Close()
	c := srv.Client()
	ctx := context.Background()

	if err := streamNext(ctx, c, laburentest.DefaultAgentID); err != nil {
		log.Fatal(err)
	}
	for _, read := range []func(*laburen.Stream) error{streamText, streamFinal} {
		st, err := c.QueryStream(ctx, laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Hi"})
		if err != nil {
			log.Fatal(err)
		}
		if err := read(st); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// Your order ships today.
	// answer: Your order ships today.
	// status: UNRESOLVED
	// Your order ships today.
	// Your order ships today. UNRESOLVED
}
