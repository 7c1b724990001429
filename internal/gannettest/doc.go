// Package gannettest is the shared harness of Gannet's end-to-end tests:
// a broker started in process on 127.0.0.1:0, closed when the test ends
// (RunBroker, Serve); a raw MQTT connection that writes packets or bytes and
// reads packets with a deadline (Conn, Dial, ConnectRaw); paho.mqtt.golang
// (3.1, 3.1.1) and paho.golang (5.0) clients (Paho, Paho5); and the
// Debian mosquitto tools (Tool, StartTool, RunMosquitto), which fail the
// test under CI when missing and skip it elsewhere (Require); and a test
// certificate authority for TLS (NewPKI). Its subpackage
// clustertest starts a cluster of N nodes; it is apart so that the tests
// that need no cluster do not link NATS.
//
// Only tests import it: it is internal to the module, and
// TestOnlyTestsImport fails when a non-test file does. It imports broker,
// so the tests of package broker itself (the internal ones) cannot use it;
// broker_test can, as can every package above broker in the dependency
// order (admin, bridge, cluster, config, webhook, cmd/gannet) and client_test.
//
// Every wait has a deadline, WaitFor unless the caller gives one, so no test
// can hang; helpers report failures with t.Fatalf from the test goroutine
// and never panic.
package gannettest
