// Package laburentest is a fake Laburen server for tests, in the manner of net/http/httptest:
// it runs on a local httptest.Server and speaks the real wire format, so that code using the
// laburen package (or any other client of the Laburen agent API) can be tested offline,
// without an account and without a model.
//
//	srv := laburentest.New(t) // NewServer, closed when the test ends
//	c := srv.Client()         // a *laburen.Client pointed at srv, with its API key
//	res, err := c.Query(ctx, laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Hi"})
//
// The server implements POST {URL}/agents/{id}/query and POST {URL}/agents/{id}/query-agent:
//
//   - JSON answers shaped exactly like the API's, and streamed answers in the upstream SSE
//     format: each payload percent-encoded as JavaScript's encodeURIComponent does, the answer
//     cut into word-sized "answer" events, then an "endpoint_response" event carrying the whole
//     response object, then an empty event line and "data: [DONE]". WithPlainStreamData
//     switches to the plain-text rendering of the API's documentation. A Reply's Events (a
//     "tool_call", or any named event) come before the answer.
//   - Errors before a stream starts as JSON {"error": CODE}, or, with WithSSEErrorBodies, as
//     the "data: [ERROR]CODE" body without an SSE content type that the upstream may send.
//   - Conversational mode, for agents added with the Conversational option: a query must
//     carry a webhookUrl, is answered at once with the "queued" reply, and the answer is
//     POSTed later to the webhook with the header "x-laburen-event: agent.response".
//     WaitWebhooks waits for those deliveries. WithWebhookRedelivery delivers again, after
//     the delays it is given, when the receiver fails or does not answer in time; Webhooks
//     and WaitWebhooks report every attempt.
//   - Conversations and their history (user, agent-side and AI messages, in order), and CRM
//     contacts matched by email, then phone number, then user ID. Conversation, Conversations,
//     Contacts and Requests return copies that a test can inspect at any time.
//   - Agents and API keys: a new server knows DefaultAgentID and accepts DefaultAPIKey.
//     AddAgent adds agents. An unknown agent is a 404 {"error":"NOT_FOUND"}; a missing key a
//     401 and a wrong key a 403 {"error":"UNAUTHORIZED"}, except on a Public agent.
//   - Answers come from a Responder (WithResponder, or SetResponder for one that uses the
//     server itself); the default, DefaultResponder, is deterministic.
//   - Faults on demand, for the next n requests: FailNext, RateLimitNext, UsageLimitNext,
//     StreamErrorNext, CutStreamNext, StallStreamNext, DuplicateWebhooksNext; and a delay
//     before every stream event (WithEventDelay, SetEventDelay).
//
// A Server is safe for concurrent use.
package laburentest
