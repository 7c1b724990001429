package broker

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// Operating a cluster: what a node reports about the cluster (for the
// admin API, /metrics and $SYS) and how a node leaves it gracefully. Both
// are optional interfaces of a Cluster, found by type assertion.

// ErrNotClustered is returned by Server.ClusterStatus on a single node, or
// when its Cluster cannot describe itself.
var ErrNotClustered = errors.New("broker: this broker is not part of a cluster")

// ClusterNode is one node of a cluster, as the node asked sees it.
type ClusterNode struct {
	Name string `json:"name"`
	// Address is the MQTT address the node advertises: the Server
	// Reference other nodes send clients to when they shut down.
	Address string `json:"address,omitempty"`
	// Alive is true while the node's heartbeats arrive (every second; a
	// node is dead 3 s after its last one).
	Alive bool `json:"alive"`
	// Draining is true while the node shuts down: it accepts no new
	// connections and moves its clients away.
	Draining bool `json:"draining,omitempty"`
	// Self marks the node that answered.
	Self bool `json:"self,omitempty"`
	// LastHeartbeat is when its last heartbeat was written (zero: never
	// seen, a JetStream peer without a Gannet heartbeat).
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
	// Clients is how many clients were connected to it at its last
	// heartbeat.
	Clients int `json:"clients"`
}

// ClusterReplica is one replica of a JetStream stream or of the meta
// group (the JetStream servers agreeing on which streams exist).
type ClusterReplica struct {
	Name    string `json:"name"`
	Leader  bool   `json:"leader,omitempty"`
	Current bool   `json:"current"`           // caught up with the leader
	Offline bool   `json:"offline,omitempty"` // not seen recently
	// ActiveSeconds is how long ago the leader last heard from it.
	ActiveSeconds float64 `json:"active_seconds"`
	// Lag is how many operations it is behind the leader.
	Lag uint64 `json:"lag"`
}

// ClusterStream is one JetStream stream (or key-value bucket) of the
// cluster's shared state.
type ClusterStream struct {
	Name     string           `json:"name"`
	Replicas int              `json:"replicas"` // configured
	Leader   string           `json:"leader,omitempty"`
	Messages uint64           `json:"messages"`
	Bytes    uint64           `json:"bytes"`
	Peers    []ClusterReplica `json:"peers"`
	// Lagging counts the replicas that are not current.
	Lagging int    `json:"lagging"`
	Error   string `json:"error,omitempty"`
}

// ClusterStatus is a node's view of its cluster.
type ClusterStatus struct {
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
	// Ready is true once JetStream has formed and this node reads the
	// shared state: QoS 1/2, retained publishes and CONNECTs need it.
	Ready      bool             `json:"jetstream_ready"`
	Nodes      []ClusterNode    `json:"nodes"`
	MetaLeader string           `json:"meta_leader,omitempty"`
	MetaPeers  []ClusterReplica `json:"meta_peers,omitempty"`
	Streams    []ClusterStream  `json:"streams"`
	// Errors are the parts that could not be read (a stream without a
	// leader, JetStream without a quorum).
	Errors []string `json:"errors,omitempty"`
}

// ClusterReporter is implemented by a Cluster that can describe itself.
type ClusterReporter interface {
	// NodeName is this node's name in the cluster.
	NodeName() string
	// Nodes returns the nodes this node hears heartbeats from (and
	// itself), from memory: cheap enough for every $SYS interval.
	Nodes() []ClusterNode
	// Status asks JetStream for the state of the streams and replicas,
	// within ctx.
	Status(ctx context.Context) (*ClusterStatus, error)
}

// ClusterDrainer is implemented by a Cluster that helps its node leave
// gracefully: Server.Close uses it to move the node's clients to the other
// nodes (rolling restart).
type ClusterDrainer interface {
	// Drain tells the other nodes that this node is leaving: they stop
	// naming it as a Server Reference.
	Drain(ctx context.Context)
	// ServerReference returns the MQTT address of a live node, other than
	// this one, to send a client to ("" if none); successive calls spread
	// the clients over the live nodes.
	ServerReference() string
	// Release gives up this node's claim on every client identifier it
	// owns, so that its clients can connect to another node at once,
	// without that node asking this one to take them over.
	Release(ctx context.Context)
}

// ClusterRedirector is implemented by a Cluster that knows whether a
// CONNECT its node refuses as Server unavailable (0x88: it cannot claim or
// read the session now, or it is shutting down) would be better served by
// another node; without it every such refusal names a live node (0x9C).
type ClusterRedirector interface {
	// RefusalReference returns where to send a refused 5.0 client (a live
	// node; "" for Options.ServerReference), and false if no other node
	// would do better: this node reaches the cluster's majority, so the
	// others meet the same JetStream, and the client should try again
	// (0x88) rather than move.
	RefusalReference() (ref string, redirect bool)
}

// LocalNode is implemented by the Inbound the broker gives a Cluster: what
// a node tells the others about itself in its heartbeat.
type LocalNode interface {
	// Connections is how many clients are connected now.
	Connections() int
	// ListenAddrs are the addresses of the MQTT listeners being served.
	ListenAddrs() []string
}

func (in inbound) Connections() int { return int(in.s.stats.connections.Load()) }

func (in inbound) ListenAddrs() []string {
	in.s.mu.Lock()
	defer in.s.mu.Unlock()
	var out []string
	for l := range in.s.listeners {
		if a, ok := l.Addr().(*net.TCPAddr); ok {
			out = append(out, a.String())
		}
	}
	return out
}

// NodeName returns this node's name in its cluster, "" on a single node.
func (s *Server) NodeName() string {
	if r, ok := s.cluster.(ClusterReporter); ok {
		return r.NodeName()
	}
	return ""
}

// ClusterStatus returns this node's view of its cluster, or
// ErrNotClustered.
func (s *Server) ClusterStatus(ctx context.Context) (*ClusterStatus, error) {
	r, ok := s.cluster.(ClusterReporter)
	if !ok {
		return nil, ErrNotClustered
	}
	return r.Status(ctx)
}

// drainTimeout bounds how long Close waits for the cluster to hear that
// this node leaves and to release its client identifiers.
const drainTimeout = 5 * time.Second

// drainCluster prepares the clients' move to other nodes when a clustered
// node closes: the listeners are closed already (lame duck: no new
// connections), the other nodes hear that this node leaves, and the client
// identifiers are released, all before any client is told to go. It
// returns the Server Reference to give each 5.0 client: a live node, in
// turn, or Options.ServerReference.
func (s *Server) drainCluster() func() string {
	static := s.opt().ServerReference
	d, ok := s.cluster.(ClusterDrainer)
	if !ok {
		return func() string { return static }
	}
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	d.Drain(ctx)
	d.Release(ctx)
	s.log.Info("shutdown: leaving the cluster; clients are sent to the other nodes")
	return func() string {
		if ref := d.ServerReference(); ref != "" {
			return ref
		}
		return static
	}
}

// refusalReference is the Server Reference of a CONNACK that refuses with
// rc: for 0x88 Server unavailable (shutting down, the cluster cannot claim
// the session) and 0x89 Server busy, a live node of the cluster in turn,
// else Options.ServerReference; "" for other refusals, and for a 0x88 of
// a node that reaches its cluster's majority and is not shutting down
// (ClusterRedirector): another node would meet the same JetStream, so the
// client tries again, here or anywhere, instead of being sent away.
func (s *Server) refusalReference(o *Options, rc packet.ReasonCode) string {
	if rc != packet.ServerUnavailable && rc != packet.ServerBusy {
		return ""
	}
	closing := false
	select {
	case <-s.stop: // a node shutting down sends clients away, draining or not yet
		closing = true
	default:
	}
	if r, ok := s.cluster.(ClusterRedirector); ok && rc == packet.ServerUnavailable && !closing {
		ref, redirect := r.RefusalReference()
		switch {
		case !redirect:
			return ""
		case ref != "":
			return ref
		}
		return o.ServerReference
	}
	if d, ok := s.cluster.(ClusterDrainer); ok {
		if ref := d.ServerReference(); ref != "" {
			return ref
		}
	}
	return o.ServerReference
}

// publishClusterSys publishes this node's view of the cluster under
// $SYS/broker/cluster/: $SYS is each node's own, never routed.
func (s *Server) publishClusterSys() {
	r, ok := s.cluster.(ClusterReporter)
	if !ok {
		return
	}
	nodes := r.Nodes()
	alive := 0
	for _, n := range nodes {
		a := "0"
		if n.Alive {
			alive++
			a = "1"
		}
		s.publishSys("$SYS/broker/cluster/nodes/"+n.Name+"/alive", a)
		s.publishSys("$SYS/broker/cluster/nodes/"+n.Name+"/clients", strconv.Itoa(n.Clients))
		if n.Address != "" {
			s.publishSys("$SYS/broker/cluster/nodes/"+n.Name+"/address", n.Address)
		}
	}
	s.publishSys("$SYS/broker/cluster/node", r.NodeName())
	s.publishSys("$SYS/broker/cluster/nodes/alive", strconv.Itoa(alive))
}
