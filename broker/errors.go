package broker

import (
	"errors"

	"github.com/gannet-mqtt/gannet/packet"
)

var (
	// ErrServerClosed is returned by Serve after Close.
	ErrServerClosed = errors.New("broker: server closed")

	errDisconnect     = errors.New("broker: client disconnected")
	errClosedByBroker = errors.New("broker: connection closed by the broker")
	errTakenOver      = errors.New("broker: session taken over by a new connection")
)

// closeError ends a connection with a reason code (sent in DISCONNECT to
// 5.0 clients) and a message for the log.
type closeError struct {
	code packet.ReasonCode
	msg  string
}

func (e *closeError) Error() string { return "broker: " + e.msg + " (" + e.code.String() + ")" }

func protocolError(msg string) error { return &closeError{packet.ProtocolError, msg} }
