package main

import (
	"bufio"
	"context"
	"errors"
	"sync"

	"github.com/spf13/cobra"

	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/packet"
)

// subFlags are the flags of gannet sub beyond the shared ones.
type subFlags struct {
	verbose           bool
	count             int
	noRetained        bool
	noNewline         bool
	exitAfterSub      bool
	noLocal           bool
	retainAsPublished bool
	retainHandling    int
}

func newSubCmd() *cobra.Command {
	var f clientFlags
	var s subFlags
	cmd := &cobra.Command{
		Use:   "sub -t filter [-t filter...] [flags]",
		Short: "Subscribe to MQTT topics and print the messages (like mosquitto_sub)",
		Long: `Subscribe to one or more topic filters and print each message received: its
payload, or with -v its topic and payload separated by a space, one message
per line. The flags are those of mosquitto_sub; -h is the host, --help shows
this help. Interrupting (Ctrl-C) disconnects and exits with 0.

` + exitCodesHelp,
		Example: `  gannet sub -t 'sensors/#' -v
  gannet sub -t status -C 1 -W 5               # wait at most 5 s for one message
  gannet sub -L mqtts://user:secret@broker.example/alerts/+ --cafile ca.pem
  gannet sub -t a -t b -q 1 -c -i logger       # persistent session
  gannet sub -V mqttv5 -t 'a/#' --no-local -D subscribe subscription-identifier 7`,
		Args:         cobra.ArbitraryArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return finish(cmd, runSub(cmd, &f, &s, args))
		},
	}
	fs := cmd.Flags()
	f.register(fs, "gannet-sub")
	fs.BoolVarP(&s.verbose, "verbose", "v", false, "print the topic before the payload")
	fs.IntVarP(&s.count, "count", "C", 0, "exit after this many messages")
	fs.BoolVarP(&s.noRetained, "no-retained", "R", false, "do not print stale messages (those with the retain flag)")
	fs.BoolVarP(&s.noNewline, "no-newline", "N", false, "do not print a newline after each payload")
	fs.BoolVarP(&s.exitAfterSub, "exit-after-sub", "E", false, "exit once subscribed")
	fs.BoolVar(&s.noLocal, "no-local", false, "MQTT 5.0: not the messages this client publishes")
	fs.BoolVar(&s.retainAsPublished, "retain-as-published", false, "MQTT 5.0: keep the retain flag of forwarded messages")
	fs.IntVar(&s.retainHandling, "retain-handling", 0, "MQTT 5.0: 0 send retained messages, 1 only for new subscriptions, 2 never")
	return cmd
}

func runSub(cmd *cobra.Command, f *clientFlags, s *subFlags, args []string) error {
	conn, err := f.resolve(cmd.Flags(), "gannet-sub", args)
	if err != nil {
		return err
	}
	filters := f.topics
	if conn.topic != "" {
		filters = append([]string{conn.topic}, filters...)
	}
	if len(filters) == 0 {
		return usagef("no topic: give -t")
	}
	if s.count < 0 {
		return usagef("-C %d: the count must not be negative", s.count)
	}
	if s.retainHandling < 0 || s.retainHandling > 2 {
		return usagef("--retain-handling %d: use 0, 1 or 2", s.retainHandling)
	}
	if conn.opts.Version < packet.V5 && (s.noLocal || s.retainAsPublished || s.retainHandling != 0) {
		return usagef("--no-local, --retain-as-published and --retain-handling need -V mqttv5")
	}

	out := bufio.NewWriter(cmd.OutOrStdout())
	var (
		mu      sync.Mutex
		printed int
		done    = make(chan struct{})
		outErr  error
	)
	show := func(m *client.Message) {
		if s.noRetained && m.Retain {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if s.count > 0 && printed >= s.count || outErr != nil {
			return
		}
		if s.verbose {
			out.WriteString(m.Topic)
			out.WriteByte(' ')
		}
		out.Write(m.Payload)
		if !s.noNewline {
			out.WriteByte('\n')
		}
		if outErr = out.Flush(); outErr != nil {
			close(done)
			return
		}
		printed++
		if s.count > 0 && printed == s.count {
			close(done)
		}
	}
	conn.opts.OnMessage = show // messages of a resumed session

	ctx, cancel := f.runContext(cmd.Context())
	defer cancel()
	c, err := client.Dial(ctx, conn.opts)
	if err != nil {
		return err
	}
	subs := make([]client.Subscription, len(filters))
	for i, filter := range filters {
		subs[i] = client.Subscription{
			Filter:            filter,
			QoS:               byte(f.qos),
			NoLocal:           s.noLocal,
			RetainAsPublished: s.retainAsPublished,
			RetainHandling:    byte(s.retainHandling),
			Handler:           show,
		}
	}
	if _, err := c.SubscribeWith(ctx, *conn.props.get("subscribe"), subs...); err != nil {
		disconnect(c, conn.props)
		if errors.Is(err, client.ErrInvalidTopic) {
			return usagef("%v", err)
		}
		return err
	}
	if s.exitAfterSub {
		disconnect(c, conn.props)
		return nil
	}
	select {
	case <-done:
		mu.Lock()
		err = outErr
		mu.Unlock()
	case <-c.Done():
		return c.Err()
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.Canceled) {
			err = nil // interrupted: the normal way to stop
		} else {
			err = ctx.Err()
		}
	}
	disconnect(c, conn.props)
	return err
}
