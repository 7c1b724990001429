package main

import (
	"strings"
	"testing"
)

// Issue 11: gannet check-config mosquitto.conf lists every option it
// translates differently, with its line and the reason; the options it
// translates with Mosquitto's meaning pass without a word.
func TestCheckConfigMosquittoDifferences(t *testing.T) {
	conf := writeConfig(t, "mosquitto.conf", `per_listener_settings false
allow_anonymous true
max_inflight_messages 20
message_size_limit 1000
allow_zero_length_clientid false
check_retain_source true
upgrade_outgoing_qos true
maximum_qos 2
persistence false
persistence_file broker.db
memory_limit 100000000
auto_id_prefix dev-
persistent_client_expiration 14d
include_dir /etc/mosquitto/conf.d
listener 1883 127.0.0.1
max_qos 1
mount_point site/
listener 8080 127.0.0.1
protocol websockets
max_topic_alias 5
`)
	out, errOut, err := runCheckConfig(t, conf)
	if err != nil || out != conf+": OK\n" {
		t.Fatalf("err %v, stdout %q, stderr %q", err, out, errOut)
	}
	for _, want := range []string{
		conf + `:11: memory_limit: above it Gannet refuses new connections`,
		conf + `:12: unsupported option "auto_id_prefix": assigned client identifiers are Gannet's own`,
		conf + `:13: unsupported option "persistent_client_expiration": persistent 3.1.1 sessions of named clients never expire`,
		conf + `:14: unsupported option "include_dir": the files in that directory are not read`,
		conf + `:16: applied to every listener: Gannet has one value for all, Mosquitto one per listener`,
		conf + `:20: applied to every listener`,
	} {
		if !strings.Contains(errOut, "warning: "+want) {
			t.Errorf("no warning %q in:\n%s", want, errOut)
		}
	}
	if n := strings.Count(errOut, "warning: "); n != 6 {
		t.Errorf("%d warnings, want 6 (options translated with Mosquitto's meaning get none):\n%s", n, errOut)
	}
}
