package config

import (
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/cluster"
)

// cluster.election_timeout, --cluster-election-timeout and
// GANNET_CLUSTER_ELECTION_TIMEOUT reach cluster.Options.ElectionTimeout;
// without any, the cluster's default applies.
func TestClusterElectionTimeout(t *testing.T) {
	path := writeFile(t, t.TempDir(), "gannet.yaml", clusterFile+"  election_timeout: 2s\n")
	build := func(env []string, args ...string) time.Duration {
		t.Helper()
		f, err := Resolve(path, env, parseFlags(t, args...))
		if err != nil {
			t.Fatal(err)
		}
		rt, err := f.Build()
		if err != nil {
			t.Fatal(err)
		}
		return rt.Cluster.ElectionTimeout
	}
	if got := build(nil); got != 2*time.Second {
		t.Errorf("file: election timeout %v, want 2s", got)
	}
	if got := build([]string{"GANNET_CLUSTER_ELECTION_TIMEOUT=3s"}); got != 3*time.Second {
		t.Errorf("env: election timeout %v, want 3s", got)
	}
	if got := build(nil, "--cluster-election-timeout", "750ms"); got != 750*time.Millisecond {
		t.Errorf("flag: election timeout %v, want 750ms", got)
	}
	path = writeFile(t, t.TempDir(), "gannet.yaml", clusterFile)
	if got := build(nil); got != cluster.DefaultElectionTimeout {
		t.Errorf("default: election timeout %v, want %v", got, cluster.DefaultElectionTimeout)
	}

	for _, bad := range []time.Duration{100 * time.Millisecond, time.Minute, -time.Second} {
		f := Default()
		f.Store.DataDir = "/var/lib/gannet"
		f.Cluster = Cluster{Name: "c", ElectionTimeout: bad}
		err := f.Validate()
		if err == nil || !strings.Contains(err.Error(), "cluster.election_timeout") {
			t.Errorf("election timeout %v: error %v, want one at cluster.election_timeout", bad, err)
		}
	}
}
