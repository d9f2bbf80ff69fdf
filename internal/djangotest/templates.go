package djangotest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"

	"gorm.io/gorm"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/internal/testutil"
)

// Django's migrate takes one to two and a half seconds; a database that
// Django migrated once serves as the template of every test's database:
// PostgreSQL copies it (CREATE DATABASE … TEMPLATE), MySQL gets its tables
// re-created from SHOW CREATE TABLE with their rows. The templates stay on
// the server, one per Django version and settings (the name says which),
// built under an advisory lock so that concurrent test processes build
// each once.
var (
	pgTemplate = sync.OnceValues(func() (string, error) { return serverTemplate("postgres") })
	myTemplate = sync.OnceValues(func() (string, error) { return serverTemplate("mysql") })
)

// myReady marks a complete MySQL template (it has no atomic rename); it
// is not copied.
const myReady = "djangotest_ready"

func templateName() (string, error) {
	v, err := versions()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(v + "\x00" + settingsText("{}") + "\x00" + myReady))
	return "djangotest_tpl_" + hex.EncodeToString(sum[:6]), nil
}

func serverTemplate(backend string) (string, error) {
	name, err := templateName()
	if err != nil {
		return "", err
	}
	env := map[string]string{"postgres": testutil.PostgresEnv, "mysql": testutil.MySQLEnv}[backend]
	base := os.Getenv(env)
	target, err := config.ParseTarget(base)
	if err != nil {
		return "", err
	}
	ctx := context.Background()
	admin, err := config.Open(ctx, target, config.OpenOptions{})
	if err != nil {
		return "", err
	}
	defer config.Close(admin)
	sqlDB, err := admin.DB()
	if err != nil {
		return "", err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()

	sum := sha256.Sum256([]byte(name))
	lock, unlock, exists := "SELECT pg_advisory_lock($1)", "SELECT pg_advisory_unlock($1)", "SELECT COUNT(*) FROM pg_database WHERE datname = $1"
	lockArg := any(int64(binary.BigEndian.Uint64(sum[:8])))
	existsArg := name
	if backend == "mysql" {
		lock, unlock = "SELECT GET_LOCK(?, 600)", "SELECT RELEASE_LOCK(?)"
		exists = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = '" + myReady + "'"
		lockArg = name
	}
	if _, err := conn.ExecContext(ctx, lock, lockArg); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}
	defer conn.ExecContext(ctx, unlock, lockArg) //nolint:errcheck // the connection's end releases it too
	var n int
	if err := conn.QueryRowContext(ctx, exists, existsArg).Scan(&n); err != nil {
		return "", err
	}
	if n > 0 {
		return name, nil
	}

	// PostgreSQL: build under another name and rename, so the template's
	// name exists only for a complete one. MySQL: build in place, then
	// mark it complete.
	build := name
	if backend == "postgres" {
		build = name + "_build"
	}
	drop := "DROP DATABASE IF EXISTS " + build
	create := "CREATE DATABASE " + build
	if backend == "mysql" {
		create += " CHARACTER SET utf8mb4"
	}
	for _, q := range []string{drop, create} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return "", fmt.Errorf("%s: %w", q, err)
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + build
	settings := pgSettings(u)
	if backend == "mysql" {
		settings = mySettings(u)
	}
	dir, err := os.MkdirTemp("", "djangotest-template-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	p := &Project{Backend: backend, Dir: dir}
	if err := p.write(settings); err != nil {
		return "", err
	}
	cmd := exec.Command(Python, "-m", "django", "migrate", "--noinput", "-v", "0")
	cmd.Dir, cmd.Env = p.Dir, p.env
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("django migrate: %v\n%s", err, out)
	}
	finish := "ALTER DATABASE " + build + " RENAME TO " + name
	if backend == "mysql" {
		finish = "CREATE TABLE " + name + "." + myReady + " (ok INT)"
	}
	if _, err := conn.ExecContext(ctx, finish); err != nil {
		return "", fmt.Errorf("%s: %w", finish, err)
	}
	return name, nil
}

// myClone creates database name with the tables and rows of tpl: each
// table as SHOW CREATE TABLE defines it (columns, indexes, foreign keys,
// charset, exactly as Django's migrate made them), foreign key checks off
// while the rows are copied.
func myClone(admin *gorm.DB, tpl, name string) error {
	ctx := context.Background()
	sqlDB, err := admin.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tables, err := myTables(ctx, conn, tpl)
	if err != nil {
		return err
	}
	stmts := []string{"CREATE DATABASE " + name + " CHARACTER SET utf8mb4", "USE " + name, "SET FOREIGN_KEY_CHECKS = 0"}
	for _, table := range tables {
		var tn, ddl string
		if err := conn.QueryRowContext(ctx, "SHOW CREATE TABLE `"+tpl+"`.`"+table+"`").Scan(&tn, &ddl); err != nil {
			return fmt.Errorf("show create table %s: %w", table, err)
		}
		stmts = append(stmts, ddl, "INSERT INTO `"+table+"` SELECT * FROM `"+tpl+"`.`"+table+"`")
	}
	// The connection goes back to the pool: checks on again.
	stmts = append(stmts, "SET FOREIGN_KEY_CHECKS = 1")
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", strings.SplitN(q, "\n", 2)[0], err)
		}
	}
	// The pooled connection keeps USE name; the admin connection only
	// drops the database, by its full name, which works from any.
	return nil
}

func myTables(ctx context.Context, conn *sql.Conn, schema string) ([]string, error) {
	rows, err := conn.QueryContext(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_name <> '"+myReady+"' ORDER BY table_name", schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
