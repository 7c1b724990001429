package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCheckConfig runs gannet check-config with args.
func runCheckConfig(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newCheckConfigCmd()
	cmd.SetArgs(args)
	var out, errOut strings.Builder
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func writeConfig(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckConfig(t *testing.T) {
	// The example file is valid.
	out, errOut, err := runCheckConfig(t, "../../gannet.example.yaml")
	if err != nil || out != "../../gannet.example.yaml: OK\n" || errOut != "" {
		t.Errorf("example: err %v, stdout %q, stderr %q", err, out, errOut)
	}

	// Every error, with its line, and a failure (exit status 1).
	bad := writeConfig(t, "gannet.yaml", "limits:\n  max_inflight: 0\n  max_inflite: 3\nmqtt:\n  maximum_qos: high\n")
	out, errOut, err = runCheckConfig(t, bad)
	if !errors.Is(err, errCheckFailed) || out != "" {
		t.Errorf("bad file: err %v, stdout %q", err, out)
	}
	want := bad + ":2: limits.max_inflight: must be between 1 and 65535\n" +
		bad + ":3: limits.max_inflite: unknown key (did you mean max_inflight?)\n" +
		bad + ":5: mqtt.maximum_qos: want an integer, got \"high\"\n" +
		bad + ": 3 errors\n"
	if errOut != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, want)
	}

	// A file Build rejects (a password file that is not there).
	missing := writeConfig(t, "gannet.yaml", "auth:\n  password_file: /nonexistent/passwd\n")
	_, errOut, err = runCheckConfig(t, missing)
	if !errors.Is(err, errCheckFailed) || !strings.HasPrefix(errOut, missing+":2: auth.password_file: ") {
		t.Errorf("missing password file: err %v, stderr %q", err, errOut)
	}

	// A mosquitto.conf: warnings for what it ignores, then OK, and --print
	// shows the translation.
	conf := writeConfig(t, "mosquitto.conf", "listener 1883\nallow_anonymous true\nbridge_protocol_version mqttv50\n")
	out, errOut, err = runCheckConfig(t, "--print", conf)
	if err != nil {
		t.Fatalf("mosquitto.conf: %v: %s", err, errOut)
	}
	if errOut != "warning: "+conf+":3: unsupported option \"bridge_protocol_version\": a bridge option outside a connection section\n" {
		t.Errorf("stderr %q", errOut)
	}
	if !strings.HasPrefix(out, conf+": OK\n") || !strings.Contains(out, "address: :1883") || !strings.Contains(out, "anonymous: allow") {
		t.Errorf("stdout %q", out)
	}

	// A file that cannot be read.
	_, errOut, err = runCheckConfig(t, filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, errCheckFailed) || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: err %v, stderr %q", err, errOut)
	}
}
