package commands

import (
	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/models"
)

// bareStore is the configured store over a service without a key or a
// users-table probe: enough to check its schema, migrate it, or ask what
// it can do.
func (st settings) bareStore() (models.Store, error) {
	svc, err := models.NewService(st.svc)
	if err != nil {
		return nil, usageError{err}
	}
	store, err := models.NewStore(st.store, svc)
	if err != nil {
		return nil, usageError{err}
	}
	return store, nil
}

// storeCan refuses, before anything is opened or read, a command that the
// configured store cannot do, in one line that says why (exit 2). An
// unknown --store passes here and is refused with the other settings.
func (r *runner) storeCan(c *cli.Context, command string, can func(models.Store) bool, why string) error {
	if models.CheckStoreName(c.String(flagStore)) != nil {
		return nil
	}
	svc, err := models.NewService(models.DefaultConfig())
	if err != nil {
		return err
	}
	store, err := models.NewStore(c.String(flagStore), svc)
	if err != nil || can(store) {
		return err
	}
	return usagef("%s does not apply to the %s store: %s", command, store.Info().Name, why)
}

func canRotateKeys(s models.Store) bool     { _, ok := s.(models.KeyRotator); return ok }
func canIssueTempCodes(s models.Store) bool { _, ok := s.(models.TempCodeIssuer); return ok }
func canDiagnose(s models.Store) bool       { _, ok := s.(models.Diagnoser); return ok }
func isNativeStore(s models.Store) bool     { return s.Info().Name == models.StoreTotpadm }
