package config

import (
	"slices"
	"strings"
	"testing"
)

const clusterFile = `
store:
  data_dir: /var/lib/gannet
cluster:
  name: gannet
  node: n1
  listen: 0.0.0.0:6222
  routes: [nats://n2:6222, nats://n3:6222]
  replicas: 3
`

// The cluster section, its flags and GANNET_CLUSTER_* reach the cluster's
// options; without it no cluster is started.
func TestClusterSection(t *testing.T) {
	path := writeFile(t, t.TempDir(), "gannet.yaml", clusterFile)
	f, err := Resolve(path, nil, parseFlags(t))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := f.Build()
	if err != nil {
		t.Fatal(err)
	}
	o := rt.Cluster
	if o == nil {
		t.Fatal("a cluster section built no cluster options")
	}
	if o.Name != "gannet" || o.Node != "n1" || o.Listen != "0.0.0.0:6222" || o.Replicas != 3 ||
		!slices.Equal(o.Routes, []string{"nats://n2:6222", "nats://n3:6222"}) || o.DataDir != "/var/lib/gannet" {
		t.Fatalf("cluster options %+v", o)
	}

	env := []string{"GANNET_CLUSTER_REPLICAS=1", "GANNET_CLUSTER_NODE=envnode"}
	fl := parseFlags(t, "--cluster-name", "c2", "--cluster-routes", "nats://a:1,nats://b:2", "--cluster-routes", "nats://c:3",
		"--cluster-listen", "127.0.0.1:7222", "--node-name", "flagnode", "--nats-url", "", "--cluster-replicas", "5")
	f, err = Resolve(path, env, fl)
	if err != nil {
		t.Fatal(err)
	}
	if f.Cluster.Name != "c2" || f.Cluster.Node != "flagnode" || f.Cluster.Replicas != 5 || f.Cluster.Listen != "127.0.0.1:7222" ||
		!slices.Equal(f.Cluster.Routes, []string{"nats://a:1", "nats://b:2", "nats://c:3"}) {
		t.Fatalf("flags: cluster %+v", f.Cluster)
	}
	f, err = Resolve(path, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Cluster.Replicas != 1 || f.Cluster.Node != "envnode" {
		t.Fatalf("env: cluster %+v", f.Cluster)
	}

	f, err = Resolve("", nil, parseFlags(t))
	if err != nil {
		t.Fatal(err)
	}
	if rt, err := f.Build(); err != nil || rt.Cluster != nil {
		t.Fatalf("no cluster configured: options %+v, %v", rt.Cluster, err)
	}
}

func TestClusterErrors(t *testing.T) {
	f := Default()
	f.Cluster = Cluster{Name: "a.b", Node: "x y", Replicas: 7, Listen: "nowhere"}
	err := f.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"cluster.name", "cluster.node", "cluster.replicas", "cluster.listen"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
