package broker

import (
	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
)

// Behaviours a Mosquitto configuration asks for (config translates
// mosquitto.conf into these options).

// outQoS is the QoS a message published at msgQoS goes out with on a
// subscription granted subQoS: the lower of the two [MQTT-3.8.4-6], or the
// subscription's with Options.UpgradeOutgoingQoS.
func (s *Server) outQoS(msgQoS, subQoS byte) byte {
	if s.opt().UpgradeOutgoingQoS {
		return subQoS
	}
	return min(msgQoS, subQoS)
}

// retainSourceOK reports whether a retained message may be delivered under
// Options.CheckRetainSource: its publisher must still be allowed to write
// its topic. Messages of unknown origin (published by the broker, or
// stored by a Gannet that did not keep the publisher) are delivered; the
// store keeps the publisher of the others across a restart.
func (s *Server) retainSourceOK(m *message) bool {
	if m.source == nil || !s.opt().CheckRetainSource || s.opt().Authorizer == nil {
		return true
	}
	return s.allowed(m.source, auth.Write, m.topic)
}

// dropTooLarge drops a PUBLISH whose payload exceeds
// Options.MaxPayloadSize: its QoS flow is completed, with 0x83 for 5.0 as
// Mosquitto does, and the client stays connected.
func (c *conn) dropTooLarge(p *packet.Publish) {
	c.srv.log.Info("PUBLISH dropped: payload above the configured maximum (message_size_limit)",
		"client", c.clientID, "topic", p.Topic, "payload", len(p.Payload), "max", c.srv.opt().MaxPayloadSize)
	switch {
	case p.QoS > 0 && c.version >= packet.V5:
		c.ack(p, packet.ImplementationSpecificError)
	case p.QoS > 0:
		c.ack(p, packet.Success)
	}
}
