package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gannet-mqtt/gannet/broker"
)

// gannet cluster status asks a node's admin listener for its view of the
// cluster (GET /api/v1/cluster):
//
//	gannet cluster status --admin http://127.0.0.1:8080
func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect a cluster of Gannet nodes",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newClusterStatusCmd())
	return cmd
}

func newClusterStatusCmd() *cobra.Command {
	var adminURL, token string
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the nodes, their clients and JetStream's health, as one node sees them",
		Long: `Ask a node's admin listener (admin.address) for the cluster's state: each node
with its MQTT address, whether its heartbeats arrive, its clients; JetStream's
meta leader; each stream and bucket of the shared state with its leader and
replicas, and how far each replica lags.

The token comes from --token or GANNET_ADMIN_TOKEN. The exit status is 1 when
the node cannot be asked, 2 when the cluster is degraded (a node dead,
JetStream not formed, a stream without a leader or with lagging replicas).`,
		Example:       "  gannet cluster status --admin http://127.0.0.1:8080\n  GANNET_ADMIN_TOKEN=secret gannet cluster status --admin http://n1:8080 --json",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if token == "" {
				token = os.Getenv("GANNET_ADMIN_TOKEN")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			st, raw, err := fetchClusterStatus(ctx, adminURL, token)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "gannet cluster status:", err)
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				out.Write(raw)
			} else {
				printClusterStatus(out, st)
			}
			if problems := clusterProblems(st); len(problems) > 0 {
				if !asJSON {
					fmt.Fprintln(out, "\nDegraded: "+strings.Join(problems, "; "))
				}
				return errDegraded
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&adminURL, "admin", "http://127.0.0.1:8080", "the node's admin listener (http://host:port)")
	f.StringVar(&token, "token", "", "the admin token (default: $GANNET_ADMIN_TOKEN)")
	f.BoolVar(&asJSON, "json", false, "print the JSON answer as it is")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the answer")
	return cmd
}

// errDegraded makes main exit with status 2.
var errDegraded = exitError{code: 2, err: errors.New("the cluster is degraded")}

// exitError carries a process exit status.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }

func fetchClusterStatus(ctx context.Context, adminURL, token string) (*broker.ClusterStatus, []byte, error) {
	u := strings.TrimSuffix(adminURL, "/")
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/api/v1/cluster", nil)
	if err != nil {
		return nil, nil, fmt.Errorf("admin address %q: %w", adminURL, err)
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach the admin listener at %s: %w (is admin.address set on that node?)", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the answer of %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(body, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized {
			hint = " (give the admin token with --token or GANNET_ADMIN_TOKEN)"
		}
		return nil, nil, fmt.Errorf("%s answered %s: %s%s", u, resp.Status, e.Error, hint)
	}
	var st broker.ClusterStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, nil, fmt.Errorf("%s: unreadable answer: %w", u, err)
	}
	return &st, body, nil
}

func printClusterStatus(w io.Writer, st *broker.ClusterStatus) {
	ready := "JetStream ready"
	if !st.Ready {
		ready = "JetStream NOT formed"
	}
	leader := st.MetaLeader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(w, "Cluster %s, as node %s sees it: %s, meta leader %s\n\n", st.Cluster, st.Node, ready, leader)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tSTATE\tCLIENTS\tLAST HEARTBEAT")
	now := time.Now()
	for _, n := range st.Nodes {
		state := "dead"
		switch {
		case n.Alive && n.Draining:
			state = "draining"
		case n.Alive:
			state = "alive"
		}
		name := n.Name
		if n.Self {
			name += " (this node)"
		}
		hb := "never"
		if !n.LastHeartbeat.IsZero() {
			hb = fmt.Sprintf("%s ago", now.Sub(n.LastHeartbeat).Round(100*time.Millisecond))
		}
		addr := n.Address
		if addr == "" {
			addr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", name, addr, state, n.Clients, hb)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tREPLICAS\tLEADER\tMESSAGES\tREPLICAS (lag)")
	for _, s := range st.Streams {
		var peers []string
		for _, r := range s.Peers {
			p := r.Name
			switch {
			case r.Leader:
				p += " leader"
			case r.Offline:
				p += fmt.Sprintf(" offline (%d)", r.Lag)
			case !r.Current:
				p += fmt.Sprintf(" lagging (%d)", r.Lag)
			default:
				p += fmt.Sprintf(" current (%d)", r.Lag)
			}
			peers = append(peers, p)
		}
		leader := s.Leader
		if leader == "" {
			leader = "NONE"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", s.Name, s.Replicas, leader, s.Messages, strings.Join(peers, ", "))
	}
	tw.Flush()
	for _, e := range st.Errors {
		fmt.Fprintln(w, "error:", e)
	}
}

// clusterProblems lists what makes the cluster degraded.
func clusterProblems(st *broker.ClusterStatus) []string {
	var out []string
	if !st.Ready {
		out = append(out, "JetStream has not formed")
	}
	for _, n := range st.Nodes {
		if !n.Alive {
			out = append(out, "node "+n.Name+" is dead")
		}
	}
	for _, s := range st.Streams {
		if s.Leader == "" {
			out = append(out, "stream "+s.Name+" has no leader")
		} else if s.Lagging > 0 {
			out = append(out, fmt.Sprintf("stream %s has %d lagging replicas", s.Name, s.Lagging))
		}
	}
	return append(out, st.Errors...)
}
