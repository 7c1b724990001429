package admin_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gannet-mqtt/gannet/admin"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// statusCluster is an in-memory broker.Cluster that describes a cluster of
// three nodes, n2 dead (broker.ClusterReporter).
type statusCluster struct{ in broker.Inbound }

func (c *statusCluster) Start(in broker.Inbound) error { c.in = in; return nil }
func (c *statusCluster) Route(p *packet.Publish) error { return nil }
func (c *statusCluster) Subscribe(string)              {}
func (c *statusCluster) Unsubscribe(string)            {}
func (c *statusCluster) Close() error                  { return nil }
func (c *statusCluster) NodeName() string              { return "n1" }
func (c *statusCluster) Nodes() []broker.ClusterNode   { return clusterNodes(c.in) }
func (c *statusCluster) Status(context.Context) (*broker.ClusterStatus, error) {
	return &broker.ClusterStatus{
		Cluster: "demo", Node: "n1", Ready: true, Nodes: clusterNodes(c.in), MetaLeader: "n3",
		Streams: []broker.ClusterStream{{
			Name: "KV_gannet_demo_owners", Replicas: 3, Leader: "n3", Messages: 12, Lagging: 1,
			Peers: []broker.ClusterReplica{
				{Name: "n3", Leader: true, Current: true},
				{Name: "n1", Current: true},
				{Name: "n2", Offline: true, Lag: 42, ActiveSeconds: 9},
			},
		}},
	}, nil
}

func clusterNodes(in broker.Inbound) []broker.ClusterNode {
	hb := time.Now().Add(-time.Second)
	return []broker.ClusterNode{
		{Name: "n1", Address: "10.0.0.1:1883", Alive: true, Self: true, LastHeartbeat: hb, Clients: in.(broker.LocalNode).Connections()},
		{Name: "n2", Address: "10.0.0.2:1883", LastHeartbeat: hb.Add(-time.Minute), Clients: 4},
		{Name: "n3", Address: "10.0.0.3:1883", Alive: true, LastHeartbeat: hb, Clients: 9},
	}
}

func runClustered(t *testing.T) *testBroker {
	return runBroker(t, func(o *broker.Options) { o.Cluster = &statusCluster{} })
}

// GET /api/v1/cluster answers the node's view of the cluster; a single
// node answers 404 in JSON; only GET is allowed.
func TestClusterAPI(t *testing.T) {
	b := runClustered(t)
	s := runAdmin(t, b.Server, admin.Options{Token: "tok"})
	connect(t, b.Addr, "on-n1")
	r := s.request("GET", "/api/v1/cluster", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/v1/cluster: %d %s", r.Status, r.Body)
	}
	var st broker.ClusterStatus
	r.JSON(t, &st)
	if st.Cluster != "demo" || st.Node != "n1" || !st.Ready || st.MetaLeader != "n3" || len(st.Nodes) != 3 || len(st.Streams) != 1 {
		t.Fatalf("status %+v", st)
	}
	if n := st.Nodes[0]; !n.Self || !n.Alive || n.Clients != 1 || n.Address != "10.0.0.1:1883" || n.LastHeartbeat.IsZero() {
		t.Errorf("this node: %+v", n)
	}
	if n := st.Nodes[1]; n.Alive || n.Clients != 4 {
		t.Errorf("dead node: %+v", n)
	}
	if p := st.Streams[0].Peers[2]; !p.Offline || p.Lag != 42 || p.ActiveSeconds != 9 {
		t.Errorf("offline replica: %+v", p)
	}
	if r := s.requestAuth("GET", "/api/v1/cluster", nil, ""); r.Status != http.StatusUnauthorized {
		t.Errorf("without the token: %d", r.Status)
	}
	if r := s.request("DELETE", "/api/v1/cluster", nil); r.Status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", r.Status)
	}

	single := runAdmin(t, runBroker(t, nil).Server, admin.Options{})
	r = single.request("GET", "/api/v1/cluster", nil)
	var e struct{ Error string }
	r.JSON(t, &e)
	if r.Status != http.StatusNotFound || e.Error == "" {
		t.Errorf("single node: %d %s, want 404 with an error", r.Status, r.Body)
	}
}

// On a clustered node every metric carries node="NAME", so that the
// nodes' scrapes stay apart once aggregated; the cluster's own metrics
// name the node described in "peer". A single node adds no label.
func TestClusterMetricsLabelledWithNode(t *testing.T) {
	b := runClustered(t)
	s := runAdmin(t, b.Server, admin.Options{})
	connect(t, b.Addr, "m-on-n1")
	sc := s.scrape()
	for name, f := range sc {
		for _, m := range f.Metric {
			if !hasLabels(m, []string{"node", "n1"}) {
				t.Errorf("%s %v: no node=\"n1\" label", name, m.Label)
			}
		}
	}
	sc.check(t, 1, "gannet_connections", "node", "n1")
	sc.check(t, 1, "gannet_cluster_jetstream_ready")
	sc.check(t, 1, "gannet_cluster_node_alive", "peer", "n3")
	sc.check(t, 0, "gannet_cluster_node_alive", "peer", "n2")
	sc.check(t, 9, "gannet_cluster_node_clients", "peer", "n3")
	sc.check(t, 42, "gannet_cluster_replica_lag", "stream", "KV_gannet_demo_owners", "peer", "n2")
	sc.check(t, 0, "gannet_cluster_replica_current", "stream", "KV_gannet_demo_owners", "peer", "n2")
	sc.check(t, 1, "gannet_cluster_stream_replicas_lagging", "stream", "KV_gannet_demo_owners")

	single := runAdmin(t, runBroker(t, nil).Server, admin.Options{})
	ssc := single.scrape()
	for name, f := range ssc {
		for _, m := range f.Metric {
			if hasLabelName(m.Label, "node") {
				t.Errorf("single node: %s has a node label", name)
			}
		}
	}
	if _, ok := ssc["gannet_cluster_node_alive"]; ok {
		t.Error("single node exports cluster metrics")
	}
}

func hasLabelName[L interface{ GetName() string }](labels []L, name string) bool {
	for _, l := range labels {
		if l.GetName() == name {
			return true
		}
	}
	return false
}

// The dashboard of a clustered node shows the Cluster panel: each node
// with its state, address and clients, and the streams with their
// replicas.
func TestDashboardClusterPanel(t *testing.T) {
	ctx := newBrowser(t)
	b := runClustered(t)
	s := runAdmin(t, b.Server, admin.Options{})
	connect(t, b.Addr, "dash-on-n1")
	console := watchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	waitJS(t, ctx, "the dashboard", `!document.getElementById("app").hidden`, 5*time.Second)
	waitJS(t, ctx, "the cluster panel", `!document.getElementById("cluster-card").hidden`, 5*time.Second)
	waitJS(t, ctx, "three nodes with their states",
		`[...document.querySelectorAll("#cluster-nodes-body tr[data-node]")].map(r => r.dataset.node + "=" + r.dataset.state).join() === "n1=alive,n2=dead,n3=alive"`, 5*time.Second)
	waitJS(t, ctx, "n3's address and clients",
		`(() => { const r = document.querySelector('#cluster-nodes-body tr[data-node="n3"]'); return r && r.textContent.includes("10.0.0.3:1883") && r.children[3].textContent === "9"; })()`, 5*time.Second)
	waitJS(t, ctx, "the summary", `document.getElementById("cluster-summary").textContent.startsWith("2 of 3 nodes alive")`, 5*time.Second)
	waitJS(t, ctx, "the owners bucket with its lagging replica",
		`(() => { const r = document.querySelector('#cluster-streams-body tr[data-stream="KV_gannet_demo_owners"]'); return r && r.textContent.includes("n2 offline (42)") && r.textContent.includes("n3 leader"); })()`, 5*time.Second)
	if errs := console.errors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
