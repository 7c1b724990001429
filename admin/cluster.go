package admin

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gannet-mqtt/gannet/broker"
)

// The cluster, seen from this node: GET /api/v1/cluster, the cluster
// metrics, and the node label on every metric of a clustered node.

// clusterTimeout bounds how long a request or a scrape waits for
// JetStream's answers about the streams.
const clusterTimeout = 3 * time.Second

func (a *Admin) clusterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/cluster", a.getCluster)
	methodNotAllowed(mux, "/api/v1/cluster", "GET")
}

// getCluster answers broker.ClusterStatus, or 404 on a single node.
func (a *Admin) getCluster(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), clusterTimeout)
	defer cancel()
	st, err := a.srv.ClusterStatus(ctx)
	switch {
	case errors.Is(err, broker.ErrNotClustered):
		writeError(w, http.StatusNotFound, "this broker is a single node: it is not part of a cluster")
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "cluster status: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// nodeGatherer adds the label node="NAME" to every metric of a clustered
// node, so that the nodes' scrapes can be told apart once aggregated.
type nodeGatherer struct {
	g    prometheus.Gatherer
	node string
}

func (n nodeGatherer) Gather() ([]*dto.MetricFamily, error) {
	fams, err := n.g.Gather()
	name, value := "node", n.node
	for _, f := range fams {
		for _, m := range f.Metric {
			m.Label = append(m.Label, &dto.LabelPair{Name: &name, Value: &value})
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
	}
	return fams, err
}

// clusterCollector exports this node's view of the cluster; the peer
// label names the node described (node names the one scraped).
type clusterCollector struct {
	srv                                   *broker.Server
	ready, alive, clients, lag, current   *prometheus.Desc
	streamLeader, streamLagging, draining *prometheus.Desc
}

func newClusterCollector(srv *broker.Server) *clusterCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &clusterCollector{
		srv:           srv,
		ready:         d("gannet_cluster_jetstream_ready", "1 once JetStream has formed and this node reads the shared state."),
		alive:         d("gannet_cluster_node_alive", "1 while a node's heartbeats arrive.", "peer"),
		draining:      d("gannet_cluster_node_draining", "1 while a node shuts down and moves its clients away.", "peer"),
		clients:       d("gannet_cluster_node_clients", "Clients connected to a node at its last heartbeat.", "peer"),
		streamLeader:  d("gannet_cluster_stream_has_leader", "1 when a JetStream stream of the shared state has a leader (it takes writes).", "stream"),
		streamLagging: d("gannet_cluster_stream_replicas_lagging", "Replicas of a stream that are not current.", "stream"),
		lag:           d("gannet_cluster_replica_lag", "Operations a replica of a stream is behind its leader.", "stream", "peer"),
		current:       d("gannet_cluster_replica_current", "1 when a replica of a stream is caught up with its leader.", "stream", "peer"),
	}
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.ready, c.alive, c.draining, c.clients, c.streamLeader, c.streamLagging, c.lag, c.current} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	st, err := c.srv.ClusterStatus(ctx)
	if err != nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	gauge(c.ready, b(st.Ready))
	for _, n := range st.Nodes {
		gauge(c.alive, b(n.Alive), n.Name)
		gauge(c.draining, b(n.Draining), n.Name)
		gauge(c.clients, float64(n.Clients), n.Name)
	}
	for _, s := range st.Streams {
		gauge(c.streamLeader, b(s.Leader != ""), s.Name)
		gauge(c.streamLagging, float64(s.Lagging), s.Name)
		for _, r := range s.Peers {
			gauge(c.lag, float64(r.Lag), s.Name, r.Name)
			gauge(c.current, b(r.Current), s.Name, r.Name)
		}
	}
}
