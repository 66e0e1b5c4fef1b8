package exampleenv

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

func TestConnectToTheFake(t *testing.T) {
	for name, vars := range map[string]Vars{
		"nothing set":  nil,
		"no agent":     {"LABUREN_API_KEY": "key", "LABUREN_ORGANIZATION_ID": "org"},
		"no key":       {"LABUREN_AGENT_ID": "agent"},
		"empty values": {"LABUREN_API_KEY": "", "LABUREN_AGENT_ID": ""},
	} {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			env, err := Connect(vars.Getenv, &stderr, laburentest.WithResponder(laburentest.Answer("fake")))
			require.NoError(t, err)
			defer env.Close()
			assert.Equal(t, Notice+"\n", stderr.String())
			require.NotNil(t, env.Fake)
			assert.Equal(t, laburentest.DefaultAgentID, env.AgentID)
			assert.Equal(t, laburentest.DefaultOrganizationID, env.OrganizationID)
			res, err := env.Client.Query(t.Context(), env.AgentID, laburen.QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			assert.Equal(t, "fake", res.Answer, "the options configure the fake")
			assert.Len(t, env.Fake.Requests(), 1)
		})
	}
}

func TestConnectToTheAPI(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	vars := VarsFor(srv)
	vars["LABUREN_ORGANIZATION_ID"] = "org"
	var stderr bytes.Buffer
	env, err := Connect(vars.Getenv, &stderr)
	require.NoError(t, err)
	defer env.Close()
	assert.Empty(t, stderr.String())
	assert.Nil(t, env.Fake)
	assert.Equal(t, laburentest.DefaultAgentID, env.AgentID)
	assert.Equal(t, "org", env.OrganizationID)
	_, err = env.Client.Query(t.Context(), env.AgentID, laburen.QueryRequest{Query: "Hi"})
	require.NoError(t, err)
	assert.Len(t, srv.Requests(), 1, "LABUREN_BASE_URL is the base URL")

	vars["LABUREN_API_KEY"] = "wrong"
	env, err = Connect(vars.Getenv, &stderr)
	require.NoError(t, err)
	_, err = env.Client.Query(t.Context(), env.AgentID, laburen.QueryRequest{Query: "Hi"})
	assert.ErrorIs(t, err, laburen.ErrUnauthorized, "LABUREN_API_KEY is the key")

	vars["LABUREN_BASE_URL"] = "not a URL"
	_, err = Connect(vars.Getenv, &stderr)
	assert.Error(t, err)
}
