package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/listener"
	"github.com/gannet-mqtt/gannet/topic"
)

// Validate reports every invalid value at once, as an Errors; each names
// the key (limits.max_inflight) and, for a File from Load, ApplyEnv or
// Flags.Apply, where the value came from (gannet.yaml:12,
// $GANNET_LIMITS_MAX_INFLIGHT, --max-inflight). It reads no files: Build
// does.
func (f *File) Validate() error {
	c := &collector{f: f}
	f.validate(c)
	return c.errs.err()
}

func (f *File) validate(c *collector) {
	n := len(c.errs)
	f.validateListeners(c)
	f.validateStore(c)
	f.validateLimits(c)
	f.validateMQTT(c)
	f.validateAuth(c)
	f.validateRest(c)
	f.validateBridges(c)
	f.validateWebhooks(c)
	f.validateMetrics(c)
	f.validateCluster(c)
	if len(c.errs) == n {
		// The broker's own checks, in case they know of something the
		// ones above do not.
		o := f.brokerOptions()
		for _, e := range leafErrors(o.Validate()) {
			c.errs = append(c.errs, &Error{Pos: Pos{File: f.pos("").File}, Msg: e.Error()})
		}
	}
}

// between reports an int outside [lo, hi].
func (c *collector) between(path string, v, lo, hi int64) {
	if v < lo || v > hi {
		c.at(path, "must be between %d and %d", lo, hi)
	}
}

// nonNegative reports a negative number.
func (c *collector) nonNegative(path string, v float64) {
	if v < 0 || math.IsNaN(v) {
		c.at(path, "must not be negative")
	}
}

// oneOf reports a value not among choices.
func (c *collector) oneOf(path, v string, choices ...string) {
	for _, ch := range choices {
		if v == ch {
			return
		}
	}
	c.at(path, "%q is not %s", v, orList(choices))
}

func orList(choices []string) string {
	if len(choices) == 1 {
		return choices[0]
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}

// seconds reports a duration that is not whole seconds between 0 and max.
func (c *collector) seconds(path string, d time.Duration, maxSec int64) {
	switch {
	case d < 0 || d > time.Duration(maxSec)*time.Second:
		c.at(path, "must be between 0s and %ds", maxSec)
	case d%time.Second != 0:
		c.at(path, "%v is not a whole number of seconds", d)
	}
}

// listenerFields maps the Go field paths of listener.FieldError to keys.
var listenerFields = map[string]string{
	"Name": "name", "Type": "type", "Address": "address", "TLS": "tls",
	"TLS.CertFile": "tls.cert_file", "TLS.KeyFile": "tls.key_file", "TLS.CAFile": "tls.ca_file",
	"TLS.ClientAuth": "tls.client_auth", "TLS.MinVersion": "tls.min_version", "TLS.CRLFile": "tls.crl_file",
	"Path": "path", "OriginPatterns": "origin_patterns", "ProxyProtocol": "proxy_protocol",
	"ProxyFrom": "proxy_from", "SocketMode": "socket_mode", "HandshakeTimeout": "handshake_timeout",
	"FirstByteTimeout": "first_byte_timeout", "MaxPendingPerSource": "max_pending_per_source",
}

// listenerKey turns a FieldError field ("ProxyFrom[2]") into a key.
func listenerKey(field string) (string, bool) {
	base, idx, _ := strings.Cut(field, "[")
	k, ok := listenerFields[base]
	if !ok {
		return "", false
	}
	if idx != "" {
		k += "[" + idx
	}
	return k, true
}

func (f *File) validateListeners(c *collector) {
	if len(f.Listeners) == 0 {
		c.at("listeners", "no listeners: add at least one")
	}
	names := make(map[string]int)
	addrs := make(map[string]int)
	for i := range f.Listeners {
		l := &f.Listeners[i]
		p := fmt.Sprintf("listeners[%d]", i)
		if l.Anonymous != "" {
			c.oneOf(p+".anonymous", l.Anonymous, "default", "allow", "deny")
		}
		if l.MaxConnections < 0 {
			c.at(p+".max_connections", "must not be negative")
		}
		cfg, prefixErrs := l.listenerConfig()
		for j, msg := range prefixErrs {
			if msg != "" {
				c.at(fmt.Sprintf("%s.proxy_from[%d]", p, j), "%s", msg)
			}
		}
		typeOK := slices.Contains([]listener.Type{listener.TypeTCP, listener.TypeTLS, listener.TypeWS, listener.TypeWSS, listener.TypeUnix}, cfg.Type)
		for _, e := range leafErrors(cfg.Validate()) {
			var fe *listener.FieldError
			if errors.As(e, &fe) {
				if !typeOK && fe.Field != "Type" && fe.Field != "Address" {
					continue // whether the other fields fit depends on the type
				}
				if strings.HasPrefix(fe.Field, "ProxyFrom[") && len(prefixErrs) > 0 {
					continue // reported above, with the text as written
				}
				if k, ok := listenerKey(fe.Field); ok {
					c.at(p+"."+k, "%s", fe.Msg)
					continue
				}
			}
			c.at(p, "%v", e)
		}
		isTLS := cfg.Type == listener.TypeTLS || cfg.Type == listener.TypeWSS
		if l.IdentityAsUsername && l.SubjectAsUsername {
			c.at(p+".subject_as_username", "set together with identity_as_username: choose one")
		}
		// With tls.client_auth none, no client has a certificate and every
		// client is refused at CONNACK, as Mosquitto does without
		// require_certificate.
		if l.IdentityAsUsername && !isTLS && !l.ProxyProtocol {
			c.at(p+".identity_as_username", "needs client certificates: a tls or wss listener (with tls.client_auth optional or required), or proxy_protocol for a proxy that verifies them")
		}
		if l.SubjectAsUsername && !isTLS {
			c.at(p+".subject_as_username", "needs client certificates: a tls or wss listener with tls.client_auth optional or required")
		}
		name := listenerName(l)
		if j, dup := names[name]; dup {
			c.at(p+".name", "%q is also the name of listeners[%d]", name, j)
		} else {
			names[name] = i
		}
		if l.Address != "" && !strings.HasSuffix(l.Address, ":0") {
			key := l.Address
			if l.Type == "unix" {
				key = "unix:" + key
			}
			if j, dup := addrs[key]; dup {
				c.at(p+".address", "%s is also the address of listeners[%d]", l.Address, j)
			} else {
				addrs[key] = i
			}
		}
	}
}

// listenerName is the name a listener goes by: its name, or
// "<type>://<address>".
func listenerName(l *Listener) string {
	if l.Name != "" {
		return l.Name
	}
	return l.Type + "://" + l.Address
}

// listenerConfig converts l. prefixErrs has one entry per proxy_from
// entry, "" for those that parse; nil when all do.
func (l *Listener) listenerConfig() (cfg listener.Config, prefixErrs []string) {
	cfg = listener.Config{
		Name:    listenerName(l),
		Type:    listener.Type(l.Type),
		Address: l.Address,
		TLS: listener.TLSConfig{
			CertFile:   l.TLS.CertFile,
			KeyFile:    l.TLS.KeyFile,
			CAFile:     l.TLS.CAFile,
			ClientAuth: listener.ClientAuth(l.TLS.ClientAuth),
			MinVersion: l.TLS.MinVersion,
			CRLFile:    l.TLS.CRLFile,
		},
		Path:                l.Path,
		OriginPatterns:      l.OriginPatterns,
		ProxyProtocol:       l.ProxyProtocol,
		SocketMode:          fsMode(l.SocketMode),
		HandshakeTimeout:    l.HandshakeTimeout,
		FirstByteTimeout:    l.FirstByteTimeout,
		MaxPendingPerSource: l.MaxPendingPerSource,
	}
	bad := false
	msgs := make([]string, len(l.ProxyFrom))
	for j, s := range l.ProxyFrom {
		p, err := parsePrefix(s)
		if err != nil {
			msgs[j], bad = err.Error(), true
			continue
		}
		cfg.ProxyFrom = append(cfg.ProxyFrom, p)
	}
	if bad {
		return cfg, msgs
	}
	return cfg, nil
}

// parsePrefix parses a CIDR prefix, or an address as a prefix of one.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		if p != p.Masked() {
			return netip.Prefix{}, fmt.Errorf("%q has bits set past the prefix length; did you mean %s?", s, p.Masked())
		}
		return p, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix (10.0.0.0/8) or an address", s)
}

func (f *File) validateStore(c *collector) {
	s := &f.Store
	c.oneOf("store.type", s.Type, "pebble", "memory")
	if s.Type == "pebble" && s.DataDir == "" {
		c.at("store.data_dir", "empty; the pebble store needs a directory")
	}
	c.oneOf("store.fsync", s.Fsync, "always", "interval", "never")
	switch {
	case s.FsyncInterval < 0:
		c.at("store.fsync_interval", "must not be negative")
	case s.Fsync == "interval" && s.FsyncInterval == 0:
		c.at("store.fsync_interval", "must be above zero with fsync interval")
	}
}

func (f *File) validateLimits(c *collector) {
	l := &f.Limits
	if l.ConnectTimeout <= 0 {
		c.at("limits.connect_timeout", "must be above zero")
	}
	c.between("limits.max_packet_size", int64(l.MaxPacketSize), broker.MinMaxPacketSize, broker.NoMaxPacketSize)
	c.nonNegative("limits.max_payload_size", float64(l.MaxPayloadSize))
	c.nonNegative("limits.max_user_properties", float64(l.MaxUserProperties))
	c.between("limits.max_inflight", int64(l.MaxInflight), 1, 65535)
	c.nonNegative("limits.max_queued", float64(l.MaxQueued))
	c.nonNegative("limits.max_retained", float64(l.MaxRetained))
	c.nonNegative("limits.max_retained_per_user", float64(l.MaxRetainedPerUser))
	c.nonNegative("limits.max_connections", float64(l.MaxConnections))
	c.between("limits.max_topic_length", int64(l.MaxTopicLength), 0, 65535)
	c.nonNegative("limits.max_topic_levels", float64(l.MaxTopicLevels))
	c.seconds("limits.max_keep_alive", l.MaxKeepAlive, math.MaxUint16)
	if l.MaxClientIDLength < 23 {
		c.at("limits.max_client_id_length", "must be at least 23 [MQTT-3.1.3-5]")
	}
	if l.WriteBufferLimit < 1024 {
		c.at("limits.write_buffer_limit", "must be at least 1KiB")
	}
	if l.WriteBufferHardLimit != 0 && l.WriteBufferHardLimit < l.WriteBufferLimit {
		c.at("limits.write_buffer_hard_limit", "must be 0 (16 x write_buffer_limit) or at least write_buffer_limit (%v)", l.WriteBufferLimit)
	}
	c.nonNegative("limits.connection_rate", l.ConnectionRate)
	c.nonNegative("limits.connection_burst", float64(l.ConnectionBurst))
	c.nonNegative("limits.publish_rate", l.PublishRate)
	c.nonNegative("limits.publish_burst", float64(l.PublishBurst))
	c.nonNegative("limits.max_subscriptions", float64(l.MaxSubscriptions))
	c.seconds("limits.max_session_expiry", l.MaxSessionExpiry, math.MaxUint32)
	c.seconds("limits.max_anonymous_session_expiry", l.MaxAnonymousSessionExpiry, math.MaxUint32)
}

func (f *File) validateMQTT(c *collector) {
	m := &f.MQTT
	c.between("mqtt.maximum_qos", int64(m.MaximumQoS), 0, 2)
	c.between("mqtt.topic_alias_maximum", int64(m.TopicAliasMaximum), 0, 65535)
	c.between("mqtt.receive_maximum", int64(m.ReceiveMaximum), 1, 65535)
	if _, ok := parseShareStrategy(m.ShareStrategy); !ok {
		c.at("mqtt.share_strategy", "%q is not round_robin or random", m.ShareStrategy)
	}
	if d := m.DelayedPublish.MaxDelay; d < time.Second || d%time.Second != 0 {
		c.at("mqtt.delayed_publish.max_delay", "%v must be whole seconds, at least 1s", d)
	}
	c.nonNegative("mqtt.delayed_publish.max_messages", float64(m.DelayedPublish.MaxMessages))
	for i, r := range m.Rewrite {
		at := fmt.Sprintf("mqtt.rewrite[%d]", i)
		if _, err := broker.ParseRewriteAction(r.Action); err != nil {
			c.at(at+".action", "%q is not publish, subscribe or all", r.Action)
		}
		if !topic.ValidFilter(r.Filter) {
			c.at(at+".filter", "%q is not a valid topic filter", r.Filter)
		}
		if r.Regex == "" {
			c.at(at+".regex", "is missing")
		} else if _, err := regexp.Compile(r.Regex); err != nil {
			c.at(at+".regex", "%q is not a regular expression (Go RE2 syntax): %v", r.Regex, err)
		}
	}
}

func (f *File) validateMetrics(c *collector) {
	mt := &f.Metrics
	c.nonNegative("metrics.max_topics", float64(mt.MaxTopics))
	if len(mt.Topics) > mt.MaxTopics {
		c.at("metrics.topics", "%d filters, more than metrics.max_topics (%d)", len(mt.Topics), mt.MaxTopics)
	}
	for i, t := range mt.Topics {
		if !topic.ValidFilter(t) {
			c.at(fmt.Sprintf("metrics.topics[%d]", i), "%q is not a valid topic filter", t)
		}
	}
}

// parseShareStrategy accepts round_robin (round-robin, as topic spells it)
// and random.
func parseShareStrategy(s string) (topic.ShareStrategy, bool) {
	switch s {
	case "round_robin", "round-robin":
		return topic.RoundRobin, true
	case "random":
		return topic.Random, true
	}
	return 0, false
}

func shareStrategyName(s topic.ShareStrategy) string {
	if s == topic.Random {
		return "random"
	}
	return "round_robin"
}

func (f *File) validateAuth(c *collector) {
	a := &f.Auth
	if a.PasswordFile != "" && a.HTTP.AuthURL != "" {
		c.at("auth.http.auth_url", "set together with auth.password_file; use one of them")
	}
	if a.ACLFile != "" && a.HTTP.ACLURL != "" {
		c.at("auth.http.acl_url", "set together with auth.acl_file; use one of them")
	}
	for _, u := range []struct{ path, v string }{{"auth.http.auth_url", a.HTTP.AuthURL}, {"auth.http.acl_url", a.HTTP.ACLURL}} {
		if u.v == "" {
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			c.at(u.path, "%q is not an absolute http or https URL", u.v)
		}
	}
	if a.HTTP.Timeout <= 0 {
		c.at("auth.http.timeout", "must be above zero")
	}
	c.nonNegative("auth.http.cache_size", float64(a.HTTP.CacheSize))
	c.nonNegative("auth.http.cache_ttl", float64(a.HTTP.CacheTTL))
	c.nonNegative("auth.login.max_checks", float64(a.Login.MaxChecks))
	c.nonNegative("auth.login.max_checks_per_source", float64(a.Login.MaxChecksPerSource))
	c.nonNegative("auth.login.source_failure_rate", a.Login.SourceFailureRate)
	c.nonNegative("auth.login.source_failure_burst", float64(a.Login.SourceFailureBurst))
	c.nonNegative("auth.login.user_failure_rate", a.Login.UserFailureRate)
	c.nonNegative("auth.login.user_failure_burst", float64(a.Login.UserFailureBurst))
	c.oneOf("auth.session_ownership", a.SessionOwnership, "owner", "any")
	f.validateJWT(c)
}

// validateJWT checks auth.jwt without reading the key file or fetching the JWKS.
func (f *File) validateJWT(c *collector) {
	j := &f.Auth.JWT
	if !j.Enabled() {
		if len(j.RequiredClaims) > 0 {
			c.at("auth.jwt", "required_claims set but JWT is off: set secret, public_key_file or jwks_url")
		}
		return
	}
	if err := j.options().Validate(); err != nil {
		for _, e := range splitJoined(err) {
			c.at("auth.jwt", "%s", strings.TrimPrefix(e.Error(), "auth: jwt: "))
		}
	}
}

// splitJoined returns the errors an errors.Join made, or err alone.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (f *File) validateRest(c *collector) {
	if _, ok := parseLevel(f.Logging.Level); !ok {
		c.at("logging.level", "%q is not debug, info, warn or error", f.Logging.Level)
	}
	c.oneOf("logging.format", f.Logging.Format, "text", "json")
	if a := f.Admin.Address; a != "" {
		if host, port, err := net.SplitHostPort(a); err != nil {
			c.at("admin.address", "%q is not host:port", a)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			c.at("admin.address", "port %q is not a number from 0 to 65535", port)
		} else if f.Admin.Token == "" && !f.Admin.InsecureNoToken && !loopbackHost(host) {
			c.at("admin.address", "%q is not a loopback address and admin.token is empty: anyone who reaches it could administer the broker; set admin.token (or GANNET_ADMIN_TOKEN), listen on 127.0.0.1, or set admin.insecure_no_token: true", a)
		}
	}
	for i, h := range f.Admin.AllowedHosts {
		if h == "" || strings.ContainsAny(h, ":/ \t\r\n") {
			c.at(fmt.Sprintf("admin.allowed_hosts[%d]", i), "%q: want a host name without port, scheme or path", h)
		}
	}
	if strings.ContainsAny(f.Admin.Token, " \t\r\n") {
		c.at("admin.token", "has white space, which an Authorization header cannot carry")
	}
	c.nonNegative("sys.interval", float64(f.Sys.Interval))
}

// loopbackHost reports whether the host of admin.address is a loopback
// address or localhost. Other names are not resolved here: the admin
// listener checks the address it is bound to when it starts.
func loopbackHost(host string) bool {
	switch host {
	case "localhost":
		return true
	case "": // every interface
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return true // a name: left to the listener's check
	}
	return ip.IsLoopback()
}
