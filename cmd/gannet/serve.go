package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gannet-mqtt/gannet/admin"
	"github.com/gannet-mqtt/gannet/bridge"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/cluster"
	"github.com/gannet-mqtt/gannet/config"
	"github.com/gannet-mqtt/gannet/listener"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/memory"
	"github.com/gannet-mqtt/gannet/store/pebble"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gannet",
		Short: "Gannet, an MQTT 3.1, 3.1.1 and 5.0 broker",
		Long: `Gannet is an MQTT broker. Run without arguments it listens on 127.0.0.1:1883,
allows anonymous clients and keeps its state in ./data.

Configuration comes from, in order of precedence: the flags below, GANNET_*
environment variables (GANNET_LIMITS_MAX_INFLIGHT=100, GANNET_ADMIN_TOKEN=...),
the file given with --config (YAML, see gannet.example.yaml, or a
mosquitto.conf), and the defaults. SIGHUP reloads passwords, ACL, TLS
certificates, limits, bridges and webhooks without dropping connections.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	flags := config.AddFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return serve(cmd.Context(), flags)
	}
	return cmd
}

// resolve reads the configuration and prints its warnings.
func resolve(flags *config.Flags) (*config.File, *config.Runtime, error) {
	f, err := config.Resolve(flags.Config, os.Environ(), flags)
	if f != nil {
		for _, w := range f.Warnings() {
			fmt.Fprintln(os.Stderr, "warning:", w)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	rt, err := f.Build()
	if err != nil {
		return nil, nil, err
	}
	rt.BrokerOptions.Version = version
	return f, rt, nil
}

// openStore opens the store the configuration names.
func openStore(rt *config.Runtime, log *slog.Logger) (store.Store, error) {
	if rt.Store.Type == "memory" {
		return memory.New(), nil
	}
	opts := pebble.DefaultOptions()
	fs, err := pebble.ParseFsync(rt.Store.Fsync)
	if err != nil {
		return nil, err
	}
	opts.Fsync, opts.Logger = fs, log
	if rt.Store.FsyncInterval > 0 {
		opts.Interval = rt.Store.FsyncInterval
	}
	st, err := pebble.Open(rt.Store.DataDir, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot open the data directory %s: %w (use --data-dir for another directory, or --store memory to keep nothing on disk)", rt.Store.DataDir, err)
	}
	return st, nil
}

func serve(ctx context.Context, flags *config.Flags) error {
	_, rt, err := resolve(flags)
	if err != nil {
		return err
	}
	log := rt.Logger
	st, err := openStore(rt, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing the store failed", "error", err)
		}
	}()
	rt.BrokerOptions.Store = st
	if rt.Admin.Address != "" {
		rt.BrokerOptions.Store = admin.MeteredStore(st)
	}
	if rt.Cluster != nil {
		cl, err := cluster.New(*rt.Cluster)
		if err != nil {
			return fmt.Errorf("cannot join cluster %q: %w", rt.Cluster.Name, err)
		}
		rt.BrokerOptions.Cluster = cl // closed by srv.Close
		log.Info("joining cluster", "cluster", rt.Cluster.Name, "node", rt.Cluster.Node, "route_listener", cl.RouteAddr(), "routes", rt.Cluster.Routes, "replicas", rt.Cluster.Replicas, "nats_url", rt.Cluster.NATSURL)
	}
	srv, err := broker.New(rt.BrokerOptions)
	if err != nil {
		if c, ok := rt.BrokerOptions.Cluster.(*cluster.Cluster); ok {
			c.Close()
		}
		return err
	}
	hooks := &webhookSet{srv: srv, log: log} // replaced on reload (webhooks.go)
	if err := hooks.apply(rt.Webhooks); err != nil {
		srv.Close()
		return err
	}
	defer hooks.Close() // after srv.Close: the last events go out
	if len(rt.Webhooks) > 0 {
		log.Info("webhooks started", "count", len(rt.Webhooks))
	}

	var ls []*listener.Listener
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	for _, rl := range rt.Listeners {
		l, err := listener.Listen(rl.Config)
		if err != nil {
			closeAll()
			srv.Close()
			return fmt.Errorf("cannot listen on %s (%s): %w (is another broker running there? choose another address with --listen)", rl.Config.Address, rl.Config.Type, err)
		}
		ls = append(ls, l)
	}
	log.Info("gannet "+version+" started", "listeners", listenerNames(ls), "store", rt.Store.Type, "data_dir", rt.Store.DataDir)
	for _, l := range ls {
		if tcp, ok := l.Addr().(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
			log.Info(fmt.Sprintf("listening on loopback only; to accept clients from other machines, start with --listen 0.0.0.0:%d", tcp.Port))
		}
	}
	errc := make(chan error, len(ls)+1)
	for i, l := range ls {
		go func() { errc <- srv.ServeListener(l, rt.Listeners[i].ListenerOptions) }()
	}
	bridges := bridge.NewManager(srv, log)
	bridges.StartSys(rt.BrokerOptions.SysInterval)
	defer bridges.Close() // before the broker closes: deferred calls run last first
	if err := bridges.Apply(rt.Bridges); err != nil {
		log.Error("some bridges did not start", "error", err)
	}
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	defer stopAdmin()
	if rt.Admin.Address != "" {
		a, err := admin.New(srv, admin.Options{Token: rt.Admin.Token, AllowedHosts: rt.Admin.AllowedHosts, InsecureNoToken: rt.Admin.InsecureNoToken, Logger: log, Bridges: adminBridges{bridges}, TraceDir: filepath.Join(rt.Store.DataDir, "traces"), Ready: func() error {
			if !srv.Serving() {
				return errors.New("not serving")
			}
			return nil
		}})
		if err != nil {
			srv.Close()
			closeAll()
			return err
		}
		if err := a.Registry().Register(hooks.Collector()); err != nil {
			log.Warn("webhook metrics not registered", "error", err)
		}
		if rt.Admin.Token == "" {
			log.Warn("admin listener has no token: anyone who reaches " + rt.Admin.Address + " can administer the broker; set admin.token (requests naming it by a host name other than localhost or admin.allowed_hosts are refused)")
		}
		go func() {
			if err := a.ListenAndServe(adminCtx, rt.Admin.Address); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("admin listener %s: %w", rt.Admin.Address, err)
			}
		}()
		log.Info("admin listener started", "address", rt.Admin.Address)
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down: signal received")
			bridges.Close()
			return srv.Close()
		case <-hup:
			reload(flags, srv, ls, bridges, hooks, log)
		case err := <-errc:
			if errors.Is(err, broker.ErrServerClosed) {
				continue
			}
			log.Error("listener failed, shutting down", "error", err)
			srv.Close()
			return err
		}
	}
}

// reload re-reads the configuration on SIGHUP and applies what can change
// while running; an invalid configuration keeps the old one.
func reload(flags *config.Flags, srv *broker.Server, ls []*listener.Listener, bridges *bridge.Manager, hooks *webhookSet, log *slog.Logger) {
	_, rt, err := resolve(flags)
	if err != nil {
		log.Error("reload refused: the new configuration is invalid; keeping the old one", "error", err)
		return
	}
	rt.BrokerOptions.Logger = log
	if err := srv.Reload(rt.BrokerOptions); err != nil {
		log.Error("reload refused; keeping the old configuration", "error", err)
		return
	}
	for _, l := range ls {
		if err := l.Reload(); err != nil {
			log.Error("TLS certificates not reloaded; keeping the old ones", "listener", l.Name(), "error", err)
		}
	}
	// Added, removed and changed bridges; the others keep their connection.
	if err := bridges.Apply(rt.Bridges); err != nil {
		log.Error("bridges not all reloaded", "error", err)
	}
	if err := hooks.apply(rt.Webhooks); err != nil {
		log.Error("webhooks not reloaded; keeping the old ones", "error", err)
	}
}

func listenerNames(ls []*listener.Listener) string {
	var names []string
	for _, l := range ls {
		names = append(names, string(l.Type())+"://"+l.Addr().String())
	}
	return strings.Join(names, ",")
}
