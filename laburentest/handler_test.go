package laburentest_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

// TestHandlerServesElsewhere serves the fake on a second listener through Handler: a query
// sent there is answered and recorded by the same server.
func TestHandlerServesElsewhere(t *testing.T) {
	srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer("from the other listener")))
	defer srv.Close()
	other := httptest.NewServer(srv.Handler())
	defer other.Close()

	c, err := laburen.NewClient(laburen.WithBaseURL(other.URL+"/api"), laburen.WithAPIKey(laburentest.DefaultAPIKey))
	require.NoError(t, err)
	res, err := c.Query(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Hi"})
	require.NoError(t, err)
	assert.Equal(t, "from the other listener", res.Answer)

	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "/api/agents/"+laburentest.DefaultAgentID+"/query", reqs[0].Path)
	assert.Equal(t, 200, reqs[0].StatusCode)
	_, ok := srv.Conversation(res.ConversationID)
	assert.True(t, ok, "the conversation is in the server's state")
}
