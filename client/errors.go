package client

import (
	"errors"
	"fmt"

	"github.com/gannet-mqtt/gannet/packet"
)

// Sentinel errors. Errors returned by the client wrap them with context
// (the operation, the topic); test with errors.Is.
var (
	// ErrClosed: the client was ended by Disconnect or Close.
	ErrClosed = errors.New("client: closed")
	// ErrConnectionLost: the network connection ended. Without
	// AutoReconnect this ends the client; the underlying cause is
	// wrapped as well.
	ErrConnectionLost = errors.New("client: connection lost")
	// ErrPingTimeout: the server did not answer PINGREQ within the ping
	// timeout; the connection is considered dead.
	ErrPingTimeout = errors.New("client: no PINGRESP from the server within the ping timeout")
	// ErrConnected: Connect was called on a client that is connected.
	ErrConnected = errors.New("client: already connected")
	// ErrPacketTooLarge: the packet is larger than the server's Maximum
	// Packet Size (5.0) and was not sent.
	ErrPacketTooLarge = errors.New("client: packet exceeds the server's maximum packet size")
	// ErrQoSNotSupported: the server's Maximum QoS (5.0) is below the
	// QoS asked for.
	ErrQoSNotSupported = errors.New("client: QoS above the server's maximum QoS")
	// ErrRetainNotSupported: the server does not support retained
	// messages (5.0 Retain Available 0).
	ErrRetainNotSupported = errors.New("client: the server does not support retained messages")
	// ErrInvalidTopic: a topic name or filter is not valid.
	ErrInvalidTopic = errors.New("client: invalid topic")
	// ErrPacketIDInUse: a caller-chosen packet identifier
	// (PublishOptions.PacketID, ResumeRelease) names a message the client
	// has in flight.
	ErrPacketIDInUse = errors.New("client: packet identifier in use")
)

// ConnackError is a connection refused by the server in CONNACK.
type ConnackError struct {
	Code            packet.ReasonCode // 5.0 code; 3.1.1 return codes are mapped to it
	ReasonString    string            // 5.0 Reason String, if any
	ServerReference string            // 5.0 Server Reference, if any
}

func (e *ConnackError) Error() string {
	s := fmt.Sprintf("client: connection refused by the server: %s (0x%02x)", e.Code, byte(e.Code))
	if e.ReasonString != "" {
		s += ": " + e.ReasonString
	}
	if e.ServerReference != "" {
		s += " (server reference " + e.ServerReference + ")"
	}
	return s
}

// ReasonError is a failure reason code (0x80 and above) in PUBACK, PUBREC,
// PUBCOMP, SUBACK or UNSUBACK.
type ReasonError struct {
	Op           string // what failed: `publish to "a/b"`, `subscribe to "a/#"`
	Code         packet.ReasonCode
	ReasonString string // 5.0 Reason String, if any
}

func (e *ReasonError) Error() string {
	s := fmt.Sprintf("client: %s: refused by the server: %s (0x%02x)", e.Op, e.Code, byte(e.Code))
	if e.ReasonString != "" {
		s += ": " + e.ReasonString
	}
	return s
}

// DisconnectError is a DISCONNECT sent by a 5.0 server. It is the cause
// wrapped in the ErrConnectionLost that ends or interrupts the connection.
type DisconnectError struct {
	Code            packet.ReasonCode
	ReasonString    string
	ServerReference string
}

func (e *DisconnectError) Error() string {
	s := fmt.Sprintf("client: disconnected by the server: %s (0x%02x)", e.Code, byte(e.Code))
	if e.ReasonString != "" {
		s += ": " + e.ReasonString
	}
	if e.ServerReference != "" {
		s += " (server reference " + e.ServerReference + ")"
	}
	return s
}

// lostError wraps the cause of a lost connection with ErrConnectionLost.
func lostError(cause error) error {
	if cause == nil || errors.Is(cause, ErrConnectionLost) {
		return cause
	}
	return fmt.Errorf("%w: %w", ErrConnectionLost, cause)
}
