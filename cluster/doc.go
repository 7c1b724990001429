// Package cluster joins Gannet nodes into one broker on NATS JetStream.
//
// Each node embeds a nats-server with JetStream (or connects to an existing
// NATS cluster, Options.NATSURL); the servers are meshed by routes. A
// Cluster, made with New, implements broker.Cluster, broker.RetainedSyncer
// and broker.SessionOwners: give it to broker.Options.Cluster and the
// broker calls it; package broker never imports this one. It also
// implements broker.ClusterReporter (the nodes it hears heartbeats from,
// and the streams' health: /api/v1/cluster, gannet cluster status) and
// broker.ClusterDrainer (a node closed gracefully sends its clients to a
// live node, Options.Advertise being the address others send them to).
//
//   - Live messages travel on core NATS subjects, one subscription per
//     distinct MQTT filter per node (TopicSubject and FilterSubject map MQTT
//     topics to subjects, reversibly).
//   - QoS 1/2 messages are stored in a replicated stream before the
//     publisher is acknowledged; retained messages live in a stream with one
//     message per topic, read by each node into its retained index. Each
//     node audits the messages stream (headers only, one consumer) and
//     reads from it, by sequence, what core NATS lost on the way to it
//     (audit.go).
//   - The owner of each client identifier is kept in a KV bucket, claimed by
//     compare-and-set at CONNECT.
//   - $share groups are NATS queue groups.
//   - Persistent sessions live in a KV bucket, written behind in order per
//     session (writer.go); a node's checkpoint (how far it has applied the
//     messages stream and stored what that caused) tells the node that
//     takes a session over where to replay from.
//
// Caveats: see docs/clustering.md for what is and is not shared yet.
package cluster
