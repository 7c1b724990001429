package broker_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/golang-jwt/jwt/v5"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

const (
	jwtSecret = "test-secret-with-enough-bytes-32b"
	jwtIssuer = "https://idp.test"
)

// Test RSA keys, made once: 2048-bit generation is slow under -race.
var (
	jwtKeyOnce sync.Once
	jwtRSA     [3]*rsa.PrivateKey
)

func jwtRSAKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	jwtKeyOnce.Do(func() {
		for i := range jwtRSA {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			jwtRSA[i] = k
		}
	})
	return jwtRSA[i]
}

// pubPEM returns the PEM text of k's public key.
func pubPEM(t testing.TB, k *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// claims for user, valid from a minute ago for a minute, from jwtIssuer.
func claims(user string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": user, "iss": jwtIssuer, "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Minute).Unix()}
}

func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwtOptions accept HS256 (jwtSecret) and RS256 (key 0 as a PEM file),
// require iss and sub = the user name, with no leeway.
func jwtOptions(t testing.TB) auth.JWTOptions {
	t.Helper()
	o := auth.DefaultJWTOptions()
	o.Algorithms = []string{"HS256", "RS256"}
	o.Secret = []byte(jwtSecret)
	o.PublicKeyFile = filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(o.PublicKeyFile, pubPEM(t, jwtRSAKey(t, 0)), 0o600); err != nil {
		t.Fatal(err)
	}
	o.RequiredClaims = map[string]string{"iss": jwtIssuer, "sub": "%u"}
	o.Leeway = 0
	return o
}

// jwtBroker runs a broker with JWT authentication chained before a
// password file (alice/wonder), and the JWT ACL claim before authz (nil:
// everything else allowed).
func jwtBroker(t testing.TB, o auth.JWTOptions, authz auth.Authorizer) (*testBroker, *auth.JWT) {
	t.Helper()
	pw := auth.NewPasswordFile()
	pw.Params = auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	if err := pw.Set("alice", []byte("wonder")); err != nil {
		t.Fatal(err)
	}
	o.Next = pw
	j, err := auth.NewJWT(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	opts := testOptions()
	opts.LoginLimits = broker.LoginLimits{} // the tests fail many logins from one address
	opts.Authenticator = j
	opts.Authorizer = &auth.JWTAuthorizer{Next: authz}
	return runBroker(t, opts), j
}

// jwtConnect connects with the token as password and returns the CONNACK
// code; a refusal must close the connection.
func jwtConnect(t *testing.T, addr, id, user, token string, version byte) (*rawClient, packet.ReasonCode) {
	t.Helper()
	connect := connectRaw
	if version == packet.V5 {
		connect = v5ConnectRaw
	}
	c, ack := connect(t, addr, login(id, user, token, version))
	if ack.ReasonCode != packet.Success {
		c.expectClosed(waitFor)
	}
	return c, ack.ReasonCode
}

// Tokens over the wire, 3.1.1 and 5.0: valid ones get in; forged, expired,
// not yet valid, wrong-algorithm (none, HS256 keyed with the RSA public
// key) tokens get 0x86 (3.1.1: 4); a wrong issuer or a sub that is not the
// user name gets 0x87 (3.1.1: 5), and the connection is closed
// [MQTT-3.1.4-2] [MQTT-3.2.2-7] (5.0) [MQTT-3.2.2-5] (3.1.1). A password
// that is not a JWT goes on to the password file.
func TestJWTAuthentication(t *testing.T) {
	o := jwtOptions(t)
	b, j := jwtBroker(t, o, nil)
	rsaOnly := o
	rsaOnly.Algorithms, rsaOnly.Secret = []string{"RS256"}, nil
	brsa, _ := jwtBroker(t, rsaOnly, nil)
	key := jwtRSAKey(t, 0)
	pubPEMBytes := pubPEM(t, key)
	other := jwtRSAKey(t, 1)

	expired := claims("bob")
	expired["exp"] = time.Now().Add(-10 * time.Second).Unix()
	future := claims("bob")
	future["nbf"] = time.Now().Add(time.Hour).Unix()
	issuedLater := claims("bob")
	issuedLater["iat"] = time.Now().Add(time.Hour).Unix()
	wrongIss := claims("bob")
	wrongIss["iss"] = "https://evil.test"
	noSub := claims("bob")
	delete(noSub, "sub")
	listAud := claims("bob")
	listAud["iss"] = []any{"https://x.test", jwtIssuer}

	cases := []struct {
		name  string
		b     *testBroker
		user  string
		token string
		want  packet.ReasonCode
	}{
		{"HS256", b, "bob", sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", claims("bob")), packet.Success},
		{"RS256", b, "bob", sign(t, jwt.SigningMethodRS256, key, "", claims("bob")), packet.Success},
		{"RS256 on the RS256-only broker", brsa, "bob", sign(t, jwt.SigningMethodRS256, key, "", claims("bob")), packet.Success},
		{"required claim in a list", b, "bob", sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", listAud), packet.Success},
		{"password file behind JWT", b, "alice", "wonder", packet.Success},
		{"password file, wrong password", b, "alice", "nope", packet.BadUserNameOrPassword},
		{"forged HS256", b, "bob", sign(t, jwt.SigningMethodHS256, []byte("another secret"), "", claims("bob")), packet.BadUserNameOrPassword},
		{"RS256 by another key", b, "bob", sign(t, jwt.SigningMethodRS256, other, "", claims("bob")), packet.BadUserNameOrPassword},
		{"tampered payload", b, "bob", tamper(sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", claims("bob"))), packet.BadUserNameOrPassword},
		{"expired", b, "bob", sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", expired), packet.BadUserNameOrPassword},
		{"not yet valid", b, "bob", sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", future), packet.BadUserNameOrPassword},
		{"issued in the future", b, "bob", sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", issuedLater), packet.BadUserNameOrPassword},
		{"alg none", b, "bob", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims("bob")), packet.BadUserNameOrPassword},
		{"HS256 keyed with the RSA public key", b, "bob", sign(t, jwt.SigningMethodHS256, pubPEMBytes, "", claims("bob")), packet.BadUserNameOrPassword},
		{"HS256 keyed with the RSA public key, RS256-only broker", brsa, "bob", sign(t, jwt.SigningMethodHS256, pubPEMBytes, "", claims("bob")), packet.BadUserNameOrPassword},
		{"RS384 not configured", b, "bob", sign(t, jwt.SigningMethodRS384, key, "", claims("bob")), packet.BadUserNameOrPassword},
		{"wrong issuer", b, "bob", sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", wrongIss), packet.NotAuthorized},
		{"missing sub", b, "bob", sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", noSub), packet.NotAuthorized},
		{"sub is another user", b, "carol", sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", claims("bob")), packet.NotAuthorized},
	}
	n := 0
	for _, tc := range cases {
		for _, v := range []byte{packet.V311, packet.V5} {
			t.Run(fmt.Sprintf("%s/v%d", tc.name, v), func(t *testing.T) {
				n++
				_, rc := jwtConnect(t, tc.b.Addr, fmt.Sprintf("c%d", n), tc.user, tc.token, v)
				if rc != tc.want {
					t.Fatalf("CONNACK %v (%#x), want %v (%#x)", rc, byte(rc), tc.want, byte(tc.want))
				}
			})
		}
	}

	// 5.0 allows a password without a user name: the token alone gets in
	// (with no sub requirement), where an anonymous client would not.
	noUser := o
	noUser.RequiredClaims = map[string]string{"iss": jwtIssuer}
	bn, _ := jwtBroker(t, noUser, nil)
	if _, rc := jwtConnect(t, bn.Addr, "tok-only", "", sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", claims("x")), packet.V5); rc != packet.Success {
		t.Errorf("5.0 token without user name: CONNACK %v, want success", rc)
	}
	if _, rc := jwtConnect(t, bn.Addr, "forged-only", "", sign(t, jwt.SigningMethodHS256, []byte("bad"), "", claims("x")), packet.V5); rc != packet.BadUserNameOrPassword {
		t.Errorf("5.0 forged token without user name: CONNACK %v, want 0x86", rc)
	}

	// The counters saw the refusals by reason.
	stats := map[string]uint64{}
	for _, s := range j.Stats() {
		stats[s.Reason] = s.Count
	}
	for reason, min := range map[string]uint64{"accepted": 6, "not_jwt": 4, "signature": 8, "expired": 2, "not_yet_valid": 4, "algorithm": 4, "claims": 6} {
		if stats[reason] < min {
			t.Errorf("stats[%s] = %d, want at least %d (%v)", reason, stats[reason], min, stats)
		}
	}

	// paho (3.1.1) and paho.golang (5.0) as clients.
	good := sign(t, jwt.SigningMethodRS256, key, "", claims("bob"))
	pahoClient(t, b.Addr, "paho-jwt", 4, func(o *mqtt.ClientOptions) { o.SetUsername("bob").SetPassword(good) })
	po := mqtt.NewClientOptions().AddBroker("tcp://" + b.Addr).SetClientID("paho-expired").SetAutoReconnect(false).
		SetProtocolVersion(4).SetUsername("bob").SetPassword(sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", expired))
	pc := mqtt.NewClient(po)
	if tok := pc.Connect(); tok.WaitTimeout(waitFor) && tok.Error() == nil {
		pc.Disconnect(0)
		t.Error("paho connected with an expired token")
	}
	cp := v5PahoConnect("paho5-jwt")
	cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, "bob", true, []byte(good)
	v5Paho(t, b.Addr, cp, nil)
	cp = v5PahoConnect("paho5-forged")
	cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, "bob", true, []byte(sign(t, jwt.SigningMethodHS256, []byte("x"), "", claims("bob")))
	cli := paho.NewClient(paho.ClientConfig{Conn: dialRaw(t, b.Addr).nc, PacketTimeout: waitFor})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if ack, err := cli.Connect(ctx, cp); err == nil || ack == nil || ack.ReasonCode != byte(packet.BadUserNameOrPassword) {
		t.Errorf("paho.golang with a forged token: error %v, CONNACK %+v; want 0x86", err, ack)
	}
}

// tamper changes the payload of a signed token, keeping its signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	b = []byte(strings.Replace(string(b), `"bob"`, `"bob2"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// The token may be in the user name instead (from: username).
func TestJWTFromUsername(t *testing.T) {
	o := jwtOptions(t)
	o.From = auth.JWTFromUsername
	o.RequiredClaims = map[string]string{"iss": jwtIssuer}
	b, _ := jwtBroker(t, o, nil)
	tok := sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", claims("bob"))
	if _, rc := jwtConnect(t, b.Addr, "u1", tok, "", packet.V311); rc != packet.Success {
		t.Errorf("token as user name: CONNACK %v", rc)
	}
	if _, rc := jwtConnect(t, b.Addr, "u2", tamper(tok), "", packet.V5); rc != packet.BadUserNameOrPassword {
		t.Errorf("tampered token as user name: CONNACK %v, want 0x86", rc)
	}
}

// jwksServer serves a JWKS that the test can rotate, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    map[string]*rsa.PrivateKey
	fetches atomic.Int64
}

func newJWKSServer(t testing.TB) *jwksServer {
	s := &jwksServer{keys: map[string]*rsa.PrivateKey{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		for kid, k := range s.keys {
			set.Keys = append(set.Keys, map[string]string{
				"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
			})
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys map[string]*rsa.PrivateKey) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

// A JWKS that rotates: a token signed by a key the broker has not fetched
// yet (an unknown kid) makes it fetch the set again, at most once per
// jwks_min_refresh; a key dropped from the set stops working after that
// fetch; a kid that is nowhere is refused without a fetch storm.
func TestJWTJWKSRotation(t *testing.T) {
	srv := newJWKSServer(t)
	k1, k2, k3 := jwtRSAKey(t, 0), jwtRSAKey(t, 1), jwtRSAKey(t, 2)
	srv.set(map[string]*rsa.PrivateKey{"k1": k1})
	o := auth.DefaultJWTOptions()
	o.Algorithms = []string{"RS256"}
	o.JWKSURL = srv.URL
	o.JWKSRefresh = time.Hour
	o.JWKSMinRefresh = time.Hour
	b, j := jwtBroker(t, o, nil)

	eventually(t, "first JWKS fetch", func() bool { return srv.fetches.Load() >= 1 })
	tok := func(k *rsa.PrivateKey, kid string) string {
		return sign(t, jwt.SigningMethodRS256, k, kid, claims("bob"))
	}
	if _, rc := jwtConnect(t, b.Addr, "a", "bob", tok(k1, "k1"), packet.V5); rc != packet.Success {
		t.Fatalf("token by k1: CONNACK %v", rc)
	}
	before := srv.fetches.Load()

	// Rotation: k2 replaces k1. The first k2 token triggers one fetch.
	srv.set(map[string]*rsa.PrivateKey{"k2": k2})
	if _, rc := jwtConnect(t, b.Addr, "b", "bob", tok(k2, "k2"), packet.V5); rc != packet.Success {
		t.Fatalf("token by the new key k2: CONNACK %v", rc)
	}
	if got := srv.fetches.Load() - before; got != 1 {
		t.Errorf("%d fetches for an unknown kid, want 1", got)
	}
	// k1 is gone from the fetched set.
	if _, rc := jwtConnect(t, b.Addr, "c", "bob", tok(k1, "k1"), packet.V311); rc != packet.BadUserNameOrPassword {
		t.Errorf("token by the retired key k1: CONNACK %v, want 4", rc)
	}
	// Unknown kids, again and again: refused, and no more fetches within
	// jwks_min_refresh.
	for i := range 5 {
		if _, rc := jwtConnect(t, b.Addr, fmt.Sprintf("d%d", i), "bob", tok(k3, "k3"), packet.V5); rc != packet.BadUserNameOrPassword {
			t.Errorf("token by unknown k3: CONNACK %v, want 0x86", rc)
		}
	}
	if got := srv.fetches.Load() - before; got != 1 {
		t.Errorf("%d fetches after 5 more unknown kids, want still 1 (rate-limited)", got)
	}
	// k1's signature with k2's kid: refused.
	if _, rc := jwtConnect(t, b.Addr, "e", "bob", tok(k1, "k2"), packet.V5); rc != packet.BadUserNameOrPassword {
		t.Errorf("k1 signature under kid k2: CONNACK %v, want 0x86", rc)
	}
	stats := map[string]uint64{}
	for _, s := range j.Stats() {
		stats[s.Reason] = s.Count
	}
	if stats["unknown_key"] < 6 || stats["accepted"] != 2 || stats["signature"] != 1 {
		t.Errorf("stats %v, want unknown_key >= 6, accepted 2, signature 1", stats)
	}
}

// The ACL claim (EMQX's format) decides before the other authoriser (here
// an ACL file granting everything): QoS and retain conditions on PUBLISH,
// exact ("eq") and %c topics on SUBSCRIBE, first match wins, a final deny.
// Refusals: PUBACK/PUBREC 0x87 and SUBACK 0x87 in 5.0, SUBACK 0x80 in 3.1.1
// [MQTT-3.8.4-5].
func TestJWTACLClaim(t *testing.T) {
	all, err := auth.ParseACL("all.acl", strings.NewReader("pattern readwrite #\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := jwtOptions(t)
	b, _ := jwtBroker(t, o, all)
	c := claims("bob")
	c["acl"] = []any{
		map[string]any{"permission": "allow", "action": "publish", "topic": "dev/%u/up", "qos": []any{0, 1}, "retain": false},
		map[string]any{"permission": "allow", "action": "subscribe", "topic": "eq cmd/#"},
		map[string]any{"permission": "allow", "action": "subscribe", "topic": "dev/${clientid}/down"},
		map[string]any{"permission": "allow", "action": "all", "topics": []any{"chat/#"}},
		map[string]any{"permission": "deny", "action": "all", "topic": "#"},
	}
	tok := sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", c)
	bob, rc := jwtConnect(t, b.Addr, "c1", "bob", tok, packet.V5)
	if rc != packet.Success {
		t.Fatalf("CONNACK %v", rc)
	}
	// A client whose token has no ACL claim goes to the ACL file.
	plain, rc := jwtConnect(t, b.Addr, "c2", "bob", sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", claims("bob")), packet.V5)
	if rc != packet.Success {
		t.Fatalf("CONNACK %v", rc)
	}
	codes := bob.v5Subscribe(0,
		packet.Subscription{Filter: "cmd/#", QoS: 1},
		packet.Subscription{Filter: "cmd/x", QoS: 1},
		packet.Subscription{Filter: "dev/c1/down", QoS: 1},
		packet.Subscription{Filter: "dev/c2/down", QoS: 1},
		packet.Subscription{Filter: "chat/room", QoS: 0},
		packet.Subscription{Filter: "other", QoS: 0},
	)
	want := []packet.ReasonCode{packet.GrantedQoS1, packet.NotAuthorized, packet.GrantedQoS1, packet.NotAuthorized, packet.GrantedQoS0, packet.NotAuthorized}
	for i := range want {
		if codes[i] != want[i] {
			t.Errorf("SUBACK[%d] = %v, want %v", i, codes[i], want[i])
		}
	}
	pubs := []struct {
		topic  string
		qos    byte
		retain bool
		want   packet.ReasonCode
	}{
		{"dev/bob/up", 1, false, packet.Success},
		{"dev/bob/up", 2, false, packet.NotAuthorized}, // qos not listed
		{"dev/bob/up", 1, true, packet.NotAuthorized},  // retain false only
		{"dev/alice/up", 1, false, packet.NotAuthorized},
		{"cmd/x", 1, false, packet.NotAuthorized}, // subscribe-only rule
		{"chat/other", 1, false, packet.Success},
	}
	for _, p := range pubs {
		rc := bob.v5Pub(p.topic, "x", p.qos, p.retain)
		if rc == packet.NoMatchingSubscribers {
			rc = packet.Success
		}
		if rc != p.want {
			t.Errorf("PUBLISH %s QoS %d retain %v: %v, want %v", p.topic, p.qos, p.retain, rc, p.want)
		}
	}
	// Deliveries: what "eq cmd/#" subscribed receives cmd/x; dev/c1/down too.
	plain.v5Pub("cmd/x", "go", 0, false)
	bob.expectPublish("cmd/x", "go")
	plain.v5Pub("dev/c1/down", "down", 0, false)
	bob.expectPublish("dev/c1/down", "down")
	if rc := plain.v5Pub("anything/at/all", "x", 1, true); rc.IsError() {
		t.Errorf("client without ACL claim, ACL file grants all: %v", rc)
	}

	// 3.1.1: refused SUBSCRIBE is 0x80.
	old, rc := jwtConnect(t, b.Addr, "c3", "bob", tok, packet.V311)
	if rc != packet.Success {
		t.Fatalf("CONNACK %v", rc)
	}
	if codes := old.subscribe(packet.Subscription{Filter: "other", QoS: 0}, packet.Subscription{Filter: "chat/#", QoS: 1}); codes[0] != packet.UnspecifiedError || codes[1] != 1 {
		t.Errorf("3.1.1 SUBACK %v, want [0x80, 1]", codes)
	}

	// A malformed ACL claim refuses the connection (0x87).
	c["acl"] = []any{map[string]any{"permission": "maybe", "action": "all", "topic": "#"}}
	if _, rc := jwtConnect(t, b.Addr, "c4", "bob", sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", c), packet.V5); rc != packet.NotAuthorized {
		t.Errorf("malformed ACL claim: CONNACK %v, want 0x87", rc)
	}
	// EMQX's older format: listed topics allowed, everything else denied.
	c["acl"] = map[string]any{"pub": []any{"up/%u"}, "sub": []any{"down/#"}}
	legacy, rc := jwtConnect(t, b.Addr, "c5", "bob", sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", c), packet.V5)
	if rc != packet.Success {
		t.Fatalf("legacy ACL: CONNACK %v", rc)
	}
	if rc := legacy.v5Pub("up/bob", "x", 1, false); rc.IsError() {
		t.Errorf("legacy pub up/bob: %v", rc)
	}
	if rc := legacy.v5Pub("down/x", "x", 1, false); rc != packet.NotAuthorized {
		t.Errorf("legacy pub down/x: %v, want 0x87", rc)
	}
	if codes := legacy.v5Subscribe(0, packet.Subscription{Filter: "down/a", QoS: 1}, packet.Subscription{Filter: "up/bob", QoS: 1}); codes[0] != packet.GrantedQoS1 || codes[1] != packet.NotAuthorized {
		t.Errorf("legacy SUBACK %v", codes)
	}
}

// disconnect_on_expiry: a client is disconnected when its token expires,
// 5.0 with DISCONNECT 0xA0 Maximum connect time, 3.1.1 by closing; the
// will is published, as for any connection the client did not end. Off,
// the client stays. The DISCONNECT carries a code of the table
// [MQTT-3.14.2-1], no Session Expiry Interval [MQTT-3.14.2-2], and the
// connection closes after it [MQTT-3.14.4-2].
func TestJWTDisconnectOnExpiry(t *testing.T) {
	t.Parallel()
	o := jwtOptions(t)
	o.DisconnectOnExpiry = true
	b, _ := jwtBroker(t, o, nil)
	off := jwtOptions(t)
	off.DisconnectOnExpiry = false
	boff, _ := jwtBroker(t, off, nil)

	short := claims("bob")
	// exp has whole seconds: 2 to 3 s of validity, room to connect on a
	// loaded machine.
	short["exp"] = time.Now().Add(3 * time.Second).Unix()
	tok := sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", short)

	watcher, _ := jwtConnect(t, b.Addr, "watcher", "alice", "wonder", packet.V311)
	watcher.sub("will/#", 0)
	c5, rc := jwtConnect(t, b.Addr, "exp5", "bob", tok, packet.V5)
	if rc != packet.Success {
		t.Fatalf("CONNACK %v", rc)
	}
	p := login("exp3", "bob", tok, packet.V311)
	p.WillFlag, p.Will.Topic, p.Will.Payload = true, "will/exp3", []byte("gone")
	c3, ack := connectRaw(t, b.Addr, p)
	if ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK %v", ack.ReasonCode)
	}
	stay, _ := jwtConnect(t, boff.Addr, "stay", "bob", tok, packet.V5)
	cp := v5PahoConnect("paho-exp")
	cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, "bob", true, []byte(tok)
	pc, _ := v5Paho(t, b.Addr, cp, nil)

	got := c5.expectClosed(4*time.Second + waitFor)
	if len(got) != 1 {
		t.Fatalf("5.0: %d packets before the close, want DISCONNECT", len(got))
	}
	if d, ok := got[0].(*packet.Disconnect); !ok || d.ReasonCode != packet.MaximumConnectTime {
		t.Errorf("5.0: got %s, want DISCONNECT 0xA0", describe(got[0]))
	} else if d.Properties.Has(packet.PropSessionExpiry) {
		t.Errorf("5.0: server DISCONNECT with a Session Expiry Interval [MQTT-3.14.2-2]")
	}
	c3.expectClosedSilently(waitFor)
	watcher.expectPublish("will/exp3", "gone")
	select {
	case d := <-pc.Disconnects:
		if d.ReasonCode != byte(packet.MaximumConnectTime) {
			t.Errorf("paho: DISCONNECT %#x, want 0xA0", d.ReasonCode)
		}
	case <-time.After(waitFor):
		t.Errorf("paho: no DISCONNECT at expiry")
	}
	stay.sync() // still connected with disconnect_on_expiry off
}

// BenchmarkConnectAuth measures connections per second (connect, CONNACK,
// close, one at a time) with JWT authentication and with the password file
// at its default argon2id parameters, in one run:
//
//	go test -run '^$' -bench BenchmarkConnectAuth -benchtime 3s ./broker
func BenchmarkConnectAuth(b *testing.B) {
	o := jwtOptions(b)
	tb, _ := jwtBroker(b, o, nil)
	pw := auth.NewPasswordFile() // DefaultArgon2Params
	if err := pw.Set("alice", []byte("wonder")); err != nil {
		b.Fatal(err)
	}
	popts := testOptions()
	popts.Authenticator = pw
	pb := runBroker(b, popts)
	hs := sign(b, jwt.SigningMethodHS256, []byte(jwtSecret), "", claims("bob"))
	rs := sign(b, jwt.SigningMethodRS256, jwtRSAKey(b, 0), "", claims("bob"))
	for _, bc := range []struct {
		name, addr, user, pass string
	}{
		{"jwt-HS256", tb.Addr, "bob", hs},
		{"jwt-RS256", tb.Addr, "bob", rs},
		{"password-argon2id", pb.Addr, "alice", "wonder"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				c := dialRaw(b, bc.addr)
				c.send(login(fmt.Sprintf("bench-%d", i), bc.user, bc.pass, packet.V311))
				p, err := c.read(time.Minute) // argon2id on a loaded machine
				if ack, ok := p.(*packet.Connack); err != nil || !ok || ack.ReasonCode != packet.Success {
					b.Fatalf("CONNACK %v, %v", p, err)
				}
				c.nc.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
		})
	}
}

// JWT chains with the HTTP hook as with the password file: a password that
// is not a token is the hook's to decide; a token never reaches it.
func TestJWTChainsHTTPHook(t *testing.T) {
	var asked atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		var req struct{ Username, Password string }
		json.NewDecoder(r.Body).Decode(&req)
		res := "deny"
		if req.Username == "svc" && req.Password == "pw" {
			res = "allow"
		}
		fmt.Fprintf(w, `{"result":%q}`, res)
	}))
	t.Cleanup(hook.Close)
	h, err := auth.NewHTTPHook(auth.HTTPHookOptions{AuthURL: hook.URL, Timeout: waitFor})
	if err != nil {
		t.Fatal(err)
	}
	o := jwtOptions(t)
	o.Next = h
	j, err := auth.NewJWT(o)
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions()
	opts.LoginLimits = broker.LoginLimits{}
	opts.Authenticator = j
	b := runBroker(t, opts)
	if _, rc := jwtConnect(t, b.Addr, "h1", "svc", "pw", packet.V5); rc != packet.Success {
		t.Errorf("hook user: CONNACK %v", rc)
	}
	if _, rc := jwtConnect(t, b.Addr, "h2", "svc", "nope", packet.V5); rc != packet.BadUserNameOrPassword {
		t.Errorf("hook user, wrong password: CONNACK %v, want 0x86", rc)
	}
	before := asked.Load()
	if _, rc := jwtConnect(t, b.Addr, "h3", "bob", sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", claims("bob")), packet.V5); rc != packet.Success {
		t.Errorf("token: CONNACK %v", rc)
	}
	if _, rc := jwtConnect(t, b.Addr, "h4", "bob", sign(t, jwt.SigningMethodHS256, []byte("forged"), "", claims("bob")), packet.V5); rc != packet.BadUserNameOrPassword {
		t.Errorf("forged token: CONNACK %v, want 0x86", rc)
	}
	if n := asked.Load() - before; n != 0 {
		t.Errorf("the hook was asked %d times about tokens, want 0", n)
	}
}
