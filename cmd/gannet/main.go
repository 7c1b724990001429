// Command gannet is the Gannet MQTT broker and its tools.
//
//	gannet                      start the broker (127.0.0.1:1883 by default)
//	gannet --listen 0.0.0.0:1883
//	gannet version
//	gannet cluster status --admin http://127.0.0.1:8080
package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	root := newServeCmd()
	root.AddCommand(newVersionCmd(), newBenchCmd())
	root.AddCommand(newPubCmd(), newSubCmd())
	root.AddCommand(newPasswdCmd())
	root.AddCommand(newCheckConfigCmd())
	root.AddCommand(newClusterCmd())
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the Gannet version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			cmd.Println("gannet " + version)
		},
	}
}
