package broker

import (
	"errors"

	"github.com/gannet-mqtt/gannet/packet"
)

// OnceRouter is implemented by an AsyncRouter that stores a QoS 2 message
// so that the same PUBLISH, resent by its client after the node that
// stored it died before the packet identifier's record was stored (no
// PUBREC went out), is not stored and routed a second time on the node
// it is resent to [MQTT-4.3.3-10].
type OnceRouter interface {
	// StoreOnce is AsyncRouter.Store for a QoS 2 message received in a
	// PUBLISH from key.ClientID with key.PacketID. If the cluster finds
	// the resent PUBLISH (key.Dup) stored already, done gets
	// ErrStoredBefore: the message is acknowledged and not delivered
	// again (the cluster delivers the stored one).
	StoreOnce(p *packet.Publish, key OnceKey, done func(seq uint64, err error))
}

// OnceKey identifies a QoS 2 PUBLISH for OnceRouter.
type OnceKey struct {
	ClientID string
	PacketID uint16
	Dup      bool // the PUBLISH's DUP flag: a resend [MQTT-3.3.1-1]
}

// ErrStoredBefore is an OnceRouter's answer to a resent QoS 2 PUBLISH
// whose message it stored before.
var ErrStoredBefore = errors.New("cluster: the resent QoS 2 message was stored before")

// storeOnce starts storing m through the cluster, once if it can tell.
// Read loop only.
func (c *conn) storeOnce(ar AsyncRouter, q *packet.Publish, p *packet.Publish, done func(uint64, error)) {
	if or, ok := ar.(OnceRouter); ok && p.QoS == 2 && !p.Retain {
		or.StoreOnce(q, OnceKey{ClientID: c.clientID, PacketID: p.PacketID, Dup: p.Dup}, done)
		return
	}
	ar.Store(q, done)
}
