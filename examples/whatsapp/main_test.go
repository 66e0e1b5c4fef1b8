package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/internal/exampleenv"
	"github.com/laburen/laburen-go/internal/exampletest"
	"github.com/laburen/laburen-go/laburentest"
)

const extID = laburentest.DefaultOrganizationID + "_" + laburentest.DefaultAgentID + "_5491155550000"

func TestMain(m *testing.M) { exampletest.TestMain(m, main) }

func TestRunWithoutEnvironment(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), nil, exampleenv.Vars{}.Getenv, &stdout, &stderr))
	assert.True(t, strings.HasPrefix(stdout.String(), "channelExternalId: "+extID+"\nconversation: c"), stdout.String())
	assert.Contains(t, stdout.String(), "status: UNRESOLVED\n")
	assert.True(t, strings.HasPrefix(stderr.String(), "LABUREN_API_KEY or LABUREN_AGENT_ID is not set: using laburentest"), stderr.String())
}

func TestWhatsApp(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	env := exampleenv.VarsFor(srv)
	env["LABUREN_ORGANIZATION_ID"] = laburentest.DefaultOrganizationID
	runs := []struct {
		args []string
		text string
	}{
		{nil, "Your order shipped today."},
		{[]string{"5491155550000", "It", "arrives", "tomorrow."}, "It arrives tomorrow."},
		{[]string{"+54 (9) 11 5555.0000", "Thanks!"}, "Thanks!"},
	}
	for _, r := range runs {
		var stdout bytes.Buffer
		require.NoError(t, run(context.Background(), r.args, env.Getenv, &stdout, &bytes.Buffer{}))
		assert.True(t, strings.HasPrefix(stdout.String(), "channelExternalId: "+extID+"\n"), stdout.String())
	}
	convs := srv.Conversations()
	require.Len(t, convs, 1, "one customer, one conversation")
	assert.Equal(t, extID, convs[0].ChannelExternalID)
	assert.Equal(t, laburen.ChannelWhatsApp, convs[0].Channel)
	for i, m := range convs[0].Messages {
		assert.Equal(t, laburentest.RoleAgent, m.Role)
		assert.Equal(t, runs[i].text, m.Text)
	}
}

func TestWhatsAppRefuses(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		org   string
		field string // of the *laburen.ValidationError, or "" for another error
		msg   string
	}{
		{"letters in the phone", []string{"+54 11 CALL-NOW"}, laburentest.DefaultOrganizationID, "phone", ""},
		{"trunk prefix", []string{"011 5555-0000"}, laburentest.DefaultOrganizationID, "phone", ""},
		{"separator in the organization", nil, "org_1", "organizationID", ""},
		{"no organization", nil, "", "", "LABUREN_ORGANIZATION_ID is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer()
			defer srv.Close()
			env := exampleenv.VarsFor(srv)
			env["LABUREN_ORGANIZATION_ID"] = tt.org
			err := run(context.Background(), tt.args, env.Getenv, &bytes.Buffer{}, &bytes.Buffer{})
			require.Error(t, err)
			if tt.field != "" {
				var vErr *laburen.ValidationError
				require.ErrorAs(t, err, &vErr, fmt.Sprint(err))
				assert.Equal(t, tt.field, vErr.Field)
			} else {
				assert.ErrorContains(t, err, tt.msg)
			}
			assert.Empty(t, srv.Requests(), "nothing was sent")
		})
	}
}

// TestBadConfiguration: main prints a clear error naming what is wrong and exits 1, without a
// panic.
func TestBadConfiguration(t *testing.T) {
	exampletest.CheckBadConfigs(t, "whatsapp",
		exampletest.BadConfig{Name: "no organization with the real API", Vars: exampleenv.Vars{"LABUREN_API_KEY": "k", "LABUREN_AGENT_ID": "a"},
			Err: "LABUREN_ORGANIZATION_ID is not set: the channelExternalId needs your organization's ID\n"},
	)
}
