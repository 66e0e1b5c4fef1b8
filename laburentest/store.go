package laburentest

import (
	"maps"
	"slices"
	"time"

	"github.com/laburen/laburen-go"
)

// Role says who wrote a message of a conversation.
type Role string

// The authors of messages.
const (
	// RoleUser is the end user, whose messages arrive by Query.
	RoleUser Role = "user"
	// RoleAgent is the agent side (a human operator, a CRM, a WhatsApp sender), whose messages
	// arrive by AgentQuery.
	RoleAgent Role = "agent"
	// RoleAI is the AI agent, whose answers the Responder wrote.
	RoleAI Role = "ai"
)

// Message is one message of a conversation's history.
type Message struct {
	// ID is the message's ID: the messageId of the response that created it, or the
	// inputMessageId of a queued query.
	ID string
	// Role says who wrote it.
	Role Role
	// Text is the message text.
	Text string
	// Draft is true for an agent-side draft (isDraft).
	Draft bool
	// Metadata is the metadata sent with an agent-side message.
	Metadata map[string]any
	// Time is when the server stored it.
	Time time.Time
}

// Conversation is a conversation as the server stores it.
type Conversation struct {
	// ID is the conversation ID: the one the client sent, or one the server generated.
	ID string
	// AgentID is the agent of the first message.
	AgentID string
	// VisitorID is the end user's ID.
	VisitorID string
	// Channel is the channel of the first message ("api" when it gave none).
	Channel laburen.Channel
	// ChannelExternalID is the channelExternalId an agent-side message routed it by.
	ChannelExternalID string
	// ContactID is the ID of its CRM contact, empty when no message named one.
	ContactID string
	// Status is the conversation's status, StatusUnresolved unless a reply changed it.
	Status laburen.ConversationStatus
	// Messages is its history, in order.
	Messages []Message
}

func (c *Conversation) clone() Conversation {
	out := *c
	out.Messages = slices.Clone(c.Messages)
	for i := range out.Messages {
		out.Messages[i].Metadata = maps.Clone(out.Messages[i].Metadata)
	}
	return out
}

// Contact is a CRM contact as the server stores it.
type Contact struct {
	// ID is the contact's ID: the contactId a message gave, or one the server generated.
	ID string
	// Email, PhoneNumber and UserID are the keys a request's contact is matched by, in that
	// order; a later request fills in the fields still empty, never overwrites one.
	Email       string
	PhoneNumber string
	UserID      string
	// FirstName and LastName are as the requests gave them.
	FirstName string
	LastName  string
}

// Conversation returns the conversation with that ID.
func (s *Server) Conversation(id string) (Conversation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conversations[id]
	if !ok {
		return Conversation{}, false
	}
	return c.clone(), true
}

// Conversations returns every conversation, in order of creation.
func (s *Server) Conversations() []Conversation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Conversation, len(s.convOrder))
	for i, id := range s.convOrder {
		out[i] = s.conversations[id].clone()
	}
	return out
}

// Contacts returns every contact, in order of creation.
func (s *Server) Contacts() []Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Contact, len(s.contacts))
	for i, c := range s.contacts {
		out[i] = *c
	}
	return out
}

// target names the conversation a message goes to.
type target struct {
	agentID           string
	conversationID    string
	visitorID         string
	channel           laburen.Channel
	channelExternalID string
	contactID         string
	contact           *laburen.Contact
}

// conversationFor finds or creates the conversation of a message: by its ID when given, else
// by the agent, channel and channelExternalId when these are given, else a new one. It
// returns the conversation and the visitor ID to answer with. s.mu must be held.
func (s *Server) conversationFor(t target) (*Conversation, string) {
	if t.channel == "" {
		t.channel = laburen.ChannelAPI
	}
	var conv *Conversation
	if t.conversationID != "" {
		conv = s.conversations[t.conversationID]
	} else if t.channelExternalID != "" {
		for _, id := range s.convOrder {
			c := s.conversations[id]
			if c.AgentID == t.agentID && c.Channel == t.channel && c.ChannelExternalID == t.channelExternalID {
				conv = c
				break
			}
		}
	}
	if conv == nil {
		conv = &Conversation{
			ID:                t.conversationID,
			AgentID:           t.agentID,
			VisitorID:         t.visitorID,
			Channel:           t.channel,
			ChannelExternalID: t.channelExternalID,
			Status:            laburen.StatusUnresolved,
		}
		if conv.ID == "" {
			conv.ID = newID()
		}
		if conv.VisitorID == "" {
			conv.VisitorID = newID()
		}
		s.conversations[conv.ID] = conv
		s.convOrder = append(s.convOrder, conv.ID)
	}
	if conv.ChannelExternalID == "" {
		conv.ChannelExternalID = t.channelExternalID
	}
	if id := s.contactFor(t.contactID, t.contact); id != "" {
		conv.ContactID = id
	}
	visitor := t.visitorID
	if visitor == "" {
		visitor = conv.VisitorID
	}
	return conv, visitor
}

// contactFor finds or creates the contact a message names: by contactId, then by email, phone
// number and user ID in that order; a contact matching none is created. Fields the message
// gives fill the contact's empty ones. It returns "" when the message names no contact. s.mu
// must be held.
func (s *Server) contactFor(id string, in *laburen.Contact) string {
	if id == "" && (in == nil || *in == (laburen.Contact{})) {
		return ""
	}
	var c *Contact
	match := func(get func(*Contact) string, want string) {
		if c != nil || want == "" {
			return
		}
		for _, each := range s.contacts {
			if get(each) == want {
				c = each
				return
			}
		}
	}
	var given laburen.Contact
	if in != nil {
		given = *in
	}
	match(func(c *Contact) string { return c.ID }, id)
	match(func(c *Contact) string { return c.Email }, given.Email)
	match(func(c *Contact) string { return c.PhoneNumber }, given.PhoneNumber)
	match(func(c *Contact) string { return c.UserID }, given.UserID)
	if c == nil {
		c = &Contact{ID: id}
		if c.ID == "" {
			c.ID = newID()
		}
		s.contacts = append(s.contacts, c)
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	fill(&c.Email, given.Email)
	fill(&c.PhoneNumber, given.PhoneNumber)
	fill(&c.FirstName, given.FirstName)
	fill(&c.LastName, given.LastName)
	fill(&c.UserID, given.UserID)
	return c.ID
}

// appendMessage stores a message in a conversation and returns its ID. s.mu must be held.
func appendMessage(conv *Conversation, m Message) string {
	if m.ID == "" {
		m.ID = newID()
	}
	m.Time = time.Now()
	conv.Messages = append(conv.Messages, m)
	return m.ID
}
