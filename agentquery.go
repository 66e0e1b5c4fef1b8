package laburen

import (
	"context"
	"strconv"
	"strings"
)

// AgentQuery records an agent-side message in a conversation, without calling the AI. It is
// retried as Query is.
func (c *Client) AgentQuery(ctx context.Context, agentID string, req AgentQueryRequest, opts ...Option) (*AgentQueryResponse, error) {
	cfg, r, err := c.agentQueryRequest(agentID, &req, false, opts)
	if err != nil {
		return nil, opError("agent query to agent "+strconv.Quote(agentID), err)
	}
	var res AgentQueryResponse
	if err := c.call(ctx, cfg, r, &res); err != nil {
		return nil, opError("agent query to agent "+strconv.Quote(agentID), err)
	}
	return &res, nil
}

// agentQueryRequest validates an agent query and encodes it for the request path.
func (c *Client) agentQueryRequest(agentID string, req *AgentQueryRequest, streaming bool, opts []Option) (*config, request, error) {
	return c.prepare(agentID, "query-agent", req, streaming, opts)
}

// validate checks an agent query request before it is sent.
func (r *AgentQueryRequest) validate() error {
	if err := validateText("query", r.Query); err != nil {
		return err
	}
	if err := validateChannel(r.Channel); err != nil {
		return err
	}
	if err := validateConversationID(r.ConversationID); err != nil {
		return err
	}
	if r.ChannelExternalID != "" && r.Channel == "" {
		// The server would file it on the api channel, where it routes nothing.
		return invalid("channel", "is empty while channelExternalId is set; set the channel the ID belongs to (ChannelWhatsApp)")
	}
	if r.Channel == ChannelWhatsApp {
		if r.ChannelExternalID == "" {
			return invalid("channelExternalId", "is required on the whatsapp channel; build it with WhatsAppChannelExternalID")
		}
		if _, _, _, err := parseWhatsApp(r.ChannelExternalID); err != nil {
			return within("channelExternalId", err)
		}
	}
	return r.Contact.validate()
}

const chatwootPrefix = "crmchatsappai_"

// WhatsAppChannelExternalID builds a WhatsApp channelExternalId from a wa_id or a "+" number;
// it refuses to guess, with a *ValidationError.
func WhatsAppChannelExternalID(organizationID, agentID, phone string) (string, error) {
	const op = "WhatsApp channel external ID"
	if err := validateIDPart("organizationID", organizationID); err != nil {
		return "", opError(op, err)
	}
	if err := validateIDPart("agentID", agentID); err != nil {
		return "", opError(op, err)
	}
	waID, err := normalizePhone(phone)
	if err != nil {
		return "", opError(op, err)
	}
	return organizationID + "_" + agentID + "_" + waID, nil
}

// ParseWhatsAppChannelExternalID splits an ID built by WhatsAppChannelExternalID.
func ParseWhatsAppChannelExternalID(id string) (organizationID, agentID, phone string, err error) {
	org, agent, phone, verr := parseWhatsApp(id)
	if verr != nil {
		return "", "", "", opError("parse WhatsApp channel external ID", verr)
	}
	return org, agent, phone, nil
}

func parseWhatsApp(id string) (org, agent, phone string, err *ValidationError) {
	parts := strings.Split(id, "_")
	if len(parts) != 3 {
		return "", "", "", invalid("channelExternalId", "%q is not {organizationId}_{agentId}_{phone}", shorten(id, 200))
	}
	if err := validateIDPart("organizationID", parts[0]); err != nil {
		return "", "", "", err
	}
	if err := validateIDPart("agentID", parts[1]); err != nil {
		return "", "", "", err
	}
	if err := validateWaID(parts[2]); err != nil {
		return "", "", "", err
	}
	return parts[0], parts[1], parts[2], nil
}

// normalizePhone turns a phone number in international form, or a bare wa_id, into a wa_id.
func normalizePhone(phone string) (string, *ValidationError) {
	const howTo = `write it in international form with "+" and the country code ("+1 323 555 0100"), or as a wa_id of digits only ("13235550100")`
	s := strings.TrimSpace(phone)
	rest, international := strings.CutPrefix(s, "+")
	if strings.Contains(strings.ReplaceAll(rest, " ", ""), "(0)") {
		return "", invalid("phone", "%q has a (0) trunk prefix, which is not dialled from abroad: drop it (\"+44 (0)20 7946 0958\" is \"+44 20 7946 0958\")", shorten(phone, 64))
	}
	digits := make([]byte, 0, len(rest))
	for _, r := range rest {
		switch {
		case r >= '0' && r <= '9':
			digits = append(digits, byte(r))
		case international && (r == ' ' || r == '-' || r == '.' || r == '(' || r == ')'):
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
			// Without "+" the country code would be a guess: (323) 555-0100 in Los Angeles
			// and 32 3 555 01 00 in Antwerp are the same digits.
			return "", invalid("phone", "%q is formatted but has no leading +: %s", shorten(phone, 64), howTo)
		default:
			return "", invalid("phone", "%q contains %q: %s", shorten(phone, 64), string(r), howTo)
		}
	}
	if err := validateWaID(string(digits)); err != nil {
		return "", invalid("phone", "%q: %s", shorten(phone, 64), err.Reason)
	}
	return string(digits), nil
}

// validateWaID checks a normalized WhatsApp number.
func validateWaID(s string) *ValidationError {
	if len(s) < 8 || len(s) > 15 {
		return invalid("phone", "%q must have 8 to 15 digits (country code and number)", shorten(s, 64))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return invalid("phone", "%q must be digits only", shorten(s, 64))
		}
	}
	if s[0] == '0' {
		return invalid("phone", "%q starts with 0; it must start with the country code", s)
	}
	return nil
}

// maxIDPart caps the length of an organization or agent ID in a routing ID.
const maxIDPart = 64

// validateIDPart checks an organization or agent ID of a routing ID: ASCII letters, digits and
// "-", so that no invisible, look-alike or separator character can make two IDs display alike.
func validateIDPart(field, s string) *ValidationError {
	switch {
	case s == "":
		return invalid(field, "is empty")
	case len(s) > maxIDPart:
		return invalid(field, "is %d bytes long; at most %d", len(s), maxIDPart)
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' {
			return invalid(field, "%q contains %q; only ASCII letters, digits and \"-\" are allowed", shorten(s, 64), string(r))
		}
	}
	return nil
}

// validateChatwootID checks a Chatwoot account or customer ID: a positive decimal number as
// Chatwoot issues it ("12"), with no sign, leading zero or other digits, of at most 18 digits.
func validateChatwootID(field, s string) *ValidationError {
	ok := s != "" && len(s) <= 18 && s[0] != '0'
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= '0' && s[i] <= '9'
	}
	if !ok {
		return invalid(field, "%q is not a Chatwoot ID: a decimal number as Chatwoot shows it (\"12\"), without sign, leading zeros or spaces", shorten(s, 64))
	}
	return nil
}

// ChatwootConversationID builds "crmchatsappai_{accountID}_{customerID}" from two decimal
// Chatwoot IDs; anything else is refused with a *ValidationError.
func ChatwootConversationID(accountID, customerID string) (string, error) {
	const op = "Chatwoot conversation ID"
	if err := validateChatwootID("accountID", accountID); err != nil {
		return "", opError(op, err)
	}
	if err := validateChatwootID("customerID", customerID); err != nil {
		return "", opError(op, err)
	}
	return chatwootPrefix + accountID + "_" + customerID, nil
}

// ParseChatwootConversationID splits an ID built by ChatwootConversationID.
func ParseChatwootConversationID(id string) (accountID, customerID string, err error) {
	account, customer, verr := parseChatwoot(id)
	if verr != nil {
		return "", "", opError("parse Chatwoot conversation ID", verr)
	}
	return account, customer, nil
}

func parseChatwoot(id string) (account, customer string, err *ValidationError) {
	rest, ok := strings.CutPrefix(id, chatwootPrefix)
	parts := strings.Split(rest, "_")
	if !ok || len(parts) != 2 {
		return "", "", invalid("conversationId", "%q is not crmchatsappai_{accountId}_{customerId}", shorten(id, 200))
	}
	if err := validateChatwootID("accountID", parts[0]); err != nil {
		return "", "", err
	}
	if err := validateChatwootID("customerID", parts[1]); err != nil {
		return "", "", err
	}
	return parts[0], parts[1], nil
}

// within reports a routing ID's component error as an error of the request field that carries
// the ID.
func within(field string, err *ValidationError) *ValidationError {
	if err.Field == field {
		return err
	}
	return invalid(field, "%s %s", err.Field, err.Reason)
}
