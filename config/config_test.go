package config

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/listener"
	"github.com/gannet-mqtt/gannet/topic"
)

// Default matches broker.DefaultOptions and the command line's defaults,
// and builds.
func TestDefault(t *testing.T) {
	f := Default()
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Build(); err != nil {
		t.Fatal(err)
	}
	rt, err := f.build(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := broker.DefaultOptions()
	got := rt.BrokerOptions
	if got.Logger == nil || got.PeerIdentity == nil || got.PeerSubject == nil {
		t.Error("Logger, PeerIdentity or PeerSubject not set")
	}
	got.Logger, got.PeerIdentity, got.PeerSubject = nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("broker options\n got %+v\nwant %+v", got, want)
	}
	if len(rt.Listeners) != 1 {
		t.Fatalf("%d listeners, want 1", len(rt.Listeners))
	}
	l := rt.Listeners[0]
	if l.Config.Type != listener.TypeTCP || l.Config.Address != "127.0.0.1:1883" ||
		l.ListenerOptions.Anonymous != broker.AnonymousDefault || l.Config.Name != "tcp://127.0.0.1:1883" ||
		l.ListenerOptions.Name != l.Config.Name {
		t.Errorf("listener %+v", l)
	}
	if rt.Store != (Store{Type: "pebble", DataDir: "./data", Fsync: "always", FsyncInterval: time.Second}) {
		t.Errorf("store %+v", rt.Store)
	}
	if !reflect.DeepEqual(rt.Admin, Admin{}) {
		t.Errorf("admin %+v, want off", rt.Admin)
	}
	if !rt.Logger.Enabled(t.Context(), slog.LevelInfo) || rt.Logger.Enabled(t.Context(), slog.LevelDebug) {
		t.Error("logger is not at level info")
	}
}

// Default written as YAML loads back to Default.
func TestDefaultRoundTrip(t *testing.T) {
	b, err := Default().YAML()
	if err != nil {
		t.Fatal(err)
	}
	f := mustLoad(t, "default.yaml", string(b))
	equalFiles(t, f, Default())
	if file, format := f.Source(); file != "default.yaml" || format != "yaml" {
		t.Errorf("Source() = %q, %q", file, format)
	}
}

// everyOption is a configuration with every key set to a value that is
// not its default, except the HTTP hook URLs, which cannot go with the
// password and ACL files (see everyOptionHTTP). %[1]s is a directory with
// the files it names.
const everyOption = `
listeners:
  - name: plain
    type: tcp
    address: 0.0.0.0:11883
    anonymous: allow
    max_connections: 10
    identity_as_username: true
    require_auth: true
    mount_point: site/
    proxy_protocol: true
    proxy_from: [10.0.0.0/8, 192.0.2.1]
    handshake_timeout: 3s
    first_byte_timeout: 2s
    max_pending_per_source: 16
  - name: secure
    type: tls
    address: 0.0.0.0:18883
    anonymous: deny
    identity_as_username: true
    tls:
      cert_file: %[1]s/cert.pem
      key_file: %[1]s/key.pem
      ca_file: %[1]s/cert.pem
      client_auth: required
      min_version: "1.3"
      crl_file: %[1]s/crl.pem
  - name: web
    type: wss
    address: 0.0.0.0:18443
    tls: {cert_file: "%[1]s/cert.pem", key_file: "%[1]s/key.pem"}
    subject_as_username: true
    path: /ws
    origin_patterns: ["*.example.com"]
    proxy_from:
      - 10.1.0.0/16
  - name: sock
    type: unix
    address: %[1]s/gannet.sock
    socket_mode: "0600"
store:
  type: memory
  data_dir: /var/lib/gannet
  fsync: interval
  fsync_interval: 250ms
limits:
  connect_timeout: 3s
  max_packet_size: 256KiB
  max_payload_size: 64KiB
  max_user_properties: 64
  max_inflight: 100
  max_queued: 500
  max_queued_bytes: 8MiB
  max_queued_bytes_total: 256MiB
  max_retained: 10
  max_retained_bytes: 1MiB
  max_retained_per_user: 5
  max_retained_bytes_per_user: 64KiB
  queue_qos0: true
  max_connections: 1000
  max_topic_length: 1024
  max_topic_levels: 16
  max_keep_alive: 300s
  max_client_id_length: 128
  write_buffer_limit: 1MiB
  write_buffer_hard_limit: 32MiB
  connection_rate: 2.5
  connection_burst: 5
  publish_rate: 100
  publish_burst: 200
  publish_byte_rate: 1MB
  publish_rate_disconnect: true
  max_subscriptions: 50
  memory_limit: 512MiB
  max_session_expiry: 24h
  max_anonymous_session_expiry: 10m
mqtt:
  maximum_qos: 1
  retain_available: false
  wildcard_subscriptions: false
  shared_subscriptions: false
  subscription_identifiers: false
  topic_alias_maximum: 20
  receive_maximum: 20
  response_information: responses/
  server_reference: other.example.com:1883
  share_strategy: random
  validate_payload_format: false
  allow_empty_client_id: false
  upgrade_outgoing_qos: true
  delayed_publish:
    enabled: true
    max_delay: 1h
    max_messages: 50
  rewrite:
    - action: publish
      filter: "x/#"
      regex: "^x/(.+)$"
      replace: "y/$1"
auth:
  password_file: %[1]s/passwd
  acl_file: %[1]s/acl
  acl_read_at_delivery: true
  acl_user_rules_first: true
  check_retain_source: true
  bad_credentials_not_authorized: true
  http:
    timeout: 2s
    cache_size: 10
    cache_ttl: 1m
  scram:
    users_file: %[1]s/scram
  login:
    max_checks: 8
    max_checks_per_source: 2
    source_failure_rate: 0.5
    source_failure_burst: 5
    user_failure_rate: 0.1
    user_failure_burst: 3
  session_ownership: any
logging:
  level: debug
  format: json
admin:
  address: 127.0.0.1:9090
  token: s3cret
sys:
  interval: 1m
metrics:
  topics: ["sensors/#", "a/+/b"]
  max_topics: 5
`

const everyOptionHTTP = `
auth:
  http:
    auth_url: http://127.0.0.1:9999/auth
    acl_url: https://auth.example.com/acl
  jwt:
    from: username
    algorithms: [HS512, RS256]
    secret: jwt-secret
    public_key_file: %[1]s/jwt.pem
    jwks_url: http://127.0.0.1:9/jwks
    jwks_refresh: 2m
    jwks_min_refresh: 1m
    acl_claim: perms
    required_claims: {iss: "https://idp.example.com", sub: "%%u"}
    disconnect_on_expiry: false
    leeway: 5s
admin:
  address: 0.0.0.0:9090
  allowed_hosts: [broker.lan]
  insecure_no_token: true
cluster:
  name: c1
  node: n1
  listen: 127.0.0.1:7222
  routes: [nats://127.0.0.1:7223]
  replicas: 1
  nats_url: nats://127.0.0.1:4222
  sync_always: true
  election_timeout: 2s
  advertise: n1.example:1883
`

// writeEveryOption writes the files everyOption names and returns the
// configuration.
func writeEveryOption(t *testing.T) (dir, content string) {
	dir = t.TempDir()
	testCert(t, dir)
	testPasswordFile(t, dir)
	writeFile(t, dir, "acl", "topic read public/#\nuser alice\ntopic readwrite alice/#\n")
	writeFile(t, dir, "scram", "# SCRAM users\nalice:wonderland\n\nbob: pass:word\n")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "jwt.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	return dir, fmt.Sprintf(everyOption, dir)
}

// A file that sets every key to something else than its default loads to
// those values, in the File, the broker options and the listeners.
func TestEveryOption(t *testing.T) {
	dir, content := writeEveryOption(t)
	f := mustLoad(t, "every.yaml", content)
	h := mustLoad(t, "http.yaml", fmt.Sprintf(everyOptionHTTP, dir))

	// Every key is covered: each differs from its default in one of them.
	def := reflect.ValueOf(Default()).Elem()
	fv, hv := reflect.ValueOf(f).Elem(), reflect.ValueOf(h).Elem()
	for _, l := range fileLeaves {
		d := def.FieldByIndex(l.index).Interface()
		if reflect.DeepEqual(fv.FieldByIndex(l.index).Interface(), d) && reflect.DeepEqual(hv.FieldByIndex(l.index).Interface(), d) {
			t.Errorf("%s is not set to a non-default value by the test", l.path)
		}
	}
	dl := reflect.ValueOf(defaultListener())
	for _, l := range listenerLeaves {
		set := false
		for i := range f.Listeners {
			if !reflect.DeepEqual(reflect.ValueOf(f.Listeners[i]).FieldByIndex(l.index).Interface(), dl.FieldByIndex(l.index).Interface()) {
				set = true
			}
		}
		if !set {
			t.Errorf("listeners[].%s is not set to a non-default value by the test", l.path)
		}
	}

	var logs bytes.Buffer
	rt, err := f.build(&logs)
	if err != nil {
		t.Fatal(err)
	}
	got := rt.BrokerOptions
	if _, ok := got.Authenticator.(*auth.PasswordFile); !ok {
		t.Errorf("Authenticator %T, want *auth.PasswordFile", got.Authenticator)
	}
	if u, ok := got.Authorizer.(interface{ Unwrap() auth.Authorizer }); !ok {
		t.Errorf("Authorizer %T, want auth.ReadAtDelivery(*auth.ACL)", got.Authorizer)
	} else if _, ok := u.Unwrap().(*auth.ACL); !ok {
		t.Errorf("Authorizer wraps %T, want *auth.ACL", u.Unwrap())
	}
	if len(got.EnhancedAuth) != 1 || got.EnhancedAuth[0].Method() != "SCRAM-SHA-256" {
		t.Errorf("EnhancedAuth %v, want SCRAM-SHA-256", got.EnhancedAuth)
	}
	if got.Logger != rt.Logger || got.PeerIdentity == nil || got.PeerSubject == nil {
		t.Error("Logger, PeerIdentity or PeerSubject not set")
	}
	got.Authenticator, got.Authorizer, got.EnhancedAuth, got.Logger, got.PeerIdentity, got.PeerSubject = nil, nil, nil, nil, nil, nil
	want := broker.Options{
		ConnectTimeout:              3 * time.Second,
		MaxPacketSize:               256 << 10,
		MaxUserProperties:           64,
		MaxInflight:                 100,
		MaxQueued:                   500,
		MaxQueuedBytes:              8 << 20,
		MaxRetained:                 10,
		MaxRetainedBytes:            1 << 20,
		MaxRetainedPerUser:          5,
		MaxRetainedBytesPerUser:     64 << 10,
		QueueQoS0:                   true,
		MaxConnections:              1000,
		MaxTopicLength:              1024,
		MaxTopicLevels:              16,
		MaxKeepAlive:                300,
		MaxClientIDLength:           128,
		WriteBufferLimit:            1 << 20,
		SysInterval:                 time.Minute,
		Version:                     "dev",
		ConnectionRate:              2.5,
		ConnectionBurst:             5,
		PublishRate:                 100,
		PublishBurst:                200,
		PublishByteRate:             1000000,
		PublishRateDisconnect:       true,
		MaxSubscriptions:            50,
		WriteBufferHardLimit:        32 << 20,
		MemoryLimit:                 512 << 20,
		MaximumQoS:                  1,
		TopicAliasMaximum:           20,
		ReceiveMaximum:              20,
		MaxSessionExpiry:            86400,
		ResponseInformation:         "responses/",
		ServerReference:             "other.example.com:1883",
		ShareStrategy:               topic.Random,
		RetainAvailable:             false,
		WildcardSubscriptions:       false,
		SharedSubscriptions:         false,
		SubscriptionIdentifiers:     false,
		ValidatePayloadFormat:       false,
		LoginLimits:                 broker.LoginLimits{MaxChecks: 8, MaxChecksPerSource: 2, SourceFailureRate: 0.5, SourceFailureBurst: 5, UserFailureRate: 0.1, UserFailureBurst: 3},
		SessionOwnership:            broker.SessionOwnerAny,
		MaxPayloadSize:              64 << 10,
		RefuseEmptyClientID:         true,
		UpgradeOutgoingQoS:          true,
		CheckRetainSource:           true,
		BadCredentialsNotAuthorized: true,

		MaxAnonymousSessionExpiry: 600,

		MaxQueuedBytesTotal: 256 << 20,
		DelayedPublish:      true,
		MaxDelay:            time.Hour,
		MaxDelayed:          50,
		Rewrite:             []broker.RewriteRule{{Action: broker.RewritePublish, Filter: "x/#", Regex: regexp.MustCompile("^x/(.+)$"), Replace: "y/$1"}},
		TopicMetrics:        []string{"sensors/#", "a/+/b"},
		MaxTopicMetrics:     5,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("broker options\n got %+v\nwant %+v", got, want)
	}
	// ... and every broker option that a file sets is set to something
	// else than its default.
	bd, bw := reflect.ValueOf(broker.DefaultOptions()), reflect.ValueOf(want)
	for i := range bw.NumField() {
		switch name := bw.Type().Field(i).Name; name {
		case "Store", "Version", "Logger", "PeerIdentity", "PeerSubject", "Authenticator", "Authorizer", "EnhancedAuth", "Cluster":
		default:
			if reflect.DeepEqual(bw.Field(i).Interface(), bd.Field(i).Interface()) {
				t.Errorf("broker option %s is left at its default by the test", name)
			}
		}
	}

	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	wantListeners := []RuntimeListener{
		{
			Config: listener.Config{Name: "plain", Type: listener.TypeTCP, Address: "0.0.0.0:11883",
				ProxyProtocol: true, HandshakeTimeout: 3 * time.Second, FirstByteTimeout: 2 * time.Second, MaxPendingPerSource: 16,
				ProxyFrom: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}},
			ListenerOptions: broker.ListenerOptions{Name: "plain", Anonymous: broker.AnonymousAllow, MaxConnections: 10, IdentityAsUsername: true,
				RequireAuthentication: true, MountPoint: "site/"},
		},
		{
			Config: listener.Config{Name: "secure", Type: listener.TypeTLS, Address: "0.0.0.0:18883",
				TLS: listener.TLSConfig{CertFile: cert, KeyFile: key, CAFile: cert, ClientAuth: listener.ClientAuthRequired, MinVersion: "1.3", CRLFile: filepath.Join(dir, "crl.pem")}},
			ListenerOptions: broker.ListenerOptions{Name: "secure", Anonymous: broker.AnonymousDeny, IdentityAsUsername: true},
		},
		{
			Config: listener.Config{Name: "web", Type: listener.TypeWSS, Address: "0.0.0.0:18443",
				TLS:  listener.TLSConfig{CertFile: cert, KeyFile: key},
				Path: "/ws", OriginPatterns: []string{"*.example.com"},
				ProxyFrom: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
			ListenerOptions: broker.ListenerOptions{Name: "web", SubjectAsUsername: true},
		},
		{
			Config: listener.Config{Name: "sock", Type: listener.TypeUnix, Address: filepath.Join(dir, "gannet.sock"),
				SocketMode: fs.FileMode(0o600)},
			ListenerOptions: broker.ListenerOptions{Name: "sock"},
		},
	}
	for i := range rt.Listeners {
		if rt.Listeners[i].Config.Logger != rt.Logger {
			t.Errorf("listener %d: logger not set", i)
		}
		rt.Listeners[i].Config.Logger = nil
	}
	if !reflect.DeepEqual(rt.Listeners, wantListeners) {
		t.Errorf("listeners\n got %+v\nwant %+v", rt.Listeners, wantListeners)
	}
	if rt.Store != (Store{Type: "memory", DataDir: "/var/lib/gannet", Fsync: "interval", FsyncInterval: 250 * time.Millisecond}) {
		t.Errorf("store %+v", rt.Store)
	}
	if !reflect.DeepEqual(rt.Admin, Admin{Address: "127.0.0.1:9090", Token: "s3cret"}) {
		t.Errorf("admin %+v", rt.Admin)
	}
	rt.Logger.Debug("hello")
	if !strings.HasPrefix(logs.String(), `{"time":`) || !strings.Contains(logs.String(), `"level":"DEBUG"`) {
		t.Errorf("logger does not write JSON at debug level: %q", logs.String())
	}

	// The HTTP hook serves both decisions when both URLs are set.
	hr, err := h.build(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// JWT comes first, then the hook (chained inside the JWT).
	if j, ok := hr.BrokerOptions.Authenticator.(*auth.JWT); !ok {
		t.Errorf("Authenticator %T, want *auth.JWT", hr.BrokerOptions.Authenticator)
	} else {
		j.Close()
	}
	if ja, ok := hr.BrokerOptions.Authorizer.(*auth.JWTAuthorizer); !ok {
		t.Errorf("Authorizer %T, want *auth.JWTAuthorizer", hr.BrokerOptions.Authorizer)
	} else if _, ok := ja.Next.(*auth.HTTPHook); !ok {
		t.Errorf("JWTAuthorizer.Next %T, want *auth.HTTPHook", ja.Next)
	}

	// Written out and read back, it is the same configuration.
	b, err := f.YAML()
	if err != nil {
		t.Fatal(err)
	}
	equalFiles(t, mustLoad(t, "again.yaml", string(b)), f)
}

// The SCRAM users file authenticates its users with their passwords.
func TestSCRAMUsersFile(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "scram", "alice:wonderland\nbob: pass:word\n")
	s, err := loadSCRAMUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	for user, pw := range map[string]string{"alice": "wonderland", "bob": "pass:word"} {
		if !scramLogin(t, s, user, pw) {
			t.Errorf("%s cannot log in with %q", user, pw)
		}
		if scramLogin(t, s, user, pw+"x") {
			t.Errorf("%s logs in with a wrong password", user)
		}
	}
	bad := writeFile(t, dir, "bad", "alice:a\nnocolon\n:x\nalice:b\ncarol:\n")
	_, err = loadSCRAMUsers(bad)
	sameLines(t, lines(t, err), []string{
		bad + ":2: want user:password",
		bad + ":3: empty user name",
		bad + ":4: user \"alice\" already defined on line 1",
		bad + ":5: user \"carol\": empty password",
	})
}

func scramLogin(t *testing.T, s *auth.SCRAM, user, pw string) bool {
	t.Helper()
	c := &auth.SCRAMClient{User: user, Password: pw}
	ex := s.Start(&auth.Client{})
	first, _, err := ex.Step(c.First())
	if err != nil {
		return false
	}
	final, err := c.Final(first)
	if err != nil {
		t.Fatal(err)
	}
	last, done, err := ex.Step(final)
	if err != nil || !done {
		return false
	}
	return c.Verify(last) == nil
}

// gannet.example.yaml loads and builds as it is, and says what Default is.
func TestExampleFile(t *testing.T) {
	f, err := Load("../gannet.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.build(io.Discard); err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Listeners[0].Name = "default"
	want.Listeners[0].HandshakeTimeout = listener.DefaultHandshakeTimeout
	want.Listeners[0].FirstByteTimeout = listener.DefaultFirstByteTimeout
	want.Listeners[0].MaxPendingPerSource = listener.DefaultMaxPendingPerSource
	want.Listeners[0].ProxyFrom = []string{}
	equalFiles(t, f, want)

	// Every key is in the example, set or in a comment.
	b, err := os.ReadFile("../gannet.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	walkKeys(reflect.TypeFor[File](), "", func(path, key string) {
		if !bytes.Contains(b, []byte(key+":")) {
			t.Errorf("%s is not in gannet.example.yaml", path)
		}
	})
}

// Build reads the files the configuration names and reports every bad
// one, at the key that names it.
func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	passwd := writeFile(t, dir, "passwd", "alice\nbob:plaintext\n")
	acl := writeFile(t, dir, "acl", "topic sideways a/#\n")
	scram := writeFile(t, dir, "scram", "nocolon\n")
	notPEM := writeFile(t, dir, "ca.pem", "not a certificate\n")
	content := fmt.Sprintf(`auth:
  password_file: %[1]s
  acl_file: %[2]s
  scram:
    users_file: %[3]s
listeners:
  - type: tls
    address: 127.0.0.1:8883
    tls:
      cert_file: %[4]s/missing.pem
      key_file: %[4]s/missing.key
      ca_file: %[5]s
      client_auth: optional
`, passwd, acl, scram, dir, notPEM)
	f := mustLoad(t, "g.yaml", content)
	_, err := f.build(io.Discard)
	got := lines(t, err)
	want := []string{
		`g.yaml:2: auth.password_file: auth: ` + passwd + `:1: syntax error: want username:hash`,
		`g.yaml:2: auth.password_file: auth: ` + passwd + `:2: user "bob": bad password hash`,
		`g.yaml:3: auth.acl_file: auth: ` + acl + `:1: syntax error`,
		`g.yaml:5: auth.scram.users_file: ` + scram + `:1: want user:password`,
		`g.yaml:10: listeners[0].tls.cert_file: open ` + dir + `/missing.pem: no such file or directory`,
		`g.yaml:12: listeners[0].tls.ca_file: ` + notPEM + ` holds no PEM certificate`,
	}
	if len(got) != len(want) {
		sameLines(t, got, want)
		return
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d:\n got %s\nwant %s...", i, got[i], want[i])
		}
	}
	// A missing file.
	f = mustLoad(t, "g.yaml", "auth:\n  acl_file: "+dir+"/nope\n")
	_, err = f.build(io.Discard)
	sameLines(t, lines(t, err), []string{`g.yaml:2: auth.acl_file: auth: acl file: open ` + dir + `/nope: no such file or directory`})
}
