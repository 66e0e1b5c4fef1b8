// Package laburentest is a fake Laburen server for tests, in the manner of net/http/httptest:
// it speaks the real wire format on a local port, so that code using the laburen package (or
// any other client of the API) is tested offline, without an account or a model.
//
//	srv := laburentest.New(t) // NewServer, closed when the test ends
//	c := srv.Client()         // a *laburen.Client pointed at srv, with its API key
//	res, err := c.Query(ctx, laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Hi"})
//
// It serves POST {URL}/agents/{id}/query and /query-agent as JSON or upstream SSE streams,
// keeps conversations, contacts and requests for the test to inspect, delivers the answers of
// Conversational agents by webhook, and plays faults on demand (the ...Next methods). Answers
// come from a Responder. The README's "Testing your code" describes it all. A Server is safe
// for concurrent use.
package laburentest
