package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gannet-mqtt/gannet/auth"
)

// gannet passwd manages a password file, like mosquitto_passwd:
//
//	gannet passwd -c FILE USER      create FILE with USER (asks for the password)
//	gannet passwd FILE USER         add or change USER
//	gannet passwd -b FILE USER PW   password on the command line
//	gannet passwd -D FILE USER      delete USER
func newPasswdCmd() *cobra.Command {
	var create, batch, del bool
	cmd := &cobra.Command{
		Use:   "passwd [-c] [-b] [-D] FILE USER [PASSWORD]",
		Short: "Add, change or delete users in a password file (argon2id)",
		Long: `Manage a Gannet password file. Passwords are stored as argon2id hashes;
files written by mosquitto_passwd ($6$ and $7$ hashes) are read and kept.

Examples:
  gannet passwd -c /etc/gannet/passwd alice       create the file, ask for alice's password
  gannet passwd /etc/gannet/passwd bob            add bob (or change his password)
  gannet passwd -b /etc/gannet/passwd carol s3cr  password given on the command line
  gannet passwd -D /etc/gannet/passwd bob         delete bob`,
		Args:          cobra.RangeArgs(2, 3),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			file, user := args[0], args[1]
			if batch != (len(args) == 3) {
				return errors.New("give the password as the third argument exactly when -b is set")
			}
			var pf *auth.PasswordFile
			if create {
				pf = auth.NewPasswordFile()
			} else {
				var err error
				if pf, err = auth.LoadPasswordFile(file); err != nil {
					if errors.Is(err, os.ErrNotExist) {
						return fmt.Errorf("%s does not exist: create it with -c", file)
					}
					return err
				}
			}
			if del {
				if !pf.Delete(user) {
					return fmt.Errorf("user %q is not in %s", user, file)
				}
				return pf.WriteFile(file)
			}
			var pw []byte
			if batch {
				pw = []byte(args[2])
			} else {
				var err error
				if pw, err = readPassword(cmd.InOrStdin(), cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			if err := pf.Set(user, pw); err != nil {
				return err
			}
			return pf.WriteFile(file)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&create, "create", "c", false, "create a new file (overwrites an existing one)")
	f.BoolVarP(&batch, "batch", "b", false, "take the password from the command line")
	f.BoolVarP(&del, "delete", "D", false, "delete the user")
	return cmd
}

// readPassword asks twice on a terminal, or reads one line from a pipe.
func readPassword(in io.Reader, prompt io.Writer) ([]byte, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return nil, err
		}
		fmt.Fprint(prompt, "Reenter password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return nil, err
		}
		if string(a) != string(b) {
			return nil, errors.New("passwords do not match")
		}
		return a, nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return nil, errors.New("no password on standard input")
	}
	return []byte(strings.TrimRight(line, "\r\n")), nil
}
