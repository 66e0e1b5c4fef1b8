package laburen

import (
	"context"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// AgentQuery records a message written by the agent side (a human operator, a CRM, a WhatsApp
// sender) in a conversation's history. It does not call the AI. Like Query it is not retried
// once the request has reached the server.
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

// WhatsAppChannelExternalID builds the channelExternalId that routes an agent-side message to a
// WhatsApp conversation: "{organizationID}_{agentID}_{phone}". The phone is normalized to the
// WhatsApp wa_id (country code and number, digits only): "+54 9 11 5555-0000" becomes
// "5491155550000". Spaces, dashes, dots, parentheses and a leading "+" are removed; anything
// else, a number of fewer than 8 or more than 15 digits, one that starts with 0 (a trunk or
// international prefix instead of the country code), an empty ID or an ID containing "_" is
// refused with a *ValidationError: a wrong ID would put the message in someone else's thread.
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

// ParseWhatsAppChannelExternalID splits a channelExternalId built by WhatsAppChannelExternalID
// into its organization ID, agent ID and phone number. It is strict: the phone must already be
// normalized (8 to 15 digits).
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
		return "", "", "", invalid("channelExternalId", "%q is not {organizationId}_{agentId}_{phone}", id)
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

// normalizePhone turns a human-written phone number into a wa_id.
func normalizePhone(phone string) (string, *ValidationError) {
	digits := make([]byte, 0, len(phone))
	for i, r := range strings.TrimSpace(phone) {
		switch {
		case r >= '0' && r <= '9':
			digits = append(digits, byte(r))
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", invalid("phone", "%q contains %q; only digits, a leading +, spaces, dashes, dots and parentheses are allowed", phone, r)
		}
	}
	if err := validateWaID(string(digits)); err != nil {
		return "", invalid("phone", "%q: %s", phone, err.Reason)
	}
	return string(digits), nil
}

// validateWaID checks a normalized WhatsApp number.
func validateWaID(s string) *ValidationError {
	if len(s) < 8 || len(s) > 15 {
		return invalid("phone", "%q must have 8 to 15 digits (country code and number)", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return invalid("phone", "%q must be digits only", s)
		}
	}
	if s[0] == '0' {
		return invalid("phone", "%q starts with 0; it must start with the country code", s)
	}
	return nil
}

// validateIDPart checks one component of a routing ID.
func validateIDPart(field, s string) *ValidationError {
	if strings.Contains(s, "_") {
		return invalid(field, "%q contains \"_\", which the routing ID uses as its separator", s)
	}
	return validateLastIDPart(field, s)
}

// validateLastIDPart checks the last component of a routing ID, which may contain "_": the
// parts before it cannot, so the ID still splits one way only.
func validateLastIDPart(field, s string) *ValidationError {
	switch {
	case s == "":
		return invalid(field, "is empty")
	case !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return invalid(field, "%q contains spaces, control characters or invalid UTF-8", s)
	}
	return nil
}

// ChatwootConversationID builds the conversationId of a Chatwoot (CRM) conversation:
// "crmchatsappai_{accountID}_{customerID}", such as "crmchatsappai_12_345". An empty part, an
// account ID that contains "_", or a part with spaces or control characters is refused with a
// *ValidationError. The customer ID, being last, may contain "_": the ID still splits one way.
func ChatwootConversationID(accountID, customerID string) (string, error) {
	const op = "Chatwoot conversation ID"
	if err := validateIDPart("accountID", accountID); err != nil {
		return "", opError(op, err)
	}
	if err := validateLastIDPart("customerID", customerID); err != nil {
		return "", opError(op, err)
	}
	return chatwootPrefix + accountID + "_" + customerID, nil
}

// ParseChatwootConversationID splits a conversationId built by ChatwootConversationID into its
// account and customer IDs.
func ParseChatwootConversationID(id string) (accountID, customerID string, err error) {
	account, customer, verr := parseChatwoot(id)
	if verr != nil {
		return "", "", opError("parse Chatwoot conversation ID", verr)
	}
	return account, customer, nil
}

func parseChatwoot(id string) (account, customer string, err *ValidationError) {
	rest, ok := strings.CutPrefix(id, chatwootPrefix)
	parts := strings.SplitN(rest, "_", 2)
	if !ok || len(parts) != 2 {
		return "", "", invalid("conversationId", "%q is not crmchatsappai_{accountId}_{customerId}", id)
	}
	if err := validateIDPart("accountID", parts[0]); err != nil {
		return "", "", err
	}
	if err := validateLastIDPart("customerID", parts[1]); err != nil {
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
