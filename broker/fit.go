package broker

import "github.com/gannet-mqtt/gannet/packet"

// fits reports whether p may go to the client under its Maximum Packet
// Size [MQTT-3.1.2-24]. A packet too large loses its Reason String and User
// Properties first, as the specification allows for every packet that can
// carry them [MQTT-3.2.2-19] [MQTT-3.2.2-20] [MQTT-3.14.2-3]
// [MQTT-3.14.2-4]; only if it is still too large does it not fit.
func (c *conn) fits(p packet.Packet) bool {
	if c.maxOut == 0 || p.Size(c.version) <= c.maxOut {
		return true
	}
	props := optionalProps(p)
	if props == nil {
		return false
	}
	props.Present.Remove(packet.PropReasonString)
	props.ReasonString = ""
	props.User = nil
	return p.Size(c.version) <= c.maxOut
}

// optionalProps returns the properties of a packet the broker sends that
// may hold a Reason String and User Properties, or nil.
func optionalProps(p packet.Packet) *packet.Properties {
	switch p := p.(type) {
	case *packet.Connack:
		return &p.Properties
	case *packet.Disconnect:
		return &p.Properties
	case *packet.Puback:
		return &p.Properties
	case *packet.Pubrec:
		return &p.Properties
	case *packet.Pubrel:
		return &p.Properties
	case *packet.Pubcomp:
		return &p.Properties
	case *packet.Suback:
		return &p.Properties
	case *packet.Unsuback:
		return &p.Properties
	case *packet.Auth:
		return &p.Properties
	}
	return nil
}
