package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

const overrideFile = `
listeners:
  - name: main
    address: 127.0.0.1:1883
limits:
  max_inflight: 10
  max_queued: 100
  connect_timeout: 5s
store:
  data_dir: /from/file
admin:
  token: file-token
`

// parseFlags registers the flags on a new set and parses args.
func parseFlags(t *testing.T, args ...string) *Flags {
	t.Helper()
	fs := pflag.NewFlagSet("gannet", pflag.ContinueOnError)
	fl := AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fl
}

// Defaults < file < environment < flags.
func TestPrecedence(t *testing.T) {
	path := writeFile(t, t.TempDir(), "gannet.yaml", overrideFile)
	env := []string{
		"GANNET_LIMITS_MAX_INFLIGHT=20",
		"GANNET_LIMITS_MAX_QUEUED=200",
		"GANNET_ADMIN_TOKEN=env-token",
		"GANNET_STORE_DATA_DIR=/from/env",
		"GANNET_LIMITS_MEMORY_LIMIT=512MiB",
		"HOME=/root", "GANNET_TEST_LOG=1", // not ours
	}
	fl := parseFlags(t, "--config", path, "--max-inflight", "30", "--listen", "0.0.0.0:1883", "--listen", "0.0.0.0:1884", "--log-level=debug")
	if fl.Config != path {
		t.Fatalf("--config = %q", fl.Config)
	}
	f, err := Resolve(fl.Config, env, fl)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key       string
		got, want any
	}{
		{"limits.max_inflight (flag)", f.Limits.MaxInflight, 30},
		{"limits.max_queued (env)", f.Limits.MaxQueued, 200},
		{"limits.connect_timeout (file)", f.Limits.ConnectTimeout, 5 * time.Second},
		{"limits.max_packet_size (default)", f.Limits.MaxPacketSize, Size(1 << 20)},
		{"limits.memory_limit (env)", f.Limits.MemoryLimit, Size(512 << 20)},
		{"admin.token (env)", f.Admin.Token, "env-token"},
		{"store.data_dir (env)", f.Store.DataDir, "/from/env"},
		{"logging.level (flag)", f.Logging.Level, "debug"},
		{"listeners (flag)", len(f.Listeners), 2},
		{"listeners[1].address (flag)", f.Listeners[1].Address, "0.0.0.0:1884"},
		{"listeners[0].name (flag replaced)", f.Listeners[0].Name, ""},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
		}
	}

	// Without the flags, the environment wins over the file.
	f, err = Resolve(path, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Limits.MaxInflight != 20 || f.Listeners[0].Name != "main" {
		t.Errorf("max_inflight %d, listener %q: want 20 and main", f.Limits.MaxInflight, f.Listeners[0].Name)
	}
	// Without a file, the defaults.
	f, err = Resolve("", nil, parseFlags(t))
	if err != nil {
		t.Fatal(err)
	}
	equalFiles(t, f, Default())
}

// Values from the environment and flags are checked, and errors name the
// variable or the flag.
func TestOverrideErrors(t *testing.T) {
	f := Default()
	err := f.ApplyEnv([]string{
		"GANNET_LIMITS_MAX_INFLIGHT=lots",
		"GANNET_LIMITS_MAX_INFLITE=3",
		"GANNET_STORE_FSYNC=sometimes",
		"GANNET_LISTENERS_3_ADDRESS=:1883",
		"GANNET_LISTENERS_0_PORT=1883",
		"GANNET_MQTT_RETAIN_AVAILABLE=perhaps",
		"GANNET_BENCH_ADDR=127.0.0.1:1883", // not a configuration variable
	})
	sameLines(t, lines(t, err), []string{
		`$GANNET_LIMITS_MAX_INFLIGHT: limits.max_inflight: want an integer, got "lots"`,
		`$GANNET_LIMITS_MAX_INFLITE: unknown variable (did you mean GANNET_LIMITS_MAX_INFLIGHT?)`,
		`$GANNET_LISTENERS_0_PORT: listeners: unknown variable: want GANNET_LISTENERS_<index>_<KEY>, KEY one of ADDRESS, ANONYMOUS, FIRST_BYTE_TIMEOUT, HANDSHAKE_TIMEOUT, IDENTITY_AS_USERNAME, MAX_CONNECTIONS, MAX_PENDING_PER_SOURCE, MOUNT_POINT, NAME, ORIGIN_PATTERNS, PATH, PROXY_FROM, PROXY_PROTOCOL, REQUIRE_AUTH, SOCKET_MODE, SUBJECT_AS_USERNAME, TLS_CA_FILE, TLS_CERT_FILE, TLS_CLIENT_AUTH, TLS_CRL_FILE, TLS_KEY_FILE, TLS_MIN_VERSION, TYPE`,
		`$GANNET_MQTT_RETAIN_AVAILABLE: mqtt.retain_available: want true or false, got "perhaps"`,
		`$GANNET_LISTENERS_3_ADDRESS: listeners[3]: there are 1 listeners; add new ones with the next index, 1`,
	})
	// The value that parsed is set, and Validate says where it came from.
	sameLines(t, lines(t, f.Validate()), []string{
		`$GANNET_STORE_FSYNC: store.fsync: "sometimes" is not always, interval or never`,
	})

	fs := pflag.NewFlagSet("gannet", pflag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	AddFlags(fs)
	if err := fs.Parse([]string{"--max-inflight", "lots"}); err == nil || !strings.Contains(err.Error(), `invalid argument "lots" for "--max-inflight" flag: want an integer`) {
		t.Errorf("bad flag value: %v", err)
	}
	fl := parseFlags(t, "--max-inflight", "0", "--fsync", "often")
	f = Default()
	if err := fl.Apply(f); err != nil {
		t.Fatal(err)
	}
	sameLines(t, lines(t, f.Validate()), []string{
		`--fsync: store.fsync: "often" is not always, interval or never`,
		`--max-inflight: limits.max_inflight: must be between 1 and 65535`,
	})
}

// Listeners are set and added through the environment by index.
func TestEnvListeners(t *testing.T) {
	f := Default()
	err := f.ApplyEnv([]string{
		"GANNET_LISTENERS_2_TYPE=ws",
		"GANNET_LISTENERS_1_ADDRESS=0.0.0.0:8883",
		"GANNET_LISTENERS_1_TYPE=tls",
		"GANNET_LISTENERS_1_TLS_CERT_FILE=/c.pem",
		"GANNET_LISTENERS_1_TLS_KEY_FILE=/k.pem",
		"GANNET_LISTENERS_2_ADDRESS=0.0.0.0:8080",
		"GANNET_LISTENERS_2_PROXY_FROM=10.0.0.0/8, 192.168.0.0/16",
		"GANNET_LISTENERS_0_ANONYMOUS=deny",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []Listener{
		{Type: "tcp", Address: "127.0.0.1:1883", Anonymous: "deny"},
		{Type: "tls", Address: "0.0.0.0:8883", Anonymous: "default", TLS: TLS{CertFile: "/c.pem", KeyFile: "/k.pem"}},
		{Type: "ws", Address: "0.0.0.0:8080", Anonymous: "default", ProxyFrom: []string{"10.0.0.0/8", "192.168.0.0/16"}},
	}
	if len(f.Listeners) != len(want) {
		t.Fatalf("listeners %+v", f.Listeners)
	}
	for i := range want {
		if got := f.Listeners[i]; got.Type != want[i].Type || got.Address != want[i].Address || got.Anonymous != want[i].Anonymous ||
			got.TLS != want[i].TLS || strings.Join(got.ProxyFrom, ",") != strings.Join(want[i].ProxyFrom, ",") {
			t.Errorf("listeners[%d] = %+v, want %+v", i, got, want[i])
		}
	}
}

// Every key has a variable.
func TestEnvNames(t *testing.T) {
	for _, name := range []string{"LIMITS_MAX_INFLIGHT", "ADMIN_TOKEN", "STORE_DATA_DIR", "AUTH_HTTP_AUTH_URL", "AUTH_SCRAM_USERS_FILE", "SYS_INTERVAL", "MQTT_SHARE_STRATEGY"} {
		if _, ok := envLeaves[name]; !ok {
			t.Errorf("no variable GANNET_%s", name)
		}
	}
	if len(envLeaves) != len(fileLeaves) {
		t.Errorf("%d variables for %d keys: two keys share a name", len(envLeaves), len(fileLeaves))
	}
}
