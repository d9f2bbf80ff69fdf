package commands

import (
	"crypto/rand"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/keyfile"
	"github.com/totpadm/totpadm/models"
)

func (r *runner) keygenCommand() *cli.Command {
	return &cli.Command{
		Name:  "keygen",
		Usage: "print a new random encryption key (AES-256, base64)",
		Description: `Generates a 256-bit key for encrypting TOTP secrets at rest. Keep it apart from
the database: a stolen database is useless without it. With --out the key is
written to a new file with mode 0600 (an existing file is never overwritten).

Examples:
   totpadm keygen --out /etc/totpadm/key && totpadm --key-file /etc/totpadm/key enroll alice
   export TOTPADM_KEY="$(totpadm keygen)"`,
		Flags:  []cli.Flag{&cli.StringFlag{Name: "out", Usage: "write the key to `FILE` (mode 0600) instead of stdout"}},
		Action: r.keygen,
	}
}

func (r *runner) keygen(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("keygen: takes no arguments")
	}
	key, err := models.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if out := c.String("out"); out != "" {
		if err := keyfile.Write(out, key); err != nil {
			return err
		}
		fmt.Fprintf(r.streams.Err, "totpadm: wrote a new key to %s (mode 0600); back it up: without it no secret can be read\n", out)
		return nil
	}
	_, err = fmt.Fprintln(r.streams.Out, key)
	return err
}
