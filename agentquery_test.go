package laburen

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const okAgentAnswer = `{"messageId":"clmsg","conversationId":"clconv","visitorId":"clvis","status":"UNRESOLVED"}`

func fullAgentQuery() AgentQueryRequest {
	return AgentQueryRequest{
		Query:             "Your order shipped",
		ConversationID:    "clconv123",
		VisitorID:         "visitor-1",
		Channel:           ChannelWhatsApp,
		ChannelExternalID: "clorg1_clagent1_5491155550000",
		IsDraft:           true,
		ContactID:         "clcontact1",
		Contact:           &Contact{Email: "ana@example.com", PhoneNumber: "5491155550000", FirstName: "Ana", LastName: "Pérez", UserID: "u-1"},
		Metadata:          map[string]any{"operator": "luis", "ticket": 42},
	}
}

func TestAgentQueryRequestShape(t *testing.T) {
	tests := []struct {
		name   string
		golden string
		req    AgentQueryRequest
	}{
		{"only the query", "agentquery_minimal", AgentQueryRequest{Query: "Your order shipped"}},
		{"every field", "agentquery_full", fullAgentQuery()},
		{"chatwoot conversation", "agentquery_chatwoot", AgentQueryRequest{
			Query: "Hola", Channel: ChannelChatwoot, ConversationID: "crmchatsappai_12_345",
		}},
		{"extra fields", "agentquery_extra", AgentQueryRequest{Query: "Hi", Extra: map[string]any{"priority": "high"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newMockClient(t, http.StatusOK, okAgentAnswer)
			res, err := c.AgentQuery(context.Background(), "agent-1", tt.req)
			require.NoError(t, err)
			assert.Equal(t, "clmsg", res.MessageID)
			reqs := srv.all()
			require.Len(t, reqs, 1)
			assert.Equal(t, http.MethodPost, reqs[0].Method)
			assert.Equal(t, "/api/agents/agent-1/query-agent", reqs[0].Path)
			assert.Equal(t, "Bearer "+testKey, reqs[0].Header.Get("Authorization"))
			assert.Equal(t, "application/json", reqs[0].Header.Get("Content-Type"))
			assertGolden(t, tt.golden, reqs[0].Body)
		})
	}
}

func TestAgentQueryFullGoldenCoversEveryField(t *testing.T) {
	c, srv := newMockClient(t, http.StatusOK, okAgentAnswer)
	_, err := c.AgentQuery(context.Background(), "agent-1", fullAgentQuery())
	require.NoError(t, err)
	body := string(srv.all()[0].Body)
	for name := range jsonNames(reflect.TypeOf(AgentQueryRequest{})) {
		assert.Contains(t, body, `"`+name+`":`)
	}
}

func TestAgentQueryResponseDecoding(t *testing.T) {
	c, _ := newMockClient(t, http.StatusOK, `{"messageId":"m","conversationId":"c","visitorId":"v","status":"RESOLVED","extra":1}`)
	res, err := c.AgentQuery(context.Background(), "a", AgentQueryRequest{Query: "Hi"})
	require.NoError(t, err)
	assert.Equal(t, "m", res.MessageID)
	assert.Equal(t, "c", res.ConversationID)
	assert.Equal(t, "v", res.VisitorID)
	assert.Equal(t, StatusResolved, res.Status)
	assert.Contains(t, string(res.Raw), `"extra":1`)

	c, _ = newMockClient(t, http.StatusOK, `{}`)
	res, err = c.AgentQuery(context.Background(), "a", AgentQueryRequest{Query: "Hi"})
	require.NoError(t, err)
	assert.Empty(t, res.MessageID)
}

func TestAgentQueryValidation(t *testing.T) {
	ok := func(mod func(*AgentQueryRequest)) AgentQueryRequest {
		r := AgentQueryRequest{Query: "Hi"}
		mod(&r)
		return r
	}
	tests := []struct {
		name    string
		agentID string
		req     AgentQueryRequest
		opts    []Option
		field   string
	}{
		{"empty agent", "", AgentQueryRequest{Query: "Hi"}, nil, "agentID"},
		{"empty query", "a", AgentQueryRequest{}, nil, "query"},
		{"unknown channel", "a", ok(func(r *AgentQueryRequest) { r.Channel = "sms" }), nil, "channel"},
		{"whatsapp without external ID", "a", ok(func(r *AgentQueryRequest) { r.Channel = ChannelWhatsApp }), nil, "channelExternalId"},
		{"whatsapp raw phone as external ID", "a", ok(func(r *AgentQueryRequest) {
			r.Channel, r.ChannelExternalID = ChannelWhatsApp, "5491155550000"
		}), nil, "channelExternalId"},
		{"whatsapp external ID with plus", "a", ok(func(r *AgentQueryRequest) {
			r.Channel, r.ChannelExternalID = ChannelWhatsApp, "org_agent_+5491155550000"
		}), nil, "channelExternalId"},
		{"whatsapp external ID with short phone", "a", ok(func(r *AgentQueryRequest) {
			r.Channel, r.ChannelExternalID = ChannelWhatsApp, "org_agent_1234"
		}), nil, "channelExternalId"},
		{"whatsapp external ID with four parts", "a", ok(func(r *AgentQueryRequest) {
			r.Channel, r.ChannelExternalID = ChannelWhatsApp, "org_x_agent_5491155550000"
		}), nil, "channelExternalId"},
		{"external ID without a channel", "a", ok(func(r *AgentQueryRequest) {
			r.Channel, r.ChannelExternalID = "", "clorg1_clagent1_5491155550000"
		}), nil, "channel"},
		{"chatwoot conversation that does not parse", "a", ok(func(r *AgentQueryRequest) {
			r.ConversationID = "crmchatsappai_12-345"
		}), nil, "conversationId"},
		{"bad contact email", "a", ok(func(r *AgentQueryRequest) { r.Contact = &Contact{Email: "nope"} }), nil, "contact.email"},
		{"draft without a key", "a", ok(func(r *AgentQueryRequest) { r.IsDraft = true }), []Option{WithAPIKey("")}, "isDraft"},
		{"extra names a modeled field", "a", ok(func(r *AgentQueryRequest) { r.Extra = map[string]any{"channelExternalId": "x"} }), nil, "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newMockClient(t, http.StatusOK, okAgentAnswer, tt.opts...)
			res, err := c.AgentQuery(context.Background(), tt.agentID, tt.req)
			assert.Nil(t, res)
			var vErr *ValidationError
			require.ErrorAs(t, err, &vErr)
			assert.Equal(t, tt.field, vErr.Field)
			assert.True(t, strings.HasPrefix(err.Error(), "laburen: agent query to agent "), err.Error())
			assert.Empty(t, srv.all(), "nothing may be sent")
		})
	}
}

func TestWhatsAppChannelExternalID(t *testing.T) {
	tests := []struct {
		org, agent, phone string
		want              string
		field             string // of the *ValidationError when refused
	}{
		{"clorg1", "clagent1", "+54 9 11 5555-0000", "clorg1_clagent1_5491155550000", ""},
		{"clorg1", "clagent1", "5491155550000", "clorg1_clagent1_5491155550000", ""},
		{"clorg1", "clagent1", " +1 (415) 555.0100 ", "clorg1_clagent1_14155550100", ""},
		{"clorg1", "clagent1", "5491155550000\n", "clorg1_clagent1_5491155550000", ""},
		{"o", "a", "12345678", "o_a_12345678", ""},
		{"o", "a", "123456789012345", "o_a_123456789012345", ""},
		{"", "a", "5491155550000", "", "organizationID"},
		{"o", "", "5491155550000", "", "agentID"},
		{"o", "a", "", "", "phone"},
		{"org_1", "a", "5491155550000", "", "organizationID"},
		{"o", "agent_1", "5491155550000", "", "agentID"},
		{"o o", "a", "5491155550000", "", "organizationID"},
		{"o", "a\tb", "5491155550000", "", "agentID"},
		{"o", "a\xff", "5491155550000", "", "agentID"},
		{"o", "a", "1234567", "", "phone"},
		{"o", "a", "1234567890123456", "", "phone"},
		{"o", "a", "+54 9 11 5555-000O", "", "phone"},
		{"o", "a", "5491155550000;", "", "phone"},
		{"o", "a", "5491155550000 ext 12", "", "phone"},
		{"o", "a", "++5491155550000", "", "phone"},
		{"o", "a", "54+91155550000", "", "phone"},
		{"o", "a", "011 5555 0000", "", "phone"},
		{"o", "a", "+", "", "phone"},
		{"o", "a", "٥٤٩١١٥٥٥٥٠٠٠٠", "", "phone"},
		// Nothing is guessed: the same digits are Los Angeles without "+" and Antwerp with it.
		{"o", "a", "(323) 555-0100", "", "phone"},
		{"o", "a", "+32 3 555 01 00", "o_a_3235550100", ""},
		{"o", "a", "54 9 11 5555-0000", "", "phone"},
		{"o", "a", "+44 (0)20 7946 0958", "", "phone"},
		{"o", "a", "+44 ( 0 ) 20 7946 0958", "", "phone"},
		{"o", "a", "+44 20 7946 0958", "o_a_442079460958", ""},
		{"o", "a", "+54 9 11 5555\u200b0000", "", "phone"},
		{"o", "a", "+５４９１１５５５５００００", "", "phone"},
		// Look-alike IDs: invisible and format characters, non-ASCII, too long.
		{"clorg1\u200b", "a", "5491155550000", "", "organizationID"},
		{"o", "clagent1\u200d", "5491155550000", "", "agentID"},
		{"o", "\u202eclagent1", "5491155550000", "", "agentID"},
		{"\ufeffo", "a", "5491155550000", "", "organizationID"},
		{"o", "cl\u00adagent1", "5491155550000", "", "agentID"},
		{"o\u2060", "a", "5491155550000", "", "organizationID"},
		{"o\U000E0041", "a", "5491155550000", "", "organizationID"},
		{"оrg", "a", "5491155550000", "", "organizationID"}, // Cyrillic о
		{strings.Repeat("o", 65), "a", "5491155550000", "", "organizationID"},
		{strings.Repeat("o", 1<<20), "a", "5491155550000", "", "organizationID"},
		{strings.Repeat("o", 64), "cl-agent-1", "5491155550000", strings.Repeat("o", 64) + "_cl-agent-1_5491155550000", ""},
	}
	for _, tt := range tests {
		t.Run(shorten(tt.org, 70)+"/"+tt.agent+"/"+tt.phone, func(t *testing.T) {
			got, err := WhatsAppChannelExternalID(tt.org, tt.agent, tt.phone)
			if tt.field == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				org, agent, phone, err := ParseWhatsAppChannelExternalID(got)
				require.NoError(t, err)
				assert.Equal(t, []string{tt.org, tt.agent}, []string{org, agent})
				assert.Equal(t, got[strings.LastIndexByte(got, '_')+1:], phone)
				return
			}
			assert.Empty(t, got)
			var vErr *ValidationError
			require.ErrorAs(t, err, &vErr)
			assert.Equal(t, tt.field, vErr.Field)
			assert.True(t, strings.HasPrefix(err.Error(), "laburen: WhatsApp channel external ID: invalid "+tt.field), err.Error())
		})
	}
}

func TestParseWhatsAppChannelExternalID(t *testing.T) {
	tests := []struct {
		id                string
		org, agent, phone string
		ok                bool
	}{
		{"clorg1_clagent1_5491155550000", "clorg1", "clagent1", "5491155550000", true},
		{"o_a_12345678", "o", "a", "12345678", true},
		{"", "", "", "", false},
		{"clorg1_clagent1", "", "", "", false},
		{"clorg1_clagent1_5491155550000_x", "", "", "", false},
		{"_clagent1_5491155550000", "", "", "", false},
		{"clorg1__5491155550000", "", "", "", false},
		{"clorg1_clagent1_", "", "", "", false},
		{"clorg1_clagent1_+5491155550000", "", "", "", false},
		{"clorg1_clagent1_54 9 11 5555 0000", "", "", "", false},
		{"clorg1_clagent1_05491155550000", "", "", "", false},
		{"clorg1_clagent1_1234567", "", "", "", false},
		{"cl org_clagent1_5491155550000", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			org, agent, phone, err := ParseWhatsAppChannelExternalID(tt.id)
			if !tt.ok {
				var vErr *ValidationError
				require.ErrorAs(t, err, &vErr)
				assert.True(t, strings.HasPrefix(err.Error(), "laburen: parse WhatsApp channel external ID: "), err.Error())
				assert.Equal(t, []string{"", "", ""}, []string{org, agent, phone})
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []string{tt.org, tt.agent, tt.phone}, []string{org, agent, phone})
		})
	}
}

func TestChatwootConversationID(t *testing.T) {
	tests := []struct {
		account, customer string
		want              string
		field             string
	}{
		{"12", "345", "crmchatsappai_12_345", ""},
		{"1", "999999999999999999", "crmchatsappai_1_999999999999999999", ""},
		{"acc-1", "2", "", "accountID"},
		{"", "345", "", "accountID"},
		{"12", "", "", "customerID"},
		{"1_2", "345", "", "accountID"},
		{"12", "34_5", "", "customerID"}, // a reader that splits on "_" would route it to 34
		{"12", "345_678", "", "customerID"},
		{"12", "_", "", "customerID"},
		{"12", "34 5", "", "customerID"},
		{"12\n", "345", "", "accountID"},
		// Look-alikes: displayed as crmchatsappai_12_345, or read as 12 by a lenient parser.
		{"12\u200b", "345", "", "accountID"},
		{"12", "345\ufeff", "", "customerID"},
		{"012", "345", "", "accountID"},
		{"+12", "345", "", "accountID"},
		{"-12", "345", "", "accountID"},
		{"１２", "345", "", "accountID"},
		{"١٢", "345", "", "accountID"},
		{"0", "345", "", "accountID"},
		{"12", "1234567890123456789", "", "customerID"},
		{"12", strings.Repeat("1", 1<<20), "", "customerID"},
	}
	for _, tt := range tests {
		t.Run(tt.account+"/"+shorten(tt.customer, 30), func(t *testing.T) {
			got, err := ChatwootConversationID(tt.account, tt.customer)
			if tt.field == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				account, customer, err := ParseChatwootConversationID(got)
				require.NoError(t, err)
				assert.Equal(t, []string{tt.account, tt.customer}, []string{account, customer})
				return
			}
			assert.Empty(t, got)
			var vErr *ValidationError
			require.ErrorAs(t, err, &vErr)
			assert.Equal(t, tt.field, vErr.Field)
		})
	}
}

// TestChatwootConversationIDWithAThirdPart: a customer ID with "_" is refused, so that every
// reader of the ID, however it splits, finds the same customer.
func TestChatwootConversationIDWithAThirdPart(t *testing.T) {
	_, _, err := ParseChatwootConversationID("crmchatsappai_12_345_678")
	assert.Error(t, err)
	err = (&QueryRequest{Query: "q", ConversationID: "crmchatsappai_12_345_678"}).validate()
	assert.Error(t, err)
}

// TestConversationIDLookAlikePrefix: an ID that holds the Chatwoot prefix in another case, after
// white space or invisible characters of any class, with invisible characters among its letters,
// or spelled with a rune that case-folds to an ASCII letter, is checked like one, not waved through.
func TestConversationIDLookAlikePrefix(t *testing.T) {
	for _, id := range []string{
		"CRMCHATSAPPAI_12_345", "CrmChatsAppAI_12_345_678", " crmchatsappai_12_345", "\tcrmchatsappai_12_345",
		"\u200bcrmchatsappai_12_345", "\ufeffcrmchatsappai_1_2", "crmchatsappai_12\u200b_345",
		"\u3164crmchatsappai_12_345", "\u034fcrmchatsappai_12_345", "\u2800crmchatsappai_12_345", // Lo, Mn, So
		"crmchat\u017fappai_12_345", "crm\u200bchatsappai_12_345", "x-crmchatsappai_12_345",
	} {
		t.Run(id, func(t *testing.T) {
			for _, err := range []error{
				(&QueryRequest{Query: "q", ConversationID: id}).validate(),
				(&AgentQueryRequest{Query: "q", ConversationID: id}).validate(),
			} {
				var vErr *ValidationError
				require.ErrorAs(t, err, &vErr)
				assert.Equal(t, "conversationId", vErr.Field)
			}
		})
	}
	// IDs of other channels are the server's business.
	for _, id := range []string{"clconv123", "crm_12_345", "chatwoot_12_345"} {
		assert.NoError(t, (&QueryRequest{Query: "q", ConversationID: id}).validate())
	}
}

func TestParseChatwootConversationID(t *testing.T) {
	for _, bad := range []string{
		"", "crmchatsappai_", "crmchatsappai_12", "crmchatsappai_12_", "crmchatsappai__345",
		"CRMCHATSAPPAI_12_345", "chatwoot_12_345", "xcrmchatsappai_12_345", "crmchatsappai_12_3 45",
		"crmchatsappai_1_2_3", "crmchatsappai_012_345", "crmchatsappai_12_+345", "crmchatsappai_１２_345",
	} {
		t.Run(bad, func(t *testing.T) {
			account, customer, err := ParseChatwootConversationID(bad)
			var vErr *ValidationError
			require.ErrorAs(t, err, &vErr)
			assert.Empty(t, account)
			assert.Empty(t, customer)
			assert.True(t, strings.HasPrefix(err.Error(), "laburen: parse Chatwoot conversation ID: "), err.Error())
		})
	}
}

// FuzzWhatsAppChannelExternalID checks that building and parsing agree: whatever is built
// parses back to its parts, and whatever parses is rebuilt to the same ID. Nothing panics.
func FuzzWhatsAppChannelExternalID(f *testing.F) {
	f.Add("clorg1", "clagent1", "+54 9 11 5555-0000")
	f.Add("o", "a", "12345678")
	f.Add("o_x", "a", "5491155550000")
	f.Add("o", "a", "0054 9 11")
	f.Add("", "", "")
	f.Add("ñ", "\x00", "+")
	f.Fuzz(func(t *testing.T, org, agent, phone string) {
		id, err := WhatsAppChannelExternalID(org, agent, phone)
		if err != nil {
			assert.Empty(t, id)
			var vErr *ValidationError
			assert.ErrorAs(t, err, &vErr)
		} else {
			o, a, p, err := ParseWhatsAppChannelExternalID(id)
			require.NoError(t, err, id)
			assert.Equal(t, org, o)
			assert.Equal(t, agent, a)
			assert.Regexp(t, `^[1-9][0-9]{7,14}$`, p)
			assert.Equal(t, id, org+"_"+agent+"_"+p)
		}
		// Whatever parses is rebuilt to the very same ID.
		whole := org + "_" + agent + "_" + phone
		if o, a, p, err := ParseWhatsAppChannelExternalID(whole); err == nil {
			again, err := WhatsAppChannelExternalID(o, a, p)
			require.NoError(t, err)
			assert.Equal(t, whole, again)
		}
	})
}

// FuzzChatwootConversationID checks the same agreement for Chatwoot conversation IDs.
func FuzzChatwootConversationID(f *testing.F) {
	f.Add("12", "345")
	f.Add("1_2", "3")
	f.Add("", "x")
	f.Add("a b", "\xff")
	f.Fuzz(func(t *testing.T, account, customer string) {
		id, err := ChatwootConversationID(account, customer)
		if err != nil {
			assert.Empty(t, id)
			var vErr *ValidationError
			assert.ErrorAs(t, err, &vErr)
		} else {
			assert.True(t, utf8.ValidString(id))
			a, c, err := ParseChatwootConversationID(id)
			require.NoError(t, err, id)
			assert.Equal(t, []string{account, customer}, []string{a, c})
			// The request validation accepts exactly what the helpers build.
			assert.NoError(t, (&QueryRequest{Query: "q", ConversationID: id}).validate())
		}
		whole := "crmchatsappai_" + account + "_" + customer
		if a, c, err := ParseChatwootConversationID(whole); err == nil {
			again, err := ChatwootConversationID(a, c)
			require.NoError(t, err)
			assert.Equal(t, whole, again)
		} else {
			assert.Error(t, (&QueryRequest{Query: "q", ConversationID: whole}).validate())
		}
	})
}
