package admin

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// checkHost serves only requests whose Host header names the admin
// listener by an IP address, "localhost" (or a name under .localhost) or
// one of Options.AllowedHosts. It stands in for the token when there is
// none: a page on another site can make a browser send requests to the
// admin listener by pointing a name of its own at the listener's address
// (DNS rebinding), and those carry the attacker's name as Host. A page
// whose origin is an IP address or localhost is served by this host
// itself. /healthz and /readyz answer whatever the Host, for probes that
// name the listener their own way.
func (a *Admin) checkHost(next http.Handler) http.Handler {
	allowed := make([]string, 0, len(a.opts.AllowedHosts))
	for _, h := range a.opts.AllowedHosts {
		allowed = append(allowed, strings.TrimSuffix(strings.ToLower(h), "."))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		host := hostOnly(r.Host)
		if host == "" || !(isSafeHost(host) || slices.Contains(allowed, host)) {
			a.log.Warn("admin: request refused: Host not allowed without a token (DNS rebinding?)",
				"host", r.Host, "remote", r.RemoteAddr, "path", r.URL.Path)
			writeError(w, http.StatusForbidden, fmt.Sprintf(
				"host %q is not allowed: this admin listener has no token; use an IP address or localhost, add the name to admin.allowed_hosts, or set admin.token", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostOnly returns the host of a Host header without port and brackets,
// lower-cased, without a trailing dot.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// isSafeHost reports whether host, from a Host header, cannot be a name an
// attacker points at this listener: an IP address, or localhost, which
// browsers resolve to the loopback address themselves.
func isSafeHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// isLoopbackAddr reports whether a listener's address is a loopback one.
func isLoopbackAddr(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true // reached through the file system, not the network
	}
	ap, err := netip.ParseAddrPort(addr.String())
	return err == nil && ap.Addr().IsLoopback()
}

// canonicalPaths answers 400 to a request whose path is not canonical:
// with an empty segment (a//b, //x), a "." or ".." segment (t/./u), as
// sent, before percent-decoding. http.ServeMux would otherwise redirect
// it to the cleaned path, and a client following the redirect would act on
// another resource: DELETE /api/v1/retained/a//b deleting a/b. Segments
// that only decode to such values (%2F, %2E) are data and pass: the mux
// matches wildcards segment by segment, after cleaning the escaped path.
func canonicalPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.EscapedPath(); !isCanonical(p) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf(
				"path %q is not canonical (empty, \".\" or \"..\" segment); percent-encode such data, or use the query form (?topic=, ?id=)", p))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isCanonical reports whether p starts with "/" and has no empty, "." or
// ".." segment; a trailing "/" is allowed.
func isCanonical(p string) bool {
	if p == "/" || p == "*" { // "*": OPTIONS *, which the mux answers itself
		return true
	}
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for _, s := range strings.Split(strings.TrimSuffix(p[1:], "/"), "/") {
		if s == "" || s == "." || s == ".." {
			return false
		}
	}
	return true
}
