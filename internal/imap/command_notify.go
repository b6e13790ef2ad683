package imap

// Notify is NOTIFY (RFC 5465 §3).
type Notify struct {
	CommandBase
	// None reports NOTIFY NONE: cancel all notifications.
	None bool
	// Status reports SET STATUS: send STATUS for the mailboxes now.
	Status bool
	// Groups are the event groups of NOTIFY SET.
	Groups []NotifyGroup
}

// NotifyFilter selects the mailboxes of an event group (RFC 5465 §6).
type NotifyFilter uint8

// Mailbox filters.
const (
	NotifySelected        NotifyFilter = iota + 1 // selected
	NotifySelectedDelayed                         // selected-delayed
	NotifyInboxes                                 // inboxes
	NotifyPersonal                                // personal
	NotifySubscribed                              // subscribed
	NotifySubtree                                 // subtree (Mailboxes)
	NotifyMailboxes                               // mailboxes (Mailboxes)
)

// NotifyGroup is one event group: a mailbox filter and its events.
type NotifyGroup struct {
	Filter NotifyFilter
	// Mailboxes are the names of the subtree and mailboxes filters, as
	// the client sent them.
	Mailboxes []string
	// Events are the events asked for; empty for NONE.
	Events []NotifyEvent
}

// NotifyEvent is one event of an event group.
type NotifyEvent struct {
	// Name is the event name, in the RFC's spelling for the known ones
	// ("MessageNew", "FlagChange"); other names as the client sent them
	// (the server answers NO [BADEVENT ...] for those it does not
	// support).
	Name string
	// Fetch are the fetch attributes of MessageNew, for the selected
	// mailbox filters only.
	Fetch []FetchItem
}

// notifyEvents are the events of RFC 5465 §8, keyed by upper-case name.
var notifyEvents = map[string]string{
	"MESSAGENEW": "MessageNew", "MESSAGEEXPUNGE": "MessageExpunge",
	"FLAGCHANGE": "FlagChange", "ANNOTATIONCHANGE": "AnnotationChange",
	"MAILBOXNAME": "MailboxName", "SUBSCRIPTIONCHANGE": "SubscriptionChange",
	"MAILBOXMETADATACHANGE": "MailboxMetadataChange",
	"SERVERMETADATACHANGE":  "ServerMetadataChange",
}

// isMessageEvent reports the message events of RFC 5465 §5.
func isMessageEvent(name string) bool {
	switch name {
	case "MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange":
		return true
	}
	return false
}

// parseNotify parses NOTIFY SP ("SET" [SP "STATUS"] SP event-groups /
// "NONE") (RFC 5465 §8).
func parseNotify(r *Reader, _ bool) Command {
	c := &Notify{}
	r.sp()
	var buf [8]byte
	switch string(r.keyword(buf[:], "SET or NONE")) {
	case "NONE":
		c.None = true
		return c
	case "SET":
	default:
		fail("expected SET or NONE")
	}
	r.sp()
	if r.peekKeyword("STATUS") {
		r.pos += len("STATUS")
		c.Status = true
		r.sp()
	}
	selected := false
	for {
		g := r.notifyGroup()
		if g.Filter == NotifySelected || g.Filter == NotifySelectedDelayed {
			if selected {
				// RFC 5465 §6: only one of selected and
				// selected-delayed.
				fail("selected given twice")
			}
			selected = true
		}
		c.Groups = append(c.Groups, g)
		if !r.maybeSP() {
			return c
		}
	}
}

// notifyGroup consumes "(" filter-mailboxes SP events ")".
func (r *Reader) notifyGroup() NotifyGroup {
	var g NotifyGroup
	r.expect('(', "( to start event group")
	var buf [24]byte
	switch string(r.keyword(buf[:], "mailbox filter")) {
	case "SELECTED":
		g.Filter = NotifySelected
	case "SELECTED-DELAYED":
		g.Filter = NotifySelectedDelayed
	case "INBOXES":
		g.Filter = NotifyInboxes
	case "PERSONAL":
		g.Filter = NotifyPersonal
	case "SUBSCRIBED":
		g.Filter = NotifySubscribed
	case "SUBTREE":
		g.Filter = NotifySubtree
	case "MAILBOXES":
		g.Filter = NotifyMailboxes
	default:
		fail("unknown mailbox filter")
	}
	if g.Filter == NotifySubtree || g.Filter == NotifyMailboxes {
		r.sp()
		if r.peek() == '(' {
			r.pos++
			for {
				g.Mailboxes = append(g.Mailboxes, r.mailboxArg())
				if !r.listNext("mailbox list") {
					break
				}
			}
		} else {
			g.Mailboxes = []string{r.mailboxArg()}
		}
	}
	r.sp()
	selected := g.Filter == NotifySelected || g.Filter == NotifySelectedDelayed
	if r.peekKeyword("NONE") {
		r.pos += 4
	} else {
		r.expect('(', "( to start event list")
		for {
			g.Events = append(g.Events, r.notifyEvent(selected))
			if !r.listNext("event list") {
				break
			}
		}
		if selected {
			checkNotifyEvents(g.Events)
		}
	}
	r.expect(')', ") to end event group")
	return g
}

// notifyEvent consumes one event.
func (r *Reader) notifyEvent(selected bool) NotifyEvent {
	raw := r.atom("event name")
	var buf [24]byte
	var ev NotifyEvent
	if name, ok := notifyEvents[string(upperASCII(buf[:0], raw))]; ok {
		ev.Name = name
	} else {
		ev.Name = string(raw)
	}
	if ev.Name == "MessageNew" && r.peek() == ' ' && r.pos+1 < len(r.line) && r.line[r.pos+1] == '(' {
		if !selected {
			// RFC 5465 §5.1: the fetch attributes are for the
			// selected mailbox only.
			fail("MessageNew fetch attributes only for selected")
		}
		r.pos += 2
		for {
			ev.Fetch = append(ev.Fetch, r.fetchAtt())
			if !r.listNext("fetch attributes") {
				break
			}
		}
	}
	if selected && !isMessageEvent(ev.Name) && notifyEvents[upperStringS(ev.Name)] != "" {
		// RFC 5465 §8: only message events for selected.
		fail("only message events allowed for selected")
	}
	return ev
}

// checkNotifyEvents applies RFC 5465 §5 to the selected and
// selected-delayed filters: MessageNew and MessageExpunge come together,
// and FlagChange (and AnnotationChange) need both, since the client
// tracks that mailbox's message numbers. For the other filters one
// message event alone is accepted, as Dovecot does and clients rely on
// (a departure from §5, listed in docs/imap.md): the mailboxes they
// name are reported with STATUS, which needs no such pairing.
func checkNotifyEvents(evs []NotifyEvent) {
	var hasNew, hasExpunge, hasFlag bool
	for _, e := range evs {
		switch e.Name {
		case "MessageNew":
			hasNew = true
		case "MessageExpunge":
			hasExpunge = true
		case "FlagChange", "AnnotationChange":
			hasFlag = true
		}
	}
	if hasNew != hasExpunge {
		fail("MessageNew and MessageExpunge must be given together")
	}
	if hasFlag && !hasNew {
		fail("FlagChange requires MessageNew and MessageExpunge")
	}
}
