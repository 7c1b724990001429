package store

// Batch is a set of writes that a Batcher applies as one: after a crash the
// store holds all of them or none. The broker writes the deliveries of an
// inbound QoS 2 message, its retained record and the identifier awaiting
// PUBREL in one Batch, so that a crash can neither keep the deliveries
// without the identifier (a resent PUBLISH would be routed twice) nor the
// identifier without the deliveries (the resent PUBLISH would be taken for
// one already routed, and lost) [MQTT-4.3.3-2].
type Batch struct {
	// Queues are entries appended to clients' queues, as by
	// QueueStore.Append, in order.
	Queues []QueueAppend
	// Retained, when not nil, is stored as by RetainedStore.SetRetained.
	Retained *Message
	// DeleteRetained, when not empty, is the topic whose retained message
	// is deleted, as by RetainedStore.DeleteRetained (before Retained is
	// stored, if both are set).
	DeleteRetained string
	// Inbound are QoS 2 identifiers recorded as by InboundStore.AddInbound.
	Inbound []Inbound
}

// QueueAppend is entries appended to one client's queue.
type QueueAppend struct {
	ClientID string
	Entries  []*Entry
}

// Inbound is one inbound QoS 2 identifier of a client awaiting PUBREL.
type Inbound struct {
	ClientID string
	ID       uint16
}

// Empty reports whether b writes nothing.
func (b *Batch) Empty() bool {
	return len(b.Queues) == 0 && b.Retained == nil && b.DeleteRetained == "" && len(b.Inbound) == 0
}

// Batcher is implemented by stores that can apply a Batch atomically. A
// store that implements InboundStore should implement it too: without it
// the broker writes the parts of a batch one by one, and a crash between
// them can deliver an inbound QoS 2 message twice.
type Batcher interface {
	// WriteBatch applies every write of b, or, with an error, possibly
	// none; never some without the others once a crash has been
	// recovered from.
	WriteBatch(b *Batch) error
}
