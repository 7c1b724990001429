package cluster

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gannet-mqtt/gannet/broker"
)

// Operating a cluster: what a node says about itself in its heartbeat,
// what it knows of the others (broker.ClusterReporter), and how it leaves
// gracefully (broker.ClusterDrainer).

// heartbeat is the value of a node's entry in the nodes bucket, written
// every HeartbeatEvery.
type heartbeat struct {
	Node     string `json:"node"`
	MQTT     string `json:"mqtt,omitempty"` // the address clients are sent to
	Clients  int    `json:"clients"`
	Draining bool   `json:"draining,omitempty"`
}

// peer is the last heartbeat heard from one node instance.
type peer struct {
	hb      heartbeat
	written time.Time // when the node wrote it
	heard   time.Time // when this node received it
	left    bool      // its entry was deleted: it left gracefully
}

// opsState is the part of a Cluster this file keeps.
type opsState struct {
	nodes    atomic.Pointer[jetstream.KeyValue] // the nodes bucket, once set up
	draining atomic.Bool
	next     atomic.Uint64 // round robin over the nodes ServerReference names

	mu    sync.Mutex
	peers map[string]*peer // node instance (origin) → its last heartbeat

	drops sync.WaitGroup // DropWill deletes in flight; Close waits for them
}

// NodeName implements broker.ClusterReporter.
func (c *Cluster) NodeName() string { return c.opt.Node }

// advertised returns the MQTT address this node gives other nodes to send
// clients to: Options.Advertise, or the first MQTT listener (an
// unspecified host, 0.0.0.0 or ::, replaced by the host name).
func (c *Cluster) advertised() string {
	if c.opt.Advertise != "" {
		return c.opt.Advertise
	}
	ln, ok := c.in.(broker.LocalNode)
	if !ok {
		return ""
	}
	addrs := ln.ListenAddrs()
	if len(addrs) == 0 {
		return ""
	}
	slices.Sort(addrs)
	host, port, err := net.SplitHostPort(addrs[0])
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// heartbeatValue is this node's heartbeat now.
func (c *Cluster) heartbeatValue() []byte {
	hb := heartbeat{Node: c.opt.Node, MQTT: c.advertised(), Draining: c.ops.draining.Load()}
	if ln, ok := c.in.(broker.LocalNode); ok {
		hb.Clients = ln.Connections()
	}
	b, _ := json.Marshal(hb)
	return b
}

// notePeer records an update of the nodes bucket. willLoop calls it.
func (c *Cluster) notePeer(e jetstream.KeyValueEntry) {
	c.ops.mu.Lock()
	defer c.ops.mu.Unlock()
	if c.ops.peers == nil {
		c.ops.peers = make(map[string]*peer)
	}
	key := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		if p := c.ops.peers[key]; p != nil {
			p.left = true
		}
		return
	}
	var hb heartbeat
	if err := json.Unmarshal(e.Value(), &hb); err != nil || hb.Node == "" {
		// A node of an older version writes "alive": its name is its
		// instance without the random suffix.
		hb = heartbeat{Node: key}
		if i := strings.LastIndexByte(key, '-'); i > 0 {
			hb.Node = key[:i]
		}
	}
	c.ops.peers[key] = &peer{hb: hb, written: e.Created(), heard: time.Now()}
	// Forget instances that have been silent for long (restarted nodes
	// come back under a new instance).
	for k, p := range c.ops.peers {
		if time.Since(p.heard) > time.Hour {
			delete(c.ops.peers, k)
		}
	}
}

// Nodes implements broker.ClusterReporter: this node, and the latest
// instance of every node heard from, by name.
func (c *Cluster) Nodes() []broker.ClusterNode {
	self := broker.ClusterNode{Name: c.opt.Node, Address: c.advertised(), Alive: true, Self: true, Draining: c.ops.draining.Load()}
	if ln, ok := c.in.(broker.LocalNode); ok {
		self.Clients = ln.Connections()
	}
	byName := map[string]*peer{}
	c.ops.mu.Lock()
	for origin, p := range c.ops.peers {
		if origin == c.origin {
			self.LastHeartbeat = p.written
			continue
		}
		if q := byName[p.hb.Node]; q == nil || p.heard.After(q.heard) {
			byName[p.hb.Node] = p
		}
	}
	var out []broker.ClusterNode
	for name, p := range byName {
		if name == c.opt.Node {
			continue // an earlier instance of this node
		}
		out = append(out, broker.ClusterNode{
			Name:          name,
			Address:       p.hb.MQTT,
			Alive:         !p.left && time.Since(p.heard) < DeadAfter,
			Draining:      p.hb.Draining,
			LastHeartbeat: p.written,
			Clients:       p.hb.Clients,
		})
	}
	c.ops.mu.Unlock()
	out = append(out, self)
	slices.SortFunc(out, func(a, b broker.ClusterNode) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// liveOthers returns the MQTT addresses of the live nodes, other than
// this one, that are not draining, sorted by node name.
func (c *Cluster) liveOthers() []string {
	var live []string
	for _, n := range c.Nodes() {
		if !n.Self && n.Alive && !n.Draining && n.Address != "" {
			live = append(live, n.Address)
		}
	}
	return live
}

// ServerReference implements broker.ClusterDrainer: the live nodes that
// are not draining and advertise an address, in turn.
func (c *Cluster) ServerReference() string {
	live := c.liveOthers()
	if len(live) == 0 {
		return ""
	}
	return live[(c.ops.next.Add(1)-1)%uint64(len(live))]
}

// RefusalReference implements broker.ClusterRedirector: a node that is
// leaving, or that is cut off from its cluster's majority (the minority
// side of a partition), sends a client it refuses to a live node (0x9C);
// one that reaches the majority does not: what made it refuse (a leader
// being elected, a read that timed out) is the same on every node, and a
// node it would name may be the one cut off (heard from within DeadAfter).
// The client tries again (0x88).
func (c *Cluster) RefusalReference() (string, bool) {
	if !c.ops.draining.Load() && c.reachesMajority() {
		return "", false
	}
	return c.ServerReference(), true
}

// reachesMajority reports whether this node's NATS server has routes to
// enough of the cluster's JetStream servers to make, with itself, a
// majority. With an external NATS (Options.NATSURL) it cannot tell, and
// says no: a refused client is sent to a live node, as before.
func (c *Cluster) reachesMajority() bool {
	if c.ns == nil {
		return false
	}
	size := 0
	if jsz, err := c.ns.Jsz(&server.JSzOptions{}); err == nil && jsz.Meta != nil {
		size = jsz.Meta.Size
	}
	if size == 0 {
		size = len(c.Nodes()) // the nodes heard from, this one included
	}
	rz, err := c.ns.Routez(&server.RoutezOptions{})
	if err != nil {
		return false
	}
	routed := map[string]bool{}
	for _, r := range rz.Routes {
		if r.RemoteName != "" && r.RemoteName != c.ns.Name() {
			routed[r.RemoteName] = true
		}
	}
	return 2*(len(routed)+1) > size
}

// Drain implements broker.ClusterDrainer: the heartbeat says the node is
// draining, at once, so that the other nodes stop sending clients here.
//
// The last node of a cluster has nowhere to send its clients: it neither
// drains nor releases (without the other nodes JetStream has no quorum to
// write to, and waiting for one would only delay the shutdown).
func (c *Cluster) Drain(ctx context.Context) {
	c.ops.draining.Store(true)
	kv := c.ops.nodes.Load()
	if kv == nil || len(c.liveOthers()) == 0 {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, HeartbeatEvery)
	defer cancel()
	if _, err := (*kv).Put(hctx, c.origin, c.heartbeatValue()); err != nil {
		c.log.Warn("cluster: could not tell the other nodes that this node is leaving; they may send clients here for 3 s", "error", err)
	}
	c.stepDown(ctx)
}

// stepDown hands the leadership of the streams this node leads to another
// replica, so that the writes of the clients it sends away (their claims
// on the owners bucket) do not wait for an election after it stops.
func (c *Cluster) stepDown(ctx context.Context) {
	if !c.ready.Load() {
		return
	}
	lister := c.js.ListStreams(ctx)
	var led []string
	for info := range lister.Info() {
		if c.ownStream(info.Config.Name) && info.Cluster != nil && info.Cluster.Leader == c.opt.Node && info.Config.Replicas > 1 {
			led = append(led, info.Config.Name)
		}
	}
	for _, name := range led {
		if _, err := c.nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+name, nil); err != nil {
			c.log.Info("cluster: a stream's leadership was not handed over; its replicas elect a new leader once this node stops", "stream", name, "error", err)
		}
	}
}

// releaseWorkers bounds the owners bucket deletes Release makes at once.
const releaseWorkers = 32

// Release implements broker.ClusterDrainer: it deletes this node's claims
// on client identifiers, each at the revision this node wrote (a claim
// made since by another node stays).
func (c *Cluster) Release(ctx context.Context) {
	c.mu.Lock()
	owned := c.owned
	c.owned = make(map[string]uint64)
	c.mu.Unlock()
	if len(owned) == 0 || c.owners == nil || !c.ready.Load() || len(c.liveOthers()) == 0 {
		return
	}
	type claim struct {
		id  string
		rev uint64
	}
	work := make(chan claim)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range min(releaseWorkers, len(owned)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cl := range work {
				if err := c.owners.Delete(ctx, ownerKey(cl.id), jetstream.LastRevision(cl.rev)); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	for id, rev := range owned {
		work <- claim{id, rev}
	}
	close(work)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		c.log.Info("cluster: some client identifiers were not released (claimed since by another node, or no quorum): those clients' new nodes ask this one to take them over", "released", int64(len(owned))-n, "not_released", n)
	} else {
		c.log.Info("cluster: released this node's client identifiers", "count", len(owned))
	}
}

// leave deletes this node's heartbeat, so that the others see it gone at
// once, after a Drain. Close calls it before it disconnects from NATS.
func (c *Cluster) leave() {
	c.ops.drops.Wait() // the wills of connections that ended here are deleted first
	kv := c.ops.nodes.Load()
	if kv == nil || !c.ops.draining.Load() || len(c.liveOthers()) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	(*kv).Delete(ctx, c.origin)
}

// Status implements broker.ClusterReporter.
func (c *Cluster) Status(ctx context.Context) (*broker.ClusterStatus, error) {
	st := &broker.ClusterStatus{Cluster: c.opt.Name, Node: c.opt.Node, Ready: c.ready.Load(), Nodes: c.Nodes(), Streams: []broker.ClusterStream{}}
	if c.ns != nil {
		c.metaStatus(st)
	}
	if !st.Ready {
		st.Errors = append(st.Errors, "JetStream has not formed (is a majority of the nodes up?)")
		return st, nil
	}
	lister := c.js.ListStreams(ctx)
	for info := range lister.Info() {
		if !c.ownStream(info.Config.Name) {
			continue
		}
		cs := broker.ClusterStream{Name: info.Config.Name, Replicas: info.Config.Replicas, Messages: info.State.Msgs, Bytes: info.State.Bytes, Peers: []broker.ClusterReplica{}}
		if ci := info.Cluster; ci != nil {
			cs.Leader = ci.Leader
			if ci.Leader != "" {
				cs.Peers = append(cs.Peers, broker.ClusterReplica{Name: ci.Leader, Leader: true, Current: true})
			}
			for _, r := range ci.Replicas {
				cs.Peers = append(cs.Peers, replica(r.Name, r.Current, r.Offline, r.Active, r.Lag))
				if !r.Current {
					cs.Lagging++
				}
			}
		}
		if cs.Leader == "" {
			cs.Error = "no leader: a majority of its replicas is not reachable"
		}
		st.Streams = append(st.Streams, cs)
	}
	if err := lister.Err(); err != nil {
		st.Errors = append(st.Errors, "listing the JetStream streams: "+err.Error())
	}
	slices.SortFunc(st.Streams, func(a, b broker.ClusterStream) int { return strings.Compare(a.Name, b.Name) })
	return st, nil
}

// ownStream reports whether a stream holds this cluster's state (its
// streams, and its buckets' streams).
func (c *Cluster) ownStream(name string) bool {
	return strings.HasPrefix(name, "GANNET_"+c.opt.Name+"_") || strings.HasPrefix(name, "KV_gannet_"+c.opt.Name+"_")
}

// metaStatus adds the JetStream meta group, as the embedded server knows
// it, and the JetStream servers that send no heartbeat as dead nodes.
func (c *Cluster) metaStatus(st *broker.ClusterStatus) {
	jsz, err := c.ns.Jsz(&server.JSzOptions{})
	if err != nil || jsz.Meta == nil {
		return
	}
	st.MetaLeader = jsz.Meta.Leader
	if st.MetaLeader != "" {
		st.MetaPeers = append(st.MetaPeers, broker.ClusterReplica{Name: st.MetaLeader, Leader: true, Current: true})
	}
	known := map[string]bool{}
	for _, n := range st.Nodes {
		known[n.Name] = true
	}
	for _, r := range jsz.Meta.Replicas {
		if r.Name == st.MetaLeader {
			continue
		}
		st.MetaPeers = append(st.MetaPeers, replica(r.Name, r.Current, r.Offline, r.Active, r.Lag))
		if !known[r.Name] && r.Name != "" {
			known[r.Name] = true
			st.Nodes = append(st.Nodes, broker.ClusterNode{Name: r.Name})
		}
	}
	slices.SortFunc(st.Nodes, func(a, b broker.ClusterNode) int { return strings.Compare(a.Name, b.Name) })
}

func replica(name string, current, offline bool, active time.Duration, lag uint64) broker.ClusterReplica {
	return broker.ClusterReplica{Name: name, Current: current, Offline: offline, ActiveSeconds: active.Seconds(), Lag: lag}
}
