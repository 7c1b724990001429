package admin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// BridgeInfo describes one bridge to another broker, for
// GET /api/v1/bridges and /metrics.
type BridgeInfo struct {
	Name     string `json:"name"`
	State    string `json:"state"` // connected, connecting, disconnected, idle (lazy), stopped
	Address  string `json:"address,omitempty"`
	Queued   int    `json:"queued"`   // messages waiting for the remote
	Sent     uint64 `json:"sent"`     // messages the remote acknowledged
	Received uint64 `json:"received"` // messages from the remote made durable here
	Dropped  uint64 `json:"dropped"`
	Connects uint64 `json:"connects"`
}

// ErrNoBridge is what Bridges.RestartBridge returns for an unknown name.
var ErrNoBridge = errors.New("admin: no such bridge")

// Bridges is what the admin needs of the broker's bridges; the gannet
// command adapts the bridge package's Manager to it.
type Bridges interface {
	BridgeInfos() []BridgeInfo
	// RestartBridge drops a bridge's remote connection and connects it
	// again; an error wrapping ErrNoBridge for an unknown name.
	RestartBridge(name string) error
}

// BridgeList is the body of GET /api/v1/bridges.
type BridgeList struct {
	Bridges []BridgeInfo `json:"bridges"`
}

func (a *Admin) bridgeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/bridges", a.listBridges)
	methodNotAllowed(mux, "/api/v1/bridges", "GET")
	mux.HandleFunc("POST /api/v1/bridges/{name}/restart", a.restartBridge)
	methodNotAllowed(mux, "/api/v1/bridges/{name}/restart", "POST")
}

func (a *Admin) listBridges(w http.ResponseWriter, _ *http.Request) {
	list := BridgeList{Bridges: []BridgeInfo{}}
	if a.opts.Bridges != nil {
		list.Bridges = append(list.Bridges, a.opts.Bridges.BridgeInfos()...)
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *Admin) restartBridge(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := ErrNoBridge
	if a.opts.Bridges != nil {
		err = a.opts.Bridges.RestartBridge(name)
	}
	switch {
	case errors.Is(err, ErrNoBridge):
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown bridge %q", name))
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	a.log.Info("admin: restarted bridge", "bridge", name, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "restarted": true})
}

// bridgeCollector exports each bridge's state and counters.
type bridgeCollector struct {
	b                                         Bridges
	up, queued, sent, received, dropped, conn *prometheus.Desc
}

func newBridgeCollector(b Bridges) *bridgeCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"bridge"}, nil)
	}
	return &bridgeCollector{
		b:        b,
		up:       d("gannet_bridge_connected", "1 when the bridge is connected to its remote broker, 0 otherwise."),
		queued:   d("gannet_bridge_queued_messages", "Messages waiting in the bridge's local session for the remote."),
		sent:     d("gannet_bridge_messages_sent_total", "Messages the remote broker acknowledged (QoS 0: sent)."),
		received: d("gannet_bridge_messages_received_total", "Messages from the remote broker published locally."),
		dropped:  d("gannet_bridge_messages_dropped_total", "Messages not forwarded: QoS 0 while disconnected, refused or too large."),
		conn:     d("gannet_bridge_connects_total", "Connections made to the remote broker."),
	}
}

func (c *bridgeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.queued, c.sent, c.received, c.dropped, c.conn} {
		ch <- d
	}
}

func (c *bridgeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, in := range c.b.BridgeInfos() {
		up := 0.0
		if in.State == "connected" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, in.Name)
		ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(in.Queued), in.Name)
		ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(in.Sent), in.Name)
		ch <- prometheus.MustNewConstMetric(c.received, prometheus.CounterValue, float64(in.Received), in.Name)
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(in.Dropped), in.Name)
		ch <- prometheus.MustNewConstMetric(c.conn, prometheus.CounterValue, float64(in.Connects), in.Name)
	}
}
