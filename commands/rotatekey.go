package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/keyfile"
	"github.com/totpadm/totpadm/models"
)

func (r *runner) rotateKeyCommand() *cli.Command {
	return &cli.Command{
		Name:  "rotate-key",
		Usage: "re-encrypt every TOTP secret under a new key",
		Description: `Re-encrypts every secret sealed with the current key (--key-file or TOTPADM_KEY)
under the key in --new-key-file, in batches, each batch one transaction with its
audit row. An interrupted run is resumed by running it again: secrets already
under the new key are skipped. Nothing changes if any secret is sealed with a key
that is neither the current nor the new one. Afterwards only the new key opens
the secrets: switch every configuration (and the application) to it.

Applications can keep verifying during the rotation by listing the other key in
models.Config.OldKeys.

Examples:
   totpadm keygen --out /etc/totpadm/key.new
   totpadm --key-file /etc/totpadm/key rotate-key --new-key-file /etc/totpadm/key.new
   mv /etc/totpadm/key.new /etc/totpadm/key`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "new-key-file", Usage: "`FILE` with the new key (mode 0600), as written by totpadm keygen --out"},
			&cli.IntFlag{Name: "batch-size", Value: models.DefaultBatchSize, Usage: "secrets per transaction"},
		},
		Action: r.rotateKey,
	}
}

func (r *runner) rotateKey(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("rotate-key: takes no arguments")
	}
	if err := r.storeCan(c, "rotate-key", canRotateKeys, "its framework keeps TOTP keys in plain text, so there is nothing to re-encrypt"); err != nil {
		return err
	}
	if c.String("new-key-file") == "" {
		return usagef("rotate-key: --new-key-file is required (make one with `totpadm keygen --out FILE`)")
	}
	if c.Int("batch-size") < 1 {
		return usagef("rotate-key: --batch-size must be at least 1")
	}
	newKey, err := keyfile.Read(c.String("new-key-file"), "")
	if err != nil {
		return err
	}
	sess, err := r.open(c, keyRequired)
	if err != nil {
		return err
	}
	defer sess.close()

	var bar *progress
	res, err := sess.store.(models.KeyRotator).RotateKey(c.Context, sess.db, newKey, c.Int("batch-size"), func(done, total int) {
		if bar == nil {
			bar = r.newProgress(total, "rotate-key")
		}
		bar.advanceTo(done)
	})
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(r.streams.Out, "re-encrypted %d secrets under key %s", res.Rotated, newKey.ID())
	if res.AlreadyNew > 0 {
		fmt.Fprintf(r.streams.Out, " (%d already were)", res.AlreadyNew)
	}
	fmt.Fprintf(r.streams.Out, "; use --key-file %s from now on: the old key opens nothing any more\n", c.String("new-key-file"))
	return nil
}
