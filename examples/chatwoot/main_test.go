package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/internal/exampleenv"
	"github.com/laburen/laburen-go/internal/exampletest"
	"github.com/laburen/laburen-go/laburentest"
)

func TestMain(m *testing.M) { exampletest.TestMain(m, main) }

func TestRunWithoutEnvironment(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), nil, exampleenv.Vars{}.Getenv, &stdout, &stderr))
	assert.Equal(t, "conversation: crmchatsappai_12_345\n"+
		"customer: Where is my order?\n"+
		"agent: Hello from laburentest! You said: Where is my order?\n"+
		"operator: "+operatorReply+"\n"+
		"status: UNRESOLVED\n", stdout.String())
	assert.True(t, strings.HasPrefix(stderr.String(), "LABUREN_API_KEY or LABUREN_AGENT_ID is not set: using laburentest"), stderr.String())
}

func TestChatwoot(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		convID string
		text   string
		field  string // of the *laburen.ValidationError when the run must fail
	}{
		{name: "defaults", convID: "crmchatsappai_12_345", text: "Where is my order?"},
		{name: "arguments", args: []string{"7", "9001", "Is", "it", "shipped?"}, convID: "crmchatsappai_7_9001", text: "Is it shipped?"},
		{name: "separator in the account", args: []string{"7_1", "9001"}, field: "accountID"},
		{name: "empty customer", args: []string{"7", ""}, field: "customerID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer()
			defer srv.Close()
			env := exampleenv.VarsFor(srv).Getenv
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, env, &stdout, &stderr)
			if tt.field != "" {
				var vErr *laburen.ValidationError
				require.ErrorAs(t, err, &vErr)
				assert.Equal(t, tt.field, vErr.Field)
				assert.Empty(t, srv.Requests(), "nothing was sent")
				return
			}
			require.NoError(t, err)
			assert.Empty(t, stderr.String())

			conv, ok := srv.Conversation(tt.convID)
			require.True(t, ok, stdout.String())
			assert.Len(t, srv.Conversations(), 1)
			assert.Equal(t, laburen.ChannelCRMChatsAppAI, conv.Channel)
			require.Len(t, conv.Messages, 3)
			assert.Equal(t, []laburentest.Role{laburentest.RoleUser, laburentest.RoleAI, laburentest.RoleAgent},
				[]laburentest.Role{conv.Messages[0].Role, conv.Messages[1].Role, conv.Messages[2].Role})
			assert.Equal(t, tt.text, conv.Messages[0].Text)
			assert.Equal(t, operatorReply, conv.Messages[2].Text)
			assert.Equal(t, map[string]any{"source": "chatwoot"}, conv.Messages[2].Metadata)
		})
	}
}

// TestBadConfiguration: main prints a clear error naming what is wrong and exits 1, without a
// panic.
func TestBadConfiguration(t *testing.T) {
	exampletest.CheckBadConfigs(t, "chatwoot",
		exampletest.BadConfig{Name: "bad account", Args: []string{"1_2", "345"}, Err: "laburen: Chatwoot conversation ID: invalid accountID: "},
	)
}
