package admin_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gannet-mqtt/gannet/admin"
	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// /metrics counts JWT authentications by result.
func TestJWTMetrics(t *testing.T) {
	o := auth.DefaultJWTOptions()
	o.Secret = []byte("metrics-secret")
	j, err := auth.NewJWT(o)
	if err != nil {
		t.Fatal(err)
	}
	b := runBroker(t, func(bo *broker.Options) { bo.Authenticator = j })
	a := runAdmin(t, b.Server, admin.Options{})
	sign := func(key string, exp time.Time) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": exp.Unix()}).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for i, tok := range []string{sign("metrics-secret", time.Now().Add(time.Minute)), sign("forged", time.Now().Add(time.Minute)), sign("metrics-secret", time.Now().Add(-time.Minute))} {
		nc, err := net.DialTimeout("tcp", b.Addr, waitFor)
		if err != nil {
			t.Fatal(err)
		}
		p := &packet.Connect{Version: packet.V311, CleanStart: true, ClientID: "m" + string(rune('0'+i)), KeepAlive: 60,
			UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte(tok)}
		buf, _ := p.Append(nil, packet.V311)
		nc.Write(buf)
		nc.SetReadDeadline(time.Now().Add(waitFor))
		ack := make([]byte, 4)
		if _, err := nc.Read(ack); err != nil {
			t.Fatal(err)
		}
		nc.Close()
	}
	body := string(a.request("GET", "/metrics", nil).Body)
	for _, want := range []string{
		`gannet_jwt_auth_total{result="accepted"} 1`,
		`gannet_jwt_auth_total{result="signature"} 1`,
		`gannet_jwt_auth_total{result="expired"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
