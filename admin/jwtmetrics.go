package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
)

// metricJWT counts JWT authentications by result; label result.
const metricJWT = "gannet_jwt_auth_total"

// jwtCollector reports the counters of the broker's JWT authenticator, read
// at each scrape (after a reload, the new authenticator's, from zero). It
// reports nothing while JWT authentication is not configured.
type jwtCollector struct {
	srv  *broker.Server
	desc *prometheus.Desc
}

func newJWTCollector(srv *broker.Server) *jwtCollector {
	return &jwtCollector{srv: srv, desc: prometheus.NewDesc(metricJWT,
		"JWT authentications, by result: accepted; not_jwt (handed to the password file or hook); refused as malformed, algorithm (not configured, none included), signature, unknown_key (kid not in the JWKS, or the JWKS unavailable), expired, not_yet_valid (nbf or iat ahead), claims (a required claim missing or different), bad_acl (ACL claim malformed).",
		[]string{"result"}, nil)}
}

func (c *jwtCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *jwtCollector) Collect(ch chan<- prometheus.Metric) {
	j, ok := c.srv.Authenticator().(*auth.JWT)
	if !ok {
		return
	}
	for _, s := range j.Stats() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(s.Count), s.Reason)
	}
}
