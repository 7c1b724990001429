package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gannet-mqtt/gannet/broker"
)

// Options configure an Admin.
type Options struct {
	// Token, when set, is the bearer token that every endpoint but
	// /healthz, /readyz and the dashboard's static files requires
	// ("Authorization: Bearer TOKEN"). Empty: no authentication, for an
	// admin listener that only trusted hosts reach.
	Token string
	// AllowedHosts lists the host names (without port) that requests may
	// name in their Host header when Token is empty, besides "localhost",
	// names under ".localhost" and IP addresses. Without a token, a page
	// from any web site could otherwise reach the API through a name that
	// its owner points at the admin's address (DNS rebinding). With a
	// token, every Host is accepted: such a page does not have the token.
	AllowedHosts []string
	// InsecureNoToken lets Serve run without a Token on an address that
	// is not loopback. Anyone who reaches it can then administer the
	// broker: publish to any topic, read retained messages, disconnect
	// clients.
	InsecureNoToken bool
	// Ready reports whether the broker serves clients; /readyz answers 503
	// with its error. Nil: ready while the Admin runs.
	Ready func() error
	// Logger receives the admin's logs; nil means slog.Default().
	Logger *slog.Logger
	// Bridges, when set, are listed by /api/v1/bridges and /metrics.
	Bridges Bridges
	// TraceDir is where file traces are written (trace.go); empty: only
	// streamed traces.
	TraceDir string
}

// Admin serves the administration endpoints of one broker.
type Admin struct {
	srv      *broker.Server
	opts     Options
	log      *slog.Logger
	tokenSum [sha256.Size]byte // of opts.Token, compared in constant time
	registry *prometheus.Registry
	handler  http.Handler
	traces   *tracer
	rates    topicRates // message rates of the per-topic metric filters
}

// New returns the admin endpoints of srv.
func New(srv *broker.Server, opts Options) (*Admin, error) {
	if srv == nil {
		return nil, errors.New("admin: nil broker")
	}
	if strings.ContainsAny(opts.Token, " \t\r\n") {
		return nil, errors.New("admin: token has white space, which an Authorization header cannot carry")
	}
	a := &Admin{srv: srv, opts: opts, log: opts.Logger}
	if a.log == nil {
		a.log = slog.Default()
	}
	for _, h := range opts.AllowedHosts {
		if h == "" || strings.ContainsAny(h, ":/ \t\r\n") {
			return nil, fmt.Errorf("admin: allowed host %q: want a host name without port, scheme or path", h)
		}
	}
	a.tokenSum = sha256.Sum256([]byte(opts.Token))
	reg, err := newRegistry(srv)
	if err != nil {
		return nil, err
	}
	if opts.Bridges != nil {
		if err := reg.Register(newBridgeCollector(opts.Bridges)); err != nil {
			return nil, fmt.Errorf("admin: register bridge metrics: %w", err)
		}
	}
	if srv.NodeName() != "" {
		if err := reg.Register(newClusterCollector(srv)); err != nil {
			return nil, fmt.Errorf("admin: register cluster metrics: %w", err)
		}
	}
	a.registry = reg
	a.traces = newTracer(srv, opts.TraceDir)
	if err := reg.Register(traceCollector{a.traces}); err != nil {
		return nil, fmt.Errorf("admin: register metrics: %w", err)
	}
	a.handler = a.routes()
	return a, nil
}

// Handler returns the HTTP handler of every endpoint.
func (a *Admin) Handler() http.Handler { return a.handler }

// Registry returns the Prometheus registry behind /metrics, for an
// embedder that adds collectors of its own.
func (a *Admin) Registry() *prometheus.Registry { return a.registry }

// ListenAndServe listens on the TCP address addr and serves the admin
// endpoints until ctx ends; see Serve.
func (a *Admin) ListenAndServe(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w", addr, err)
	}
	return a.Serve(ctx, l)
}

// shutdownTimeout bounds how long Serve waits for requests in progress
// once its context ends.
const shutdownTimeout = 5 * time.Second

// Serve serves the admin endpoints on l until ctx ends, then shuts down,
// letting requests in progress finish for a few seconds. It returns nil
// after a shutdown that ctx asked for, and the error otherwise.
//
// Without a Token, Serve refuses a listener that is not on a loopback
// address, unless Options.InsecureNoToken is set.
func (a *Admin) Serve(ctx context.Context, l net.Listener) error {
	if a.opts.Token == "" && !a.opts.InsecureNoToken && !isLoopbackAddr(l.Addr()) {
		return fmt.Errorf("admin: refusing to serve on %s without a token: anyone who reaches it could administer the broker; set a token (admin.token, GANNET_ADMIN_TOKEN), listen on a loopback address, or set admin.insecure_no_token", l.Addr())
	}
	hs := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second, // a scrape of a large broker takes a while
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	a.log.Info("admin listening", "addr", l.Addr().String(), "auth", a.opts.Token != "")
	select {
	case err := <-served:
		return fmt.Errorf("admin: serve on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	a.traces.close()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-served
	if err != nil {
		return fmt.Errorf("admin: shutdown: %w", err)
	}
	return nil
}

// routes builds the handler tree: the health checks and the dashboard's
// static files are open, the rest goes through requireToken.
func (a *Admin) routes() http.Handler {
	open := http.NewServeMux()
	open.HandleFunc("GET /healthz", a.healthz)
	open.HandleFunc("GET /readyz", a.readyz)
	a.dashboardRoutes(open)

	private := http.NewServeMux()
	private.Handle("GET /metrics", a.metricsHandler())
	methodNotAllowed(private, "/metrics", "GET")
	a.apiRoutes(private)
	a.opsRoutes(private)

	open.Handle("/metrics", a.requireToken(private))
	open.Handle("/api/", a.requireToken(private))
	var h http.Handler = open
	if a.opts.Token == "" {
		h = a.checkHost(open)
	}
	return securityHeaders(canonicalPaths(h))
}

// requireToken lets a request through when it carries the bearer token, or
// when no token is configured.
func (a *Admin) requireToken(next http.Handler) http.Handler {
	if a.opts.Token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(h, " ")
		if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gannet"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer TOKEN")
			return
		}
		// Hash first so that the comparison takes the same time whatever
		// the length of the token given.
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gannet", error="invalid_token"`)
			a.log.Warn("admin: bad token", "remote", r.RemoteAddr, "path", r.URL.Path)
			writeError(w, http.StatusUnauthorized, "invalid bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// healthz answers while the process runs.
func (a *Admin) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("ok\n"))
}

// readyz answers ok while the broker serves clients.
func (a *Admin) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if a.opts.Ready != nil {
		if err := a.opts.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
	}
	w.Write([]byte("ok\n"))
}

// securityHeaders keeps the admin pages out of frames and other origins'
// reach, and stops content sniffing.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}
