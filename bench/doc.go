// Package bench is the engine of gannet bench, a load generator for MQTT
// brokers: Gannet, or any other.
//
// Run takes a Config (start from DefaultConfig) and returns a Report. A
// run is one of four scenarios:
//
//   - conn opens connections at a rate and holds them;
//   - pub publishes; sub subscribes and counts what arrives (run the two
//     in separate processes, or against other clients);
//   - pubsub publishes and subscribes at once, in pairs (publisher i to
//     subscriber i), fan-in (many publishers, one wildcard subscriber) or
//     fan-out (one publisher, many subscribers).
//
// Every client dials over Config.Transport: plain TCP, TLS, WebSocket or
// WebSocket over TLS (the "mqtt" subprotocol, binary messages), so that the
// cost of each transport can be measured; bench/transport_memory.sh
// measures the memory per idle connection of each, beside Mosquitto.
//
// The clients are raw connections driven by the packet codec, not a client
// library, so that the bench can saturate a broker before itself: each
// publisher encodes its PUBLISH once and patches the packet identifier and
// timestamp of each copy in a buffer written in 64 KiB batches; read loops
// scan fixed headers in place and allocate nothing per packet; QoS 1 and 2
// publishers keep a window of unacknowledged packet identifiers.
//
// Payloads of 8 bytes or more start with the send time in unix
// nanoseconds, big-endian; receivers record now minus that time in a
// log-linear Histogram (fixed memory, 0.4% precision), from which the
// report takes p50, p90, p99 and p99.9. Publisher and subscriber clocks
// must agree: same machine, or synchronised clocks. When publishers run
// as fast as the broker accepts, the latency includes the queues that
// build up (in the kernel and the broker); measure latency at a rate the
// broker sustains. A PubSub run ignores (and counts as stale) messages
// stamped before it began, which an overloaded broker may deliver late
// from an earlier run on the same topics.
//
// The Report gives messages sent, acknowledged and received, with rates;
// for PubSub the deliveries expected (sent times the subscribers each
// message matches) and missing; connections attempted, established,
// failed and lost, with the connection rate and dial-to-CONNACK latency;
// end-to-end and publish-to-acknowledgement latency percentiles; errors
// by kind; and the CPU time the bench itself used, to tell whether the
// bench or the broker set the pace.
package bench
