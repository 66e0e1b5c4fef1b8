package laburentest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

// The SDK's stream reader against the fake, in both payload renderings and under each stream
// fault.
func TestClientStream(t *testing.T) {
	const answer = "¡Hola! Your order #1001 ships today.\nTrack it at https://example.com/t?id=1&x=%20."
	tests := []struct {
		name    string
		opts    []laburentest.Option
		fault   func(*laburentest.Server)
		client  []laburen.Option
		wantErr error
		answer  string // the joined text read before the stream ended
	}{
		{name: "upstream", answer: answer},
		{name: "plain", opts: []laburentest.Option{laburentest.WithPlainStreamData()}, answer: answer},
		{name: "usage limit in band", fault: func(s *laburentest.Server) { s.StreamErrorNext(1, 2, "USAGE_LIMIT") },
			wantErr: laburen.ErrUsageLimit, answer: "¡Hola! Your"},
		{name: "usage limit before the stream", fault: func(s *laburentest.Server) { s.UsageLimitNext(1) },
			wantErr: laburen.ErrUsageLimit},
		{name: "cut", fault: func(s *laburentest.Server) { s.CutStreamNext(1, 3) },
			wantErr: laburen.ErrStreamTruncated, answer: "¡Hola! Your order"},
		{name: "stall and idle timeout", fault: func(s *laburentest.Server) { s.StallStreamNext(1, 1) },
			client: []laburen.Option{laburen.WithStreamIdleTimeout(50 * time.Millisecond)}, wantErr: context.DeadlineExceeded, answer: "¡Hola!"},
		{name: "rate limited, retried", fault: func(s *laburentest.Server) { s.RateLimitNext(1, 0) }, answer: answer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer(append(tt.opts, laburentest.WithResponder(laburentest.Answer(answer)))...)
			defer srv.Close()
			if tt.fault != nil {
				tt.fault(srv)
			}
			st, err := srv.Client(tt.client...).QueryStream(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi"})
			if err != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Empty(t, tt.answer)
				return
			}
			defer st.Close()
			var pieces []string
			for st.Next() {
				if ev := st.Current(); ev.Type == laburen.EventAnswer {
					pieces = append(pieces, ev.Text)
				}
			}
			assert.Equal(t, tt.answer, st.Answer())
			if tt.wantErr != nil {
				assert.ErrorIs(t, st.Err(), tt.wantErr)
				return
			}
			require.NoError(t, st.Err())
			assert.Equal(t, laburentest.Chunks(answer), pieces)
			require.NotNil(t, st.Response())
			assert.Equal(t, answer, st.Response().Answer)
			conv, ok := srv.Conversation(st.Response().ConversationID)
			require.True(t, ok)
			assert.Equal(t, answer, conv.Messages[1].Text)
		})
	}
}

func TestClientStreamStallBeforeFirstEvent(t *testing.T) {
	// The headers arrive at once; then only the client's own timeout ends the stall.
	srv := laburentest.NewServer()
	defer srv.Close()
	srv.StallStreamNext(1, 0)
	st, err := srv.Client(laburen.WithStreamIdleTimeout(30*time.Millisecond)).QueryStream(context.Background(),
		laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi"})
	require.NoError(t, err)
	defer st.Close()
	assert.False(t, st.Next())
	assert.ErrorContains(t, st.Err(), "WithStreamIdleTimeout")
}

func TestClientAgentQueryStream(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	st, err := srv.Client().AgentQueryStream(context.Background(), laburentest.DefaultAgentID,
		laburen.AgentQueryRequest{Query: "Your order shipped"})
	require.NoError(t, err)
	res, err := st.Final()
	require.NoError(t, err)
	assert.Equal(t, "Your order shipped", res.Answer)
	conv, ok := srv.Conversation(res.ConversationID)
	require.True(t, ok)
	require.Len(t, conv.Messages, 1)
	assert.Equal(t, laburentest.RoleAgent, conv.Messages[0].Role)
	assert.Equal(t, res.MessageID, conv.Messages[0].ID)
}
