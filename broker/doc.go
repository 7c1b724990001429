// Package broker is the Gannet MQTT server: it accepts connections from any
// net.Listener, speaks MQTT 3.1, 3.1.1 and 5.0 on them, and routes
// messages between sessions.
//
// The core types are Server (New, Serve, Publish, Close) and Options
// (DefaultOptions, Validate). A Go program embeds the broker like this:
//
//	srv, err := broker.New(broker.DefaultOptions())
//	l, _ := net.Listen("tcp", "127.0.0.1:1883")
//	go srv.Serve(l)
//	defer srv.Close()
//
// How a message flows, and where each lock is held, is described in
// docs/architecture.md.
package broker
