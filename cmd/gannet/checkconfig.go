package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/gannet-mqtt/gannet/config"
)

// errCheckFailed makes check-config exit with status 1 once it has printed
// the problems itself.
var errCheckFailed = errors.New("configuration has errors")

// gannet check-config FILE loads a configuration file (YAML, or a
// mosquitto.conf, which it translates), validates it, reads the files it
// names (password, ACL and SCRAM users files, TLS certificates) and prints
// "FILE: OK" or every problem, one per line with its line number.
func newCheckConfigCmd() *cobra.Command {
	var printYAML bool
	cmd := &cobra.Command{
		Use:   "check-config FILE",
		Short: "Check a configuration file (YAML, or a mosquitto.conf to translate)",
		Long: `Check a configuration file without starting the broker. Every problem is
printed at once, with its line; the exit status is 1 if there is any.

A mosquitto.conf is translated: the options Gannet has no equivalent for are
printed as warnings, and --print shows the Gannet configuration it became.`,
		Args:          cobra.ExactArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return checkConfig(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], printYAML)
		},
	}
	cmd.Flags().BoolVar(&printYAML, "print", false, "print the configuration as YAML, defaults included, when it is valid")
	return cmd
}

func checkConfig(stdout, stderr io.Writer, path string, printYAML bool) error {
	f, err := config.Load(path)
	if f != nil {
		for _, w := range f.Warnings() {
			fmt.Fprintln(stderr, "warning: "+w.String())
		}
	}
	if err == nil {
		_, err = f.Build()
	}
	if err != nil {
		var errs config.Errors
		if !errors.As(err, &errs) {
			fmt.Fprintln(stderr, err)
			return errCheckFailed
		}
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		plural := "s"
		if len(errs) == 1 {
			plural = ""
		}
		fmt.Fprintf(stderr, "%s: %d error%s\n", path, len(errs), plural)
		return errCheckFailed
	}
	fmt.Fprintln(stdout, path+": OK")
	if printYAML {
		b, err := f.YAML()
		if err != nil {
			return err
		}
		stdout.Write(b)
	}
	return nil
}
