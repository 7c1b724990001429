package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gannet-mqtt/gannet/broker"
)

func newServeCmd() *cobra.Command {
	opts := broker.DefaultOptions()
	var listen []string
	var logLevel string
	cmd := &cobra.Command{
		Use:           "gannet",
		Short:         "Gannet, an MQTT 3.1, 3.1.1 and 5.0 broker",
		Long:          "Gannet is an MQTT broker. Run without arguments it listens on 127.0.0.1:1883 and allows anonymous clients.",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: false,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: use debug, info, warn or error", logLevel)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			opts.Logger = log
			return serve(cmd.Context(), opts, listen, log)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&listen, "listen", []string{"127.0.0.1:1883"}, "TCP address to listen on (repeat for several listeners)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.DurationVar(&opts.ConnectTimeout, "connect-timeout", opts.ConnectTimeout, "time a new connection has to send CONNECT")
	f.IntVar(&opts.MaxPacketSize, "max-packet-size", opts.MaxPacketSize, "largest packet accepted, in bytes")
	f.IntVar(&opts.MaxInflight, "max-inflight", opts.MaxInflight, "unacknowledged QoS 1/2 messages per client")
	f.IntVar(&opts.MaxQueued, "max-queued", opts.MaxQueued, "QoS 1/2 messages queued per session beyond the inflight window")
	f.IntVar(&opts.MaxConnections, "max-connections", opts.MaxConnections, "concurrent connections (0: no limit)")
	f.IntVar(&opts.MaxTopicLength, "max-topic-length", opts.MaxTopicLength, "longest topic name or filter, in bytes")
	f.IntVar(&opts.MaxTopicLevels, "max-topic-levels", opts.MaxTopicLevels, "most levels in a topic name or filter (0: no limit)")
	return cmd
}

func serve(ctx context.Context, opts broker.Options, listen []string, log *slog.Logger) error {
	srv, err := broker.New(opts)
	if err != nil {
		return err
	}
	var ls []net.Listener
	for _, addr := range listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return fmt.Errorf("cannot listen on %s: %w (is another broker running there? choose another address with --listen)", addr, err)
		}
		ls = append(ls, l)
	}
	log.Info("gannet "+version+" started", "listeners", listen)
	for _, l := range ls {
		if tcp, ok := l.Addr().(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
			log.Info("listening on loopback only; to accept clients from other machines, start with --listen 0.0.0.0:" + fmt.Sprint(tcp.Port))
		}
	}
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() { errc <- srv.Serve(l) }()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
		log.Info("shutting down: signal received")
	case err := <-errc:
		if !errors.Is(err, broker.ErrServerClosed) {
			log.Error("listener failed, shutting down", "error", err)
			srv.Close()
			return err
		}
	}
	return srv.Close()
}
