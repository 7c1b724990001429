package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"time"
)

// Options configure a node of a cluster. Start from DefaultOptions.
type Options struct {
	// Name is the cluster's name: all its nodes share it. It names the
	// NATS cluster, the JetStream streams and the subjects.
	Name string
	// Node is this node's name, unique in the cluster (default: the host
	// name).
	Node string
	// Listen is the address of the embedded NATS route listener, that the
	// other nodes' Routes name ("host:port"; port 0 picks a free one).
	Listen string
	// Routes are the other nodes' route listeners (nats://host:port).
	Routes []string
	// Replicas is how many copies JetStream keeps of the shared state (1
	// to 5); the cluster needs a majority of them to accept QoS 1/2 and
	// retained messages.
	Replicas int
	// NATSURL, when set, connects to an existing NATS cluster with
	// JetStream (comma-separated URLs) instead of embedding a server:
	// Listen and Routes are then unused.
	NATSURL string
	// DataDir is where the embedded server keeps JetStream's files
	// (DataDir/jetstream).
	DataDir string
	// SyncAlways makes JetStream fsync every write before acknowledging
	// it. By default it syncs on an interval (2 minutes): a write
	// acknowledged by a majority of replicas survives the crash of any
	// minority of processes, but a power loss of a majority of machines
	// at once can lose what was written since the last sync.
	SyncAlways bool
	// Advertise is the MQTT address ("host:port") clients can reach this
	// node at: when another node shuts down it sends its 5.0 clients here
	// (DISCONNECT 0x9C with this Server Reference). Default: this node's
	// first MQTT listener, with the host name for an unspecified host
	// (0.0.0.0).
	Advertise string
	// ClientListen is the embedded server's client listener, kept on
	// loopback (NATS routing needs one); default 127.0.0.1, any port.
	ClientListen string
	// ElectionTimeout is how long the followers of a JetStream raft group
	// (a stream, a bucket, the meta group) wait without hearing from its
	// leader before they elect another: between it and 1.5 times it. It
	// bounds how long a kill -9 of the node leading the groups a CONNECT
	// and a QoS 1/2 publish write stops them (election.go). Default
	// (and for 0) DefaultElectionTimeout; 0.5 s to 10 s (nats-server
	// ships 4 s). It applies to the whole process, set by the first node
	// started in it; unused with NATSURL (the NATS cluster's own setting
	// applies).
	ElectionTimeout time.Duration
	// StartTimeout bounds how long Start waits for JetStream to form
	// (a quorum of nodes must be up).
	StartTimeout time.Duration
	// Logger receives the cluster's and the embedded server's logs.
	Logger *slog.Logger

	// advertise, when set, is the route address the embedded server tells
	// the other nodes, for the routes they make on their own (implicit
	// routes): tests give one that leads nowhere, so that the nodes reach
	// each other only through their Routes, proxies the tests can cut.
	advertise string
	// dispatchQueue, when set, is the capacity of the queue of live
	// messages from other nodes (default 65536): tests make it small so
	// that core NATS drops what overflows it, as under sustained load.
	dispatchQueue int
}

// DefaultOptions returns options for a node named after the host, on the
// standard route port.
func DefaultOptions() Options {
	host, _ := os.Hostname()
	return Options{
		Name:         "gannet",
		Node:         host,
		Listen:       "0.0.0.0:6222",
		Replicas:     3,
		ClientListen: "127.0.0.1:0",
		StartTimeout: time.Minute,

		ElectionTimeout: DefaultElectionTimeout,
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate reports every invalid option at once.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("cluster: "+format, a...)) }
	if !nameRE.MatchString(o.Name) {
		bad("name %q must be letters, digits, '-' and '_'", o.Name)
	}
	if !nameRE.MatchString(o.Node) {
		bad("node name %q must be letters, digits, '-' and '_'", o.Node)
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		bad("replicas %d must be between 1 and 5", o.Replicas)
	}
	if o.NATSURL == "" {
		if _, _, err := net.SplitHostPort(o.Listen); err != nil {
			bad("listen %q: %v", o.Listen, err)
		}
		if _, _, err := net.SplitHostPort(o.ClientListen); err != nil {
			bad("client listen %q: %v", o.ClientListen, err)
		}
		if o.DataDir == "" {
			bad("a data directory is needed for JetStream's files")
		}
	}
	if o.NATSURL == "" && o.ElectionTimeout != 0 && (o.ElectionTimeout < minElectionTimeoutOption || o.ElectionTimeout > maxElectionTimeoutOption) {
		bad("election timeout %v must be between %v and %v", o.ElectionTimeout, minElectionTimeoutOption, maxElectionTimeoutOption)
	}
	if o.StartTimeout <= 0 {
		bad("start timeout %v must be positive", o.StartTimeout)
	}
	return errors.Join(errs...)
}
