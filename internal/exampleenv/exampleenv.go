// Package exampleenv connects the programs in examples/ to Laburen: to the real API when
// LABUREN_API_KEY and LABUREN_AGENT_ID are set, otherwise to laburentest, the SDK's fake
// server, started in the program's process, which it says in one line on stderr. So every
// example runs anywhere, and its own code is the laburen calls it shows.
//
// A program of your own needs none of this: laburen.NewClient() reads LABUREN_API_KEY, and the
// agent's ID is yours to pass.
package exampleenv

import (
	"fmt"
	"io"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

// Notice is the line Connect writes to stderr when it starts the fake server.
const Notice = "LABUREN_API_KEY or LABUREN_AGENT_ID is not set: using laburentest, a fake Laburen server in this process"

// Env is the Laburen an example talks to. Close it when done.
type Env struct {
	// Client sends the example's requests, to the real API or to Fake.
	Client *laburen.Client
	// AgentID is the agent to talk to: LABUREN_AGENT_ID, or laburentest.DefaultAgentID.
	AgentID string
	// OrganizationID is LABUREN_ORGANIZATION_ID with the real API ("" when it is not set), and
	// laburentest.DefaultOrganizationID with the fake.
	OrganizationID string
	// Fake is the fake server Connect started, nil with the real API.
	Fake *laburentest.Server
}

// Connect returns the real API's Env when getenv gives LABUREN_API_KEY and LABUREN_AGENT_ID,
// with LABUREN_BASE_URL, when set, as the base URL. Otherwise it starts a laburentest server
// with the options fake, writes Notice to stderr, and returns the server's Env.
func Connect(getenv func(string) string, stderr io.Writer, fake ...laburentest.Option) (*Env, error) {
	key, agentID := getenv("LABUREN_API_KEY"), getenv("LABUREN_AGENT_ID")
	if key == "" || agentID == "" {
		srv := laburentest.NewServer(fake...)
		fmt.Fprintln(stderr, Notice)
		return &Env{
			Client:         srv.Client(),
			AgentID:        laburentest.DefaultAgentID,
			OrganizationID: laburentest.DefaultOrganizationID,
			Fake:           srv,
		}, nil
	}
	opts := []laburen.Option{laburen.WithAPIKey(key)}
	if base := getenv("LABUREN_BASE_URL"); base != "" {
		opts = append(opts, laburen.WithBaseURL(base))
	}
	c, err := laburen.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("check LABUREN_API_KEY and LABUREN_BASE_URL: %w", err)
	}
	return &Env{Client: c, AgentID: agentID, OrganizationID: getenv("LABUREN_ORGANIZATION_ID")}, nil
}

// Close stops the fake server, if Connect started one.
func (e *Env) Close() {
	if e.Fake != nil {
		e.Fake.Close()
	}
}

// Vars is an environment for the tests of the examples, whose Getenv stands for os.Getenv in
// an example's run function. A nil Vars is an empty environment.
type Vars map[string]string

// Getenv returns the value of the variable key, or "" when it is not set.
func (v Vars) Getenv(key string) string { return v[key] }

// VarsFor returns the environment that points an example at srv as at the real API:
// LABUREN_API_KEY is laburentest.DefaultAPIKey, LABUREN_AGENT_ID laburentest.DefaultAgentID
// and LABUREN_BASE_URL the server's URL. A test may change or add variables.
func VarsFor(srv *laburentest.Server) Vars {
	return Vars{
		"LABUREN_API_KEY":  laburentest.DefaultAPIKey,
		"LABUREN_AGENT_ID": laburentest.DefaultAgentID,
		"LABUREN_BASE_URL": srv.URL,
	}
}
