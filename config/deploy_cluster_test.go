package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// The three-node compose file's node configurations are valid, with the
// admin listener and token from the environment as compose.yaml gives them; each names
// its node, routes to the two others, and advertises the MQTT port
// compose.yaml publishes for it. The advertise option and its flag reach
// the cluster's options.
func TestDeployClusterConfigs(t *testing.T) {
	dir := filepath.Join("..", "deploy", "cluster")
	var compose struct {
		Services map[string]struct {
			Hostname string   `yaml:"hostname"`
			Volumes  []string `yaml:"volumes"`
			Ports    []string `yaml:"ports"`
		} `yaml:"services"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	if len(compose.Services) != 3 {
		t.Fatalf("compose.yaml has %d services, want 3", len(compose.Services))
	}
	env := []string{"GANNET_ADMIN_ADDRESS=0.0.0.0:8080", "GANNET_ADMIN_TOKEN=from-the-environment"}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("n%d", i)
		svc, ok := compose.Services[name]
		if !ok || svc.Hostname != name || !slices.Contains(svc.Volumes, "./"+name+".yaml:/etc/gannet/gannet.yaml:ro") {
			t.Errorf("compose.yaml service %s: %+v", name, svc)
		}
		f, err := Resolve(filepath.Join(dir, name+".yaml"), env, parseFlags(t))
		if err != nil {
			t.Fatalf("%s.yaml: %v", name, err)
		}
		rt, err := f.Build()
		if err != nil {
			t.Fatalf("%s.yaml: %v", name, err)
		}
		o := rt.Cluster
		if o == nil || o.Node != name || o.Name != "demo" || o.Replicas != 3 || len(o.Routes) != 2 || slices.Contains(o.Routes, "nats://"+name+":6222") {
			t.Fatalf("%s.yaml: cluster options %+v", name, o)
		}
		port := fmt.Sprint(1882 + i)
		if o.Advertise != "127.0.0.1:"+port || !slices.ContainsFunc(svc.Ports, func(p string) bool { return strings.HasPrefix(p, "127.0.0.1:"+port+":") }) {
			t.Errorf("%s advertises %q; compose publishes %v", name, o.Advertise, svc.Ports)
		}
		if rt.Admin.Token != "from-the-environment" || rt.Admin.Address != "0.0.0.0:8080" {
			t.Errorf("%s: admin %q token %q, want the environment's", name, rt.Admin.Address, rt.Admin.Token)
		}
	}

	fl := parseFlags(t, "--cluster-name", "c", "--cluster-advertise", "mqtt.example:1883")
	f, err := Resolve("", []string{"GANNET_STORE_DATA_DIR=/tmp/x"}, fl)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := f.Build()
	if err != nil {
		t.Fatal(err)
	}
	if rt.Cluster == nil || rt.Cluster.Advertise != "mqtt.example:1883" {
		t.Errorf("--cluster-advertise: %+v", rt.Cluster)
	}
	bad := writeFile(t, t.TempDir(), "bad.yaml", "store:\n  data_dir: /x\ncluster:\n  name: c\n  advertise: no-port\n")
	if _, err := Resolve(bad, nil, parseFlags(t)); err == nil || !strings.Contains(err.Error(), "cluster.advertise") {
		t.Errorf("advertise without a port: %v, want an error naming cluster.advertise", err)
	}
}
