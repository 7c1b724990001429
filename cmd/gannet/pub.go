package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/topic"
)

// pubFlags are the flags of gannet pub beyond the shared ones.
type pubFlags struct {
	message string
	file    string
	lines   bool
	stdin   bool
	null    bool
	retain  bool
}

func newPubCmd() *cobra.Command {
	var f clientFlags
	var p pubFlags
	cmd := &cobra.Command{
		Use:   "pub -t topic (-m message | -f file | -l | -s | -n) [flags]",
		Short: "Publish MQTT messages (like mosquitto_pub)",
		Long: `Publish one message, or one per line of standard input, to an MQTT broker
and wait for it to be acknowledged at the chosen QoS. The flags are those of
mosquitto_pub; -h is the host, --help shows this help.

` + exitCodesHelp,
		Example: `  gannet pub -t sensors/temp -m 21.5
  gannet pub -h broker.example -p 1884 -q 1 -r -t status -m online
  gannet pub -L mqtt://user:secret@localhost/sensors/temp -m 21.5
  gannet pub -L wss://broker.example/mqtt --cafile ca.pem -t a/b -m hi
  tail -f log | gannet pub -t logs -l
  gannet pub -t status -n -r                   # clear a retained message
  gannet pub -V mqttv5 -t a/b -m hi -D publish user-property origin lab -D publish message-expiry-interval 60`,
		Args:         cobra.ArbitraryArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return finish(cmd, runPub(cmd, &f, &p, args))
		},
	}
	fs := cmd.Flags()
	f.register(fs, "gannet-pub")
	fs.StringVarP(&p.message, "message", "m", "", "message payload")
	fs.StringVarP(&p.file, "file", "f", "", "send the contents of a file as the message")
	fs.BoolVarP(&p.lines, "stdin-line", "l", false, "read standard input, send each line as a message (empty lines are skipped)")
	fs.BoolVarP(&p.stdin, "stdin-file", "s", false, "read standard input to its end, send it as one message")
	fs.BoolVarP(&p.null, "null-message", "n", false, "send a zero-length message")
	fs.BoolVarP(&p.retain, "retain", "r", false, "retain the message")
	return cmd
}

func runPub(cmd *cobra.Command, f *clientFlags, p *pubFlags, args []string) error {
	fs := cmd.Flags()
	sources := 0
	for _, name := range []string{"message", "file", "stdin-line", "stdin-file", "null-message"} {
		if fs.Changed(name) {
			sources++
		}
	}
	if sources != 1 {
		return usagef("give exactly one of -m, -f, -l, -s and -n")
	}
	conn, err := f.resolve(fs, "gannet-pub", args)
	if err != nil {
		return err
	}
	name := conn.topic
	switch {
	case len(f.topics) > 1, len(f.topics) == 1 && name != "":
		return usagef("gannet pub publishes to one topic: give -t once (or the topic in -L)")
	case len(f.topics) == 1:
		name = f.topics[0]
	}
	if name == "" {
		return usagef("no topic: give -t")
	}
	if !topic.ValidName(name) {
		return usagef("-t %q: a topic name has no + or # wildcard and is not empty", name)
	}

	var payload []byte
	switch {
	case fs.Changed("message"):
		payload = []byte(p.message)
	case p.file != "":
		if payload, err = os.ReadFile(p.file); err != nil {
			return &inputError{fmt.Errorf("-f: %w", err)}
		}
	case p.stdin:
		if payload, err = io.ReadAll(cmd.InOrStdin()); err != nil {
			return &inputError{fmt.Errorf("reading standard input: %w", err)}
		}
	}

	ctx, cancel := f.runContext(cmd.Context())
	defer cancel()
	c, err := client.Dial(ctx, conn.opts)
	if err != nil {
		return err
	}
	po := client.PublishOptions{QoS: byte(f.qos), Retain: p.retain, Properties: *conn.props.get("publish")}
	if p.lines {
		err = publishLines(ctx, c, name, cmd.InOrStdin(), po)
	} else {
		err = c.Publish(ctx, name, payload, po)
	}
	disconnect(c, conn.props)
	return err
}

// publishLines publishes each line of r, without its line ending, as a
// message; empty lines are skipped.
func publishLines(ctx context.Context, c *client.Client, name string, r io.Reader, po client.PublishOptions) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line = strings.TrimRight(line, "\r\n"); line != "" {
			if perr := c.Publish(ctx, name, []byte(line), po); perr != nil {
				return perr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &inputError{fmt.Errorf("reading standard input: %w", err)}
		}
	}
}
