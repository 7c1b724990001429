package listener

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestValidateReportsEveryError(t *testing.T) {
	cfgs := []struct {
		cfg  Config
		want []string // fields in error
	}{
		{Config{}, []string{"Type"}},
		{Config{Type: "quic", Address: ":1"}, []string{"Type"}},
		{Config{Type: TypeTCP}, []string{"Address"}},
		{Config{Type: TypeTCP, Address: "localhost"}, []string{"Address"}},
		{Config{Type: TypeTCP, Address: ":99999"}, []string{"Address"}},
		{Config{Name: "many", Type: TypeTLS, Address: ":8883",
			TLS:              TLSConfig{ClientAuth: "maybe", MinVersion: "1.1"},
			ProxyProtocol:    true,
			Path:             "mqtt",
			SocketMode:       0o600,
			HandshakeTimeout: -time.Second,
		}, []string{"TLS.CertFile", "TLS.KeyFile", "TLS.ClientAuth", "TLS.MinVersion", "Path", "ProxyFrom", "SocketMode", "HandshakeTimeout"}},
		{Config{Type: TypeTLS, Address: ":8883", TLS: TLSConfig{CertFile: "c", KeyFile: "k", ClientAuth: ClientAuthRequired}}, []string{"TLS.CAFile"}},
		{Config{Type: TypeTLS, Address: ":8883", TLS: TLSConfig{CertFile: "c", KeyFile: "k", CAFile: "ca", CRLFile: "crl"}}, []string{"TLS.CRLFile"}},
		{Config{Type: TypeTCP, Address: ":1883", TLS: TLSConfig{CertFile: "c"}, OriginPatterns: []string{"x"}}, []string{"TLS", "OriginPatterns"}},
		{Config{Type: TypeWS, Address: ":80", Path: "no-slash", OriginPatterns: []string{"[bad"}}, []string{"Path", "OriginPatterns"}},
		{Config{Type: TypeTCP, Address: ":1883", ProxyFrom: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, []string{"ProxyFrom"}},
		{Config{Type: TypeTCP, Address: ":1883", ProxyProtocol: true, ProxyFrom: []netip.Prefix{{}}}, []string{"ProxyFrom[0]"}},
		{Config{Type: TypeUnix, Address: "/run/g.sock", ProxyProtocol: true, SocketMode: 0o1777}, []string{"ProxyProtocol", "SocketMode"}},
		{Config{Type: TypeUnix, Address: "/" + strings.Repeat("x", 120)}, []string{"Address"}},
	}
	for _, tc := range cfgs {
		err := tc.cfg.Validate()
		if err == nil {
			t.Errorf("%+v: no error, want %q", tc.cfg, tc.want)
			continue
		}
		var got []string
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var fe *FieldError
			if !errors.As(e, &fe) {
				t.Fatalf("%v is not a *FieldError", e)
			}
			got = append(got, fe.Field)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%+v:\n got fields %q\nwant %q\n%v", tc.cfg, got, tc.want, err)
		}
	}
}

func TestValidateMessage(t *testing.T) {
	err := Config{Name: "public", Type: TypeTLS, Address: ":8883"}.Validate()
	if err == nil || !strings.Contains(err.Error(), `listener "public": TLS.CertFile: empty`) {
		t.Fatalf("error %v", err)
	}
}

func TestValidateOK(t *testing.T) {
	wss := DefaultConfig(TypeWSS, ":443")
	wss.TLS = TLSConfig{CertFile: "c", KeyFile: "k", CAFile: "ca", ClientAuth: ClientAuthOptional, MinVersion: "1.3"}
	wss.ProxyFrom = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tlsProxy := DefaultConfig(TypeTLS, "[::]:8883")
	tlsProxy.TLS = TLSConfig{CertFile: "c", KeyFile: "k"}
	tlsProxy.ProxyProtocol = true
	tlsProxy.ProxyFrom = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	for _, c := range []Config{
		DefaultConfig(TypeTCP, ":1883"),
		DefaultConfig(TypeWS, "127.0.0.1:8080"),
		DefaultConfig(TypeUnix, "/run/gannet.sock"),
		{Type: TypeTCP, Address: ":1883"},
		wss,
		tlsProxy,
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig(TypeWSS, ":443")
	if c.Name != "wss://:443" || c.Path != "/mqtt" || c.HandshakeTimeout != 10*time.Second ||
		c.TLS.MinVersion != "1.2" || c.TLS.ClientAuth != ClientAuthNone || c.SocketMode != 0 {
		t.Errorf("DefaultConfig(wss) = %+v", c)
	}
	if u := DefaultConfig(TypeUnix, "/s"); u.SocketMode != 0o660 || u.Path != "" {
		t.Errorf("DefaultConfig(unix) = %+v", u)
	}
}

func TestListenInvalid(t *testing.T) {
	if _, err := Listen(Config{Type: TypeTCP}); err == nil {
		t.Fatal("Listen without address succeeded")
	}
}
