package config

import (
	"net"
	"regexp"
	"time"

	"github.com/gannet-mqtt/gannet/cluster"
)

// Cluster is the cluster section: with Name (or NATSURL) set, this node
// joins a cluster of Gannet nodes on NATS JetStream (package cluster);
// without, Gannet is a single node and starts no NATS.
type Cluster struct {
	// Name is the cluster's name, shared by all its nodes.
	Name string `yaml:"name,omitempty"`
	// Node is this node's name; default: the host name.
	Node string `yaml:"node,omitempty"`
	// Listen is the embedded NATS route listener; default 0.0.0.0:6222.
	Listen string `yaml:"listen,omitempty"`
	// Routes are the other nodes' route listeners (nats://host:port).
	Routes []string `yaml:"routes,omitempty"`
	// Replicas is how many JetStream copies of the shared state (1 to 5);
	// default 3.
	Replicas int `yaml:"replicas,omitempty"`
	// NATSURL uses an existing NATS cluster instead of embedding one.
	NATSURL string `yaml:"nats_url,omitempty"`
	// SyncAlways makes JetStream fsync every write (see docs/clustering.md).
	SyncAlways bool `yaml:"sync_always,omitempty"`
	// ElectionTimeout is how long JetStream's raft groups go without
	// hearing from their leader before electing another (between it and
	// 1.5 times it): how long a kill -9 of the node that leads them stops
	// CONNECTs and QoS 1/2 publishes. 0.5s to 10s; default 1.5s.
	ElectionTimeout time.Duration `yaml:"election_timeout,omitempty"`
	// Advertise is the MQTT address (host:port) of this node that the
	// other nodes send clients to (Server Reference) when they shut down;
	// default: the first listener, with the host name for 0.0.0.0.
	Advertise string `yaml:"advertise,omitempty"`
}

// Enabled reports whether the section asks for a cluster.
func (c Cluster) Enabled() bool { return c.Name != "" || c.NATSURL != "" }

var clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]*$`)

func (f *File) validateCluster(c *collector) {
	cl := f.Cluster
	if !cl.Enabled() {
		return
	}
	if !clusterNameRE.MatchString(cl.Name) {
		c.at("cluster.name", "%q: use letters, digits, '-' and '_'", cl.Name)
	}
	if !clusterNameRE.MatchString(cl.Node) {
		c.at("cluster.node", "%q: use letters, digits, '-' and '_'", cl.Node)
	}
	if cl.Listen != "" {
		if _, _, err := net.SplitHostPort(cl.Listen); err != nil {
			c.at("cluster.listen", "%q is not host:port", cl.Listen)
		}
	}
	if cl.Advertise != "" {
		if _, _, err := net.SplitHostPort(cl.Advertise); err != nil {
			c.at("cluster.advertise", "%q is not host:port (the MQTT address clients can reach this node at)", cl.Advertise)
		}
	}
	if cl.Replicas != 0 {
		c.between("cluster.replicas", int64(cl.Replicas), 1, 5)
	}
	if cl.ElectionTimeout != 0 && (cl.ElectionTimeout < 500*time.Millisecond || cl.ElectionTimeout > 10*time.Second) {
		c.at("cluster.election_timeout", "%v: use 500ms to 10s (a shorter one lets a loaded node lose its leaderships while it lives)", cl.ElectionTimeout)
	}
	if cl.NATSURL == "" && f.Store.DataDir == "" {
		c.at("store.data_dir", "empty; a cluster node keeps JetStream's files there")
	}
}

// clusterOptions returns the options of package cluster, or nil when no
// cluster is configured.
func (f *File) clusterOptions() *cluster.Options {
	cl := f.Cluster
	if !cl.Enabled() {
		return nil
	}
	o := cluster.DefaultOptions()
	if cl.Name != "" {
		o.Name = cl.Name
	}
	if cl.Node != "" {
		o.Node = cl.Node
	}
	if cl.Listen != "" {
		o.Listen = cl.Listen
	}
	o.Routes = cl.Routes
	if cl.Replicas != 0 {
		o.Replicas = cl.Replicas
	}
	o.NATSURL = cl.NATSURL
	o.SyncAlways = cl.SyncAlways
	if cl.ElectionTimeout != 0 {
		o.ElectionTimeout = cl.ElectionTimeout
	}
	o.Advertise = cl.Advertise
	o.DataDir = f.Store.DataDir
	return &o
}
