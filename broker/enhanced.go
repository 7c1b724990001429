package broker

import (
	"errors"
	"fmt"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
)

// MQTT 5.0 enhanced authentication: the AUTH exchange before CONNACK, and
// re-authentication on an established connection (section 4.12).

// enhancedMethod returns the configured method of that name, or nil.
func (s *Server) enhancedMethod(name string) auth.EnhancedAuth {
	for _, m := range s.opt().EnhancedAuth {
		if m.Method() == name {
			return m
		}
	}
	return nil
}

// authExchange runs an enhanced authentication exchange during CONNECT:
// it sends AUTH 0x18 with the method's data and reads the client's AUTH
// replies until the method is done. It returns the data for CONNACK and
// the user name the method established; with an error, the user name the
// client gave, if any.
func (c *conn) authExchange(m auth.EnhancedAuth, p *packet.Connect) (reply []byte, user string, err error) {
	method := p.Properties.AuthMethod
	ex := m.Start(&auth.Client{ClientID: p.ClientID, Remote: c.nc.RemoteAddr(), Listener: c.lo.Name, Version: p.Version})
	data := p.Properties.AuthData
	named := func() string { // the user the exchange names, known once it has begun
		if id, ok := ex.(auth.Identified); ok {
			return id.Username()
		}
		return ""
	}
	deadline := time.Now().Add(c.srv.opt().ConnectTimeout)
	for {
		reply, done, err := ex.Step(data)
		if err != nil {
			return nil, named(), err
		}
		if done {
			if id, ok := ex.(auth.Identified); ok {
				user = id.Username()
			}
			return reply, user, nil
		}
		a := &packet.Auth{ReasonCode: packet.ContinueAuthentication} // [MQTT-4.12.0-2]
		a.Properties.SetString(packet.PropAuthMethod, method)        // [MQTT-4.12.0-5]
		a.Properties.SetBinary(packet.PropAuthData, reply)
		c.sendPacket(a)
		next, err := c.readHandshakePacket(deadline)
		if err != nil {
			return nil, named(), err
		}
		in, ok := next.(*packet.Auth)
		if !ok {
			// Only AUTH or DISCONNECT may come before CONNACK [MQTT-3.1.2-30].
			return nil, named(), fmt.Errorf("%s during the authentication exchange", next.Type())
		}
		if in.ReasonCode != packet.ContinueAuthentication || in.Properties.AuthMethod != method { // [MQTT-4.12.0-3]
			return nil, named(), errors.New("AUTH with another reason code or method during the exchange")
		}
		data = in.Properties.AuthData
	}
}

// readHandshakePacket reads one more packet before CONNACK, from the bytes
// left over from CONNECT and then the socket.
func (c *conn) readHandshakePacket(deadline time.Time) (packet.Packet, error) {
	dec := packet.Decoder{Version: packet.V5, MaxSize: c.srv.opt().MaxPacketSize, MaxUserProperties: c.srv.opt().MaxUserProperties}
	c.nc.SetReadDeadline(deadline)
	for {
		p, n, err := dec.Decode(c.hsRest)
		if err != nil {
			return nil, err
		}
		if p != nil {
			c.hsRest = append(c.hsRest[:0], c.hsRest[n:]...)
			return p, nil
		}
		var chunk [512]byte
		k, err := c.nc.Read(chunk[:])
		c.hsRest = append(c.hsRest, chunk[:k]...)
		if err != nil {
			return nil, err
		}
	}
}

// handleAuth runs re-authentication on an established connection
// [MQTT-4.12.1-1] [MQTT-4.12.1-2].
func (c *conn) handleAuth(p *packet.Auth) error {
	if c.authMethod == "" {
		return protocolError("AUTH without enhanced authentication in CONNECT") // [MQTT-4.12.0-7]
	}
	if p.Properties.AuthMethod != c.authMethod {
		return protocolError("AUTH with another authentication method") // [MQTT-4.12.1-1]
	}
	switch p.ReasonCode {
	case packet.ReAuthenticate:
		m := c.srv.enhancedMethod(c.authMethod)
		if m == nil {
			return &closeError{packet.NotAuthorized, "authentication method no longer configured"}
		}
		c.reauth = m.Start(c.authc)
	case packet.ContinueAuthentication:
		if c.reauth == nil {
			return protocolError("AUTH continue without a re-authentication under way")
		}
	default:
		return protocolError("AUTH success from a client")
	}
	reply, done, err := c.reauth.Step(p.Properties.AuthData)
	if err != nil {
		c.reauth = nil
		return &closeError{packet.NotAuthorized, "re-authentication failed: " + err.Error()} // [MQTT-4.12.1-2]
	}
	rc := packet.ContinueAuthentication
	if done {
		rc, c.reauth = packet.Success, nil
	}
	a := &packet.Auth{ReasonCode: rc}
	a.Properties.SetString(packet.PropAuthMethod, c.authMethod)
	if reply != nil {
		a.Properties.SetBinary(packet.PropAuthData, reply)
	}
	c.sendPacket(a)
	return nil
}
