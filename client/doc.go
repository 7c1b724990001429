// Package client is an MQTT 3.1, 3.1.1 and 5.0 client over TCP, TLS and
// WebSocket (subprotocol "mqtt"). It imports the packet and topic packages
// and the standard library, and github.com/coder/websocket; never the
// broker.
//
// Core types:
//
//   - [Client] is one session with one server. [Dial] (or [New] and
//     [Client.Connect]) connects it; [Client.Publish], [Client.Subscribe]
//     and [Client.Unsubscribe] wait, within their context, for the server's
//     acknowledgement; [Client.Disconnect] ends it.
//   - [Options] configure it; start from [DefaultOptions].
//   - [Message] is a received message, handed to the [Subscription]'s
//     handler or channel.
//
// Errors wrap the sentinels of errors.go; a refused connection is a
// [*ConnackError], a failure reason code (0x80 and above) in PUBACK, PUBREC,
// PUBCOMP, SUBACK or UNSUBACK a [*ReasonError], a DISCONNECT from the server
// a [*DisconnectError].
//
// # Delivery order and acknowledgement
//
// One goroutine per client calls the handlers, one message at a time, in
// the order the messages arrived: messages of every subscription are
// delivered in order. A message matching several subscriptions reaches each
// of their handlers, in turn, before the next message. A QoS 1 message is
// acknowledged (PUBACK) and a QoS 2 message received (PUBREC) only once its
// handlers have returned; so a slow handler slows the server down through
// Receive Maximum instead of losing messages, and a message whose handler
// did not finish before the connection broke is sent again by a server
// that kept the session. Handlers may call any method of the client,
// Disconnect included; a handler that blocks stops every delivery of the
// client. The read loop never waits for a handler: QoS 0 messages queue up
// in memory while a handler is slow.
//
// # Reconnecting
//
// Automatic reconnect is off by default: a lost connection ends the client
// ([Client.Done], [Client.Err]), and waiting calls return an error wrapping
// [ErrConnectionLost]. With [Options].AutoReconnect the client redials with
// exponential backoff and jitter; then, on the new connection, it
//
//   - subscribes again to every granted subscription when the server
//     reports no session (Session Present 0), so a clean-session client
//     keeps its subscriptions across a broker restart;
//   - resends SUBSCRIBE and UNSUBSCRIBE still unanswered;
//   - resends, in their original order, the QoS 1 and 2 messages not
//     acknowledged (PUBLISH with DUP, or PUBREL after PUBREC), then the
//     messages queued while it was offline.
//
// When the server has no session, the client discards its session state
// as the protocol asks [MQTT-3.2.2-5], except that its unacknowledged
// messages, whose callers still wait, are sent again in the new session: a
// message the old server received but did not acknowledge can arrive
// twice, which QoS 1 allows. A QoS 2 message whose PUBREC had arrived is
// counted as delivered.
//
// # Relaying QoS 2 (bridges)
//
// A program that passes messages between two servers can make QoS 2 exactly
// once across its own crash by relaying each step of the exchange and
// keeping the packet identifier: [Message].PacketID and
// [PublishOptions].PacketID/Dup send a message on with the identifier it
// came with; [Client.PublishHeld] returns an [Exchange] whose PUBREL waits
// for [Exchange.Release]; [Client.ResumeRelease] sends PUBREL for an
// exchange a previous run had taken to PUBREC; and Options.OnRelease hands
// the server's PUBREL to the program, which completes it (PUBCOMP) once the
// other side did.
//
// # Flow control and limits (5.0)
//
// The client never has more QoS 1 and 2 messages unacknowledged than the
// server's Receive Maximum; the others wait in order. It refuses to send a
// packet above the server's Maximum Packet Size, a QoS above its Maximum
// QoS, or a retained message when it has none. It accepts at most
// Options.ReceiveMaximum unacknowledged messages from the server and topic
// aliases up to Options.TopicAliasMaximum, and disconnects a server that
// exceeds either. Options.TopicAliases turns on outbound topic aliases.
//
// # Keep-alive
//
// When it has sent nothing for most of Options.KeepAlive (or the server's
// Server Keep Alive), the client sends PINGREQ; with no PINGRESP within
// Options.PingTimeout it closes the connection with [ErrPingTimeout], which
// counts as a lost connection.
//
// # Locking
//
// Client.mu guards the session state (packet identifiers, the queues of
// outbound messages, subscriptions, QoS 2 receive state); each connection's
// write buffer has its own mutex, taken after Client.mu; the subscription
// trie's lock is taken last. No handler or callback runs with a lock held.
// Each connection has a read loop, a writer and a keep-alive goroutine; a
// client adds a supervisor (which reconnects) and the dispatcher.
package client
