package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
)

// Least privilege: the SQL that lets a database role run totpadm and
// nothing more, and the check that a connected role cannot rewrite the
// audit log. Both only read the database.

var (
	// ErrNoRoles: SQLite has no database roles; the database file's
	// permissions are its only access control.
	ErrNoRoles = errors.New("SQLite has no database roles: the database file's permissions are its access control")
	// ErrInvalidRole: a role name that cannot name a role safely.
	ErrInvalidRole = errors.New("invalid role")
	// ErrRoleUnlimited: the role already holds, beyond any GRANT, the power
	// to rewrite the audit log (a superuser, the owner of totpadm's tables
	// or their schema, an account with database-wide or global rights), so
	// no GRANT can make the audit log append-only for it.
	ErrRoleUnlimited = errors.New("no GRANT can limit this role")
)

// GrantOptions say which role the SQL is for and what it may do.
type GrantOptions struct {
	// Role is a PostgreSQL role name, or a MySQL/MariaDB account as
	// name@host or name (meaning name@%).
	Role string
	// ReadOnly limits the role to what status and audit need: SELECT.
	ReadOnly bool
}

// GrantPlan is the SQL for one role, in the order it is to be run.
type GrantPlan struct {
	Dialect    string   // "postgres" or "mysql"
	Role       string   // the role as the statements name it, quoted
	Statements []string // without a trailing semicolon
}

// Limits of the names the servers accept: PostgreSQL truncates a longer
// identifier (to another role's name, perhaps), so it is refused here.
const (
	maxPostgresName  = 63 // NAMEDATALEN - 1, in bytes
	maxMySQLUserName = 80 // MariaDB's limit; MySQL's is 32 and it says so
	maxMySQLHost     = 255
)

// QuoteRole validates role for the dialect ("postgres" or "mysql") and
// returns it quoted as GRANT names it: "role" on PostgreSQL, 'name'@'host'
// on MySQL/MariaDB, where a name without @ means name@% (any host), as in
// MySQL's own CREATE USER. For "sqlite" it returns ErrNoRoles once the
// name itself is valid.
func QuoteRole(dialectName, role string) (string, error) {
	if strings.TrimSpace(role) == "" {
		return "", fmt.Errorf("%w: the role must not be empty", ErrInvalidRole)
	}
	if !utf8.ValidString(role) {
		return "", fmt.Errorf("%w: %q is not valid UTF-8 text", ErrInvalidRole, role)
	}
	if i := strings.IndexFunc(role, unicode.IsControl); i >= 0 {
		return "", fmt.Errorf("%w: %q contains a control character", ErrInvalidRole, role)
	}
	switch dialectName {
	case "sqlite":
		return "", ErrNoRoles
	case "postgres":
		return quotePostgresRole(role)
	case "mysql":
		return quoteMySQLAccount(role)
	default:
		return "", fmt.Errorf("unsupported database %q (want postgres or mysql)", dialectName)
	}
}

func quotePostgresRole(role string) (string, error) {
	switch lower := strings.ToLower(role); {
	case lower == "public":
		// GRANT … TO "public" grants to every role, quoted or not.
		return "", fmt.Errorf("%w: %q would grant to every role (PUBLIC)", ErrInvalidRole, role)
	case lower == "none":
		return "", fmt.Errorf("%w: %q is reserved", ErrInvalidRole, role)
	case strings.HasPrefix(lower, "pg_"):
		return "", fmt.Errorf("%w: %q is a predefined role (pg_*); name the role that runs totpadm", ErrInvalidRole, role)
	case len(role) > maxPostgresName:
		return "", fmt.Errorf("%w: %q is longer than PostgreSQL's %d bytes", ErrInvalidRole, role, maxPostgresName)
	}
	return pgDialect.quote(role), nil
}

var pgDialect = dialect{name: "postgres", quoteC: '"'}

// quoteMySQLAccount splits name@host at its last @ (a host never holds
// one) and quotes both parts as strings. Quotes and backslashes are
// refused rather than escaped: what a backslash means in a MySQL string
// depends on the session's sql_mode (NO_BACKSLASH_ESCAPES), and no real
// account name holds either.
func quoteMySQLAccount(role string) (string, error) {
	name, host := role, "%"
	if i := strings.LastIndexByte(role, '@'); i >= 0 {
		name, host = role[:i], role[i+1:]
	}
	switch {
	case name == "":
		return "", fmt.Errorf("%w: %q has no user name (the anonymous account is never a role to grant to)", ErrInvalidRole, role)
	case host == "":
		return "", fmt.Errorf("%w: %q has no host after @ (write name@host, or name for name@%%)", ErrInvalidRole, role)
	case strings.ContainsAny(role, "'\"`\\"):
		return "", fmt.Errorf("%w: %q: write the account as name@host, without quotes or backslashes", ErrInvalidRole, role)
	case utf8.RuneCountInString(name) > maxMySQLUserName:
		return "", fmt.Errorf("%w: user name %q is longer than %d characters", ErrInvalidRole, name, maxMySQLUserName)
	case utf8.RuneCountInString(host) > maxMySQLHost:
		return "", fmt.Errorf("%w: host %q is longer than %d characters", ErrInvalidRole, host, maxMySQLHost)
	}
	return "'" + name + "'@'" + host + "'", nil
}

// Grants returns the SQL that gives an existing role exactly what the
// commands need: SELECT on the mapped users-table columns only (id,
// login, email), SELECT, INSERT, UPDATE and DELETE on the credentials and
// backup codes, SELECT on the schema version, and SELECT and INSERT only
// on the audit log, so that the role can add and read audit rows but
// never change or remove one. With ReadOnly, SELECT on all of them and
// nothing else.
//
// On totpadm's own tables the statements first take away whatever the
// role held there, so that a re-run, or a --read-only run for a role that
// could write, leaves exactly these privileges. The application's users
// table only ever gains the column grant. Nothing is created: the role
// must exist (and on MariaDB the SQL makes sure GRANT cannot create an
// account). Grants reads the catalog and runs none of the statements.
func Grants(ctx context.Context, db *gorm.DB, t Tables, u UsersTable, opt GrantOptions) (GrantPlan, error) {
	d, err := dialectOf(db)
	if err != nil {
		return GrantPlan{}, err
	}
	role, err := QuoteRole(d.name, opt.Role)
	if err != nil {
		return GrantPlan{}, err
	}
	if err := u.Validate(); err != nil {
		return GrantPlan{}, err
	}
	if err := CheckSchema(ctx, db, t); err != nil {
		return GrantPlan{}, err
	}
	db = db.WithContext(ctx)
	columns := u.columns()
	quotedCols := make([]string, len(columns))
	for i, c := range columns {
		quotedCols[i] = d.quote(c)
	}
	// The mapping must name real columns, or the GRANT fails half-way.
	probe := fmt.Sprintf("SELECT %s FROM %s WHERE 1 = 0", strings.Join(quotedCols, ", "), d.quote(u.Table))
	if err := db.Exec(probe).Error; err != nil {
		return GrantPlan{}, fmt.Errorf("read %s through the mapping: %w", u.Table, err)
	}
	plan := GrantPlan{Dialect: d.name, Role: role}
	switch d.name {
	case "postgres":
		plan.Statements, err = postgresGrants(db, t, u, quotedCols, role, opt)
	default:
		plan.Statements, err = mysqlGrants(db, t, u, quotedCols, role, opt)
	}
	if err != nil {
		return GrantPlan{}, err
	}
	return plan, nil
}

// columns are the users-table columns totpadm reads, each once.
func (u UsersTable) columns() []string {
	cols := []string{u.IDColumn}
	for _, c := range []string{u.LoginColumn, u.EmailColumn, u.ProtectedColumn} {
		if c != "" && !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
	}
	return cols
}

// tablePrivileges is what the role gets on each of totpadm's tables.
func tablePrivileges(t Tables, readOnly bool) [][2]string {
	if readOnly {
		return [][2]string{
			{t.Credentials, "SELECT"}, {t.BackupCodes, "SELECT"},
			{t.AuditLog, "SELECT"}, {t.SchemaVersion, "SELECT"},
			{t.TempCodes, "SELECT"},
		}
	}
	return [][2]string{
		{t.Credentials, "SELECT, INSERT, UPDATE, DELETE"},
		{t.BackupCodes, "SELECT, INSERT, UPDATE, DELETE"},
		{t.AuditLog, "SELECT, INSERT"}, // append-only: never UPDATE or DELETE
		{t.SchemaVersion, "SELECT"},
		{t.TempCodes, "SELECT, INSERT, UPDATE, DELETE"},
	}
}

// pgName is a relation resolved through the catalog: its real schema and
// name, whatever search_path found it.
type pgName struct{ schema, name string }

func (n pgName) String() string { return pgDialect.quote(n.schema) + "." + pgDialect.quote(n.name) }

// pgResolve finds the relation a configured name means for this
// connection (search_path included).
func pgResolve(db *gorm.DB, name string) (pgName, error) {
	var rows []struct{ Schema, Name string }
	err := db.Raw(`SELECT n.nspname AS schema, c.relname AS name
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(?)`, pgDialect.quote(name)).Scan(&rows).Error
	if err != nil {
		return pgName{}, fmt.Errorf("look up %s: %w", name, err)
	}
	if len(rows) == 0 {
		return pgName{}, fmt.Errorf("look up %s: no such table", name)
	}
	return pgName{rows[0].Schema, rows[0].Name}, nil
}

// pgSerialSequence finds the sequence behind a table's BIGSERIAL id.
func pgSerialSequence(db *gorm.DB, table pgName) (pgName, error) {
	var rows []struct{ Schema, Name string }
	err := db.Raw(`SELECT n.nspname AS schema, c.relname AS name
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = pg_get_serial_sequence(?, 'id')::regclass`, table.String()).Scan(&rows).Error
	if err != nil {
		return pgName{}, fmt.Errorf("look up the id sequence of %s: %w", table.name, err)
	}
	if len(rows) == 0 {
		return pgName{}, fmt.Errorf("look up the id sequence of %s: its id column has none (was it created by totpadm migrate?)", table.name)
	}
	return pgName{rows[0].Schema, rows[0].Name}, nil
}

func postgresGrants(db *gorm.DB, t Tables, u UsersTable, cols []string, role string, opt GrantOptions) ([]string, error) {
	users, err := pgResolve(db, u.Table)
	if err != nil {
		return nil, err
	}
	privs := tablePrivileges(t, opt.ReadOnly)
	own := make([]pgName, len(privs))
	for i, p := range privs {
		if own[i], err = pgResolve(db, p[0]); err != nil {
			return nil, err
		}
	}
	var seqs []pgName // the BIGSERIAL ids' sequences: INSERT takes nextval
	for _, table := range []string{t.BackupCodes, t.AuditLog} {
		i := slices.IndexFunc(privs, func(p [2]string) bool { return p[0] == table })
		seq, err := pgSerialSequence(db, own[i])
		if err != nil {
			return nil, err
		}
		seqs = append(seqs, seq)
	}
	if err := pgCheckLimitable(db, opt.Role, own); err != nil {
		return nil, err
	}
	var database string
	if err := db.Raw("SELECT current_database()").Scan(&database).Error; err != nil {
		return nil, fmt.Errorf("read the database name: %w", err)
	}

	stmts := []string{fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", pgDialect.quote(database), role)}
	var schemas []string
	for _, n := range append(append([]pgName{users}, own...), seqs...) {
		if !slices.Contains(schemas, n.schema) {
			schemas = append(schemas, n.schema)
		}
	}
	for _, s := range schemas {
		stmts = append(stmts, fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", pgDialect.quote(s), role))
	}
	stmts = append(stmts, fmt.Sprintf("GRANT SELECT (%s) ON TABLE %s TO %s", strings.Join(cols, ", "), users, role))
	for i, p := range privs {
		// REVOKE on a table also revokes its column privileges.
		stmts = append(stmts,
			fmt.Sprintf("REVOKE ALL ON TABLE %s FROM %s", own[i], role),
			fmt.Sprintf("GRANT %s ON TABLE %s TO %s", p[1], own[i], role))
	}
	for _, seq := range seqs {
		stmts = append(stmts, fmt.Sprintf("REVOKE ALL ON SEQUENCE %s FROM %s", seq, role))
		if !opt.ReadOnly {
			stmts = append(stmts, fmt.Sprintf("GRANT USAGE ON SEQUENCE %s TO %s", seq, role))
		}
	}
	return stmts, nil
}

// pgCheckLimitable refuses a role whose power over the audit log no
// REVOKE or GRANT touches: a superuser, or (a member of) the owner of
// totpadm's tables or of their schema, which may drop, alter or re-grant
// them. A role that does not exist yet is not checked: its GRANT fails.
func pgCheckLimitable(db *gorm.DB, role string, tables []pgName) error {
	var super []bool
	if err := db.Raw("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = ?", role).Scan(&super).Error; err != nil {
		return fmt.Errorf("look up role %q: %w", role, err)
	}
	if len(super) == 0 {
		return nil
	}
	if super[0] {
		return fmt.Errorf("%w: role %q is a superuser, which bypasses every privilege check; grant to a role without SUPERUSER", ErrRoleUnlimited, role)
	}
	for _, n := range tables {
		var owns []string
		err := db.Raw(`SELECT CASE WHEN pg_has_role(r.oid, c.relowner, 'MEMBER') THEN 'table' ELSE 'schema' END
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace, pg_catalog.pg_roles r
WHERE c.oid = to_regclass(?) AND r.rolname = ?
  AND (pg_has_role(r.oid, c.relowner, 'MEMBER') OR pg_has_role(r.oid, s.nspowner, 'MEMBER'))`, n.String(), role).Scan(&owns).Error
		if err != nil {
			return fmt.Errorf("look up the owner of %s: %w", n.name, err)
		}
		if len(owns) > 0 {
			what := n.name
			if owns[0] == "schema" {
				what = "schema " + n.schema
			}
			return fmt.Errorf("%w: role %q owns %s (or is a member of its owner), and an owner may alter, drop or re-grant totpadm's tables; give them another owner (ALTER TABLE … OWNER TO) or grant to a role that owns nothing", ErrRoleUnlimited, role, what)
		}
	}
	return nil
}

func mysqlGrants(db *gorm.DB, t Tables, u UsersTable, cols []string, account string, opt GrantOptions) ([]string, error) {
	d := dialect{name: "mysql", quoteC: '`'}
	var database, version string
	if err := db.Raw("SELECT DATABASE(), VERSION()").Row().Scan(&database, &version); err != nil {
		return nil, fmt.Errorf("read the database name: %w", err)
	}
	qualify := func(name string) string {
		if strings.Contains(name, ".") {
			return d.quote(name)
		}
		return d.quote(database) + "." + d.quote(name)
	}
	if err := mysqlCheckLimitable(db, account, database); err != nil {
		return nil, err
	}
	var stmts []string
	if autoCreatesUsers(version) {
		// Without NO_AUTO_CREATE_USER, MariaDB (and MySQL before 8) turns a
		// GRANT to an account that does not exist into a new account with
		// no password. Grants are for an existing role only.
		stmts = append(stmts, "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'NO_AUTO_CREATE_USER')")
	}
	stmts = append(stmts, fmt.Sprintf("GRANT SELECT (%s) ON %s TO %s", strings.Join(cols, ", "), qualify(u.Table), account))
	for _, p := range tablePrivileges(t, opt.ReadOnly) {
		table := qualify(p[0])
		// MySQL's REVOKE fails on a privilege that was never granted, so
		// one is granted first; REVOKE ALL on a table also removes its
		// column privileges.
		stmts = append(stmts,
			fmt.Sprintf("GRANT SELECT ON %s TO %s", table, account),
			fmt.Sprintf("REVOKE GRANT OPTION ON %s FROM %s", table, account),
			fmt.Sprintf("REVOKE ALL PRIVILEGES ON %s FROM %s", table, account),
			fmt.Sprintf("GRANT %s ON %s TO %s", p[1], table, account))
	}
	return stmts, nil
}

// autoCreatesUsers: the server has sql_mode NO_AUTO_CREATE_USER (MariaDB,
// MySQL before 8.0, where GRANT may create accounts); MySQL 8 rejects the
// mode and never creates an account on GRANT.
func autoCreatesUsers(version string) bool {
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return true
	}
	major, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	return err == nil && n < 8
}

// rewritePrivileges are the MySQL privileges that change or remove rows
// already written: UPDATE and DELETE, DROP (also TRUNCATE), ALTER, and
// TRIGGER (a trigger can rewrite or swallow later rows).
var rewritePrivileges = []string{"UPDATE", "DELETE", "DROP", "ALTER", "TRIGGER"}

// mysqlCheckLimitable refuses an account that holds a rewriting privilege
// globally or on the whole database, which no table-level REVOKE touches.
// It sees what information_schema shows the connected account; an
// account that does not exist is not checked (its GRANT fails).
func mysqlCheckLimitable(db *gorm.DB, account, database string) error {
	in := "'" + strings.Join(rewritePrivileges, "', '") + "'"
	var held []struct{ Privilege, Scope string }
	err := db.Raw(`SELECT PRIVILEGE_TYPE AS privilege, 'every database' AS scope FROM information_schema.USER_PRIVILEGES
WHERE GRANTEE = ? AND PRIVILEGE_TYPE IN (`+in+`)
UNION ALL
SELECT PRIVILEGE_TYPE, CONCAT('database ', TABLE_SCHEMA) FROM information_schema.SCHEMA_PRIVILEGES
WHERE GRANTEE = ? AND ? LIKE TABLE_SCHEMA AND PRIVILEGE_TYPE IN (`+in+`)`, account, account, database).Scan(&held).Error
	if err != nil {
		return fmt.Errorf("look up the privileges of %s: %w", account, err)
	}
	if len(held) == 0 {
		return nil
	}
	var scopes []string
	privileges := map[string][]string{}
	for _, h := range held {
		if _, seen := privileges[h.Scope]; !seen {
			scopes = append(scopes, h.Scope)
		}
		privileges[h.Scope] = append(privileges[h.Scope], h.Privilege)
	}
	parts := make([]string, len(scopes))
	for i, s := range scopes {
		parts[i] = strings.Join(privileges[s], ", ") + " on " + s
	}
	return fmt.Errorf("%w: %s holds %s, which no table-level REVOKE takes away; revoke it first or grant to another account", ErrRoleUnlimited, account, strings.Join(parts, "; "))
}

// CanRewriteAuditLog reports whether the connected role can change or
// remove rows already in the audit log; see AuditLogRewriteRights. On
// SQLite it returns ErrNoRoles: whoever can write the file can.
func CanRewriteAuditLog(ctx context.Context, db *gorm.DB, t Tables) (bool, error) {
	rights, err := AuditLogRewriteRights(ctx, db, t)
	return len(rights) > 0, err
}

// AuditLogRewriteRights lists the ways the connected role could change or
// remove rows already in the audit log (for a role set up by Grants:
// none). PostgreSQL: UPDATE on any column, DELETE, TRUNCATE, TRIGGER,
// ownership of the table or its schema, or superuser, through every role
// the connection may SET ROLE to. MySQL/MariaDB: UPDATE on any column or
// DELETE as the server itself decides for this session (an EXPLAIN of
// each, which runs nothing, roles and wildcards included), and DROP,
// ALTER or TRIGGER granted to the account globally, on the database or
// on the table. It only reads.
func AuditLogRewriteRights(ctx context.Context, db *gorm.DB, t Tables) ([]string, error) {
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	db = db.WithContext(ctx)
	switch d.name {
	case "sqlite":
		return nil, ErrNoRoles
	case "postgres":
		return pgRewriteRights(db, t)
	default:
		return mysqlRewriteRights(db, d, t)
	}
}

func pgRewriteRights(db *gorm.DB, t Tables) ([]string, error) {
	var oid sql.NullInt64
	if err := db.Raw("SELECT to_regclass(?)::oid", pgDialect.quote(t.AuditLog)).Scan(&oid).Error; err != nil {
		return nil, fmt.Errorf("look up %s: %w", t.AuditLog, err)
	}
	if !oid.Valid {
		return nil, ErrSchemaMissing
	}
	var r struct {
		Superuser, Owner                              bool
		CanUpdate, CanDelete, CanTruncate, CanTrigger bool
	}
	err := db.Raw(`SELECT
  COALESCE(bool_or(r.rolsuper), false) AS superuser,
  COALESCE(bool_or(r.oid = c.relowner OR r.oid = s.nspowner), false) AS owner,
  COALESCE(bool_or(has_any_column_privilege(r.oid, c.oid, 'UPDATE')), false) AS can_update,
  COALESCE(bool_or(has_table_privilege(r.oid, c.oid, 'DELETE')), false) AS can_delete,
  COALESCE(bool_or(has_table_privilege(r.oid, c.oid, 'TRUNCATE')), false) AS can_truncate,
  COALESCE(bool_or(has_table_privilege(r.oid, c.oid, 'TRIGGER')), false) AS can_trigger
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace, pg_catalog.pg_roles r
WHERE c.oid = ? AND pg_has_role(r.oid, 'MEMBER')`, oid.Int64).Scan(&r).Error
	if err != nil {
		return nil, fmt.Errorf("read the privileges on %s: %w", t.AuditLog, err)
	}
	var rights []string
	for _, f := range []struct {
		held bool
		name string
	}{{r.Superuser, "superuser"}, {r.Owner, "owner"}, {r.CanUpdate, "UPDATE"}, {r.CanDelete, "DELETE"}, {r.CanTruncate, "TRUNCATE"}, {r.CanTrigger, "TRIGGER"}} {
		if f.held {
			rights = append(rights, f.name)
		}
	}
	return rights, nil
}

func mysqlRewriteRights(db *gorm.DB, d dialect, t Tables) ([]string, error) {
	table := d.quote(t.AuditLog)
	columns := append([]string{"id"}, auditColumns...)
	var listed []string
	if err := db.Raw("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", t.AuditLog).Scan(&listed).Error; err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", t.AuditLog, err)
	}
	for _, c := range listed {
		if !slices.Contains(columns, c) {
			columns = append(columns, c)
		}
	}
	// EXPLAIN checks the privileges the statement needs and runs nothing.
	allowed := func(stmt string) (bool, error) {
		err := db.Exec("EXPLAIN " + stmt).Error
		var myErr *mysql.MySQLError
		switch {
		case err == nil:
			return true, nil
		case errors.As(err, &myErr) && (myErr.Number == 1142 || myErr.Number == 1143): // table / column access denied
			return false, nil
		case errors.As(err, &myErr) && myErr.Number == 1146: // no such table
			return false, ErrSchemaMissing
		default:
			return false, fmt.Errorf("check the privileges on %s: %w", t.AuditLog, err)
		}
	}
	var rights []string
	for _, c := range columns {
		ok, err := allowed(fmt.Sprintf("UPDATE %s SET %s = NULL WHERE 1 = 0", table, d.quote(c)))
		if err != nil {
			return nil, err
		}
		if ok {
			rights = append(rights, "UPDATE")
			break
		}
	}
	ok, err := allowed(fmt.Sprintf("DELETE FROM %s WHERE 1 = 0", table))
	if err != nil {
		return nil, err
	}
	if ok {
		rights = append(rights, "DELETE")
	}
	var user string
	if err := db.Raw("SELECT CURRENT_USER()").Scan(&user).Error; err != nil {
		return nil, fmt.Errorf("read the current account: %w", err)
	}
	at := strings.LastIndexByte(user, '@')
	grantee := "'" + user + "'"
	if at >= 0 {
		grantee = "'" + user[:at] + "'@'" + user[at+1:] + "'"
	}
	in := "'DROP', 'ALTER', 'TRIGGER'"
	var held []string
	err = db.Raw(`SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ? AND PRIVILEGE_TYPE IN (`+in+`)
UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND DATABASE() LIKE TABLE_SCHEMA AND PRIVILEGE_TYPE IN (`+in+`)
UNION SELECT PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND PRIVILEGE_TYPE IN (`+in+`)`,
		grantee, grantee, grantee, t.AuditLog).Scan(&held).Error
	if err != nil {
		return nil, fmt.Errorf("read the privileges on %s: %w", t.AuditLog, err)
	}
	for _, p := range []string{"DROP", "ALTER", "TRIGGER"} {
		if slices.Contains(held, p) {
			rights = append(rights, p)
		}
	}
	return rights, nil
}
