package config_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/config"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		spec         string
		driver, path string // want; driver "" = an error
		url          string // want for postgres
		errHas       string // substring of the error
	}{
		{spec: "app.db", driver: "sqlite", path: "app.db"},
		{spec: "/var/lib/app/app.db", driver: "sqlite", path: "/var/lib/app/app.db"},
		{spec: "./data/app.db", driver: "sqlite", path: "./data/app.db"},
		{spec: "  app.db\n", driver: "sqlite", path: "app.db"},
		{spec: "my data/app v2.db", driver: "sqlite", path: "my data/app v2.db"},
		{spec: "sqlite:rel.db", driver: "sqlite", path: "rel.db"},
		{spec: "sqlite:/abs/app.db", driver: "sqlite", path: "/abs/app.db"},
		{spec: "sqlite:///abs/app.db", driver: "sqlite", path: "/abs/app.db"},
		{spec: "SQLite:rel.db", driver: "sqlite", path: "rel.db"},
		{spec: "postgres://admin@db.internal/app", driver: "postgres", url: "postgres://admin@db.internal/app"},
		{spec: "postgresql://admin:pw@db.internal:5433/app?sslmode=require", driver: "postgres", url: "postgresql://admin:pw@db.internal:5433/app?sslmode=require"},
		{spec: "POSTGRES://db.internal/app", driver: "postgres", url: "POSTGRES://db.internal/app"},
		{spec: "postgres:///app?host=/var/run/postgresql", driver: "postgres", url: "postgres:///app?host=/var/run/postgresql"},
		{spec: "mysql://root@127.0.0.1:3306/app", driver: "mysql", url: "mysql://root@127.0.0.1:3306/app"},
		{spec: "MySQL://admin:pw@db.internal/app", driver: "mysql", url: "MySQL://admin:pw@db.internal/app"},
		{spec: "", errHas: "empty"},
		{spec: "   ", errHas: "empty"},
		{spec: "sqlite:", errHas: "no path"},
		{spec: "sqlite://", errHas: "no path"},
		{spec: "redis://root@localhost/app", errHas: "redis"},
		{spec: "mysql://", errHas: "host"},
		{spec: "mysql://root@db.internal", errHas: "database"},
		{spec: "mysql://root@db.internal/app?tls=true&timeout=10s&charset=utf8mb4", driver: "mysql", url: "mysql://root@db.internal/app?tls=true&timeout=10s&charset=utf8mb4"},
		// A server could read any local file, or a conditional update's
		// row count would stop meaning "matched".
		{spec: "mysql://root:pw@db.internal/app?allowAllFiles=true", errHas: `"allowAllFiles" is not supported`},
		{spec: "mysql://root@db.internal/app?clientFoundRows=false", errHas: "clientFoundRows must be true"},
		{spec: "mysql://root@db.internal/app?parseTime=false", errHas: "parseTime must be true"},
		{spec: "mysql://root@db.internal/app?parseTime=true&loc=UTC", driver: "mysql", url: "mysql://root@db.internal/app?parseTime=true&loc=UTC"},
		// A password with a raw / would be read as host, port and path.
		{spec: "postgres://app:7/kQ9xZ@db.internal/app", errHas: "percent-encoded"},
		{spec: "mysql://app:7/kQ9xZ@db.internal/app", errHas: "percent-encoded"},
		{spec: "postgres://app@db.internal/app#x@y", errHas: "percent-encoded"},
		{spec: "postgres://app:7%2FkQ9xZ@db.internal/app", driver: "postgres", url: "postgres://app:7%2FkQ9xZ@db.internal/app"},
		{spec: "http://example.com/app.db", errHas: "http"},
		{spec: "postgres:///app", errHas: "no host"},
		{spec: "postgres://admin:pw%zz@db.internal/app", errHas: "not a valid PostgreSQL URL"},
		// go-sql-driver DSNs and other user:password@host values without a
		// scheme are connection strings, not SQLite file names.
		{spec: "bob:pw@tcp(127.0.0.1:3306)/app", errHas: "mysql://user:password@host:3306/dbname"},
		{spec: "bob:pw@unix(/run/mysqld/mysqld.sock)/app", errHas: "mysql://"},
		{spec: "bob@tcp(db.internal)/app", errHas: "mysql://"},
		{spec: "bob:pw@db.internal/app", errHas: "mysql://"},
		{spec: "bob:p@ss:w/rd@db.internal/app", errHas: "mysql://"},
		{spec: ":pw@db.internal/app", errHas: "mysql://"},
		{spec: "  bob:pw@/app\n", errHas: "mysql://"},
		{spec: "pgsql:bob:pw@db.internal/app", errHas: "mysql://"},
		{spec: "sqlite:bob:pw@tcp(db.internal)/app", errHas: "mysql://"},
		{spec: "bob:pw@db.internal/app?next=http://x", errHas: "mysql://"},
		{spec: "pgsql://bob:pw@db.internal/app", errHas: `unsupported scheme "pgsql"`},
		{spec: "my data:x/://y.db", errHas: "unsupported URL"},
		// Written as a path, it is one: the way to name such a file.
		{spec: "./bob:pw@tcp(h)/app.db", driver: "sqlite", path: "./bob:pw@tcp(h)/app.db"},
		{spec: "/srv/12:30@backup.db", driver: "sqlite", path: "/srv/12:30@backup.db"},
		{spec: "sqlite:./bob:pw@h.db", driver: "sqlite", path: "./bob:pw@h.db"},
		{spec: `C:\data\app@v2.db`, driver: "sqlite", path: `C:\data\app@v2.db`},
		{spec: "C:/data/app.db", driver: "sqlite", path: "C:/data/app.db"},
		// A colon or an at sign alone does not make a DSN.
		{spec: "backup-12:30.db", driver: "sqlite", path: "backup-12:30.db"},
		{spec: "alice@example.com.db", driver: "sqlite", path: "alice@example.com.db"},
		{spec: "data/bob@host:2.db", driver: "sqlite", path: "data/bob@host:2.db"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := config.ParseTarget(tc.spec)
			if tc.driver == "" {
				if err == nil {
					t.Fatalf("ParseTarget(%q) = %+v, want an error", tc.spec, got)
				}
				if !errors.Is(err, config.ErrInvalidDSN) {
					t.Errorf("error %v does not wrap ErrInvalidDSN", err)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("error %q lacks %q", err, tc.errHas)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q spans lines", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTarget(%q): %v", tc.spec, err)
			}
			want := config.Target{Driver: tc.driver, Path: tc.path, URL: tc.url}
			if got != want {
				t.Errorf("ParseTarget(%q) = %+v, want %+v", tc.spec, got, want)
			}
		})
	}
}

// Errors from ParseTarget quote the input; none may quote a password.
func TestParseTargetErrorsHidePasswords(t *testing.T) {
	for _, spec := range []string{
		"postgres://admin:s3cretPW@/app",
		"postgres:///app?password=s3cretPW",
		"postgres://admin:s3cretPW%zz@db.internal/app",
		"redis://root:s3cretPW@localhost/app",
		"redis://:s3cretPW@localhost:6379/0",
		// The forms a security review found leaking (config show, and
		// "open …: no such file" for the schemeless ones).
		"postgres:/bob:s3cretPW@h/app",
		"postgres://bob:s3cretPW%zz@h/app",
		"mysql:bob:s3cretPW@tcp(h)/app",
		"pgsql://bob:s3cretPW@h/app",
		"host=x password='s3cretPW with blank'",
		"bob:s3cretPW@tcp(127.0.0.1:3306)/app",
		"bob:s3cretPW@unix(/run/mysqld/mysqld.sock)/app",
		"bob:s3cretPW@db.internal/app",
		"bob:s3cretPW@db.internal/app?next=http://x",
		"b:o/b s3cretPW@h://x",
		"sqlite:bob:s3cretPW@tcp(h)/app",
		// A raw / in the password: host "app", port 7, path "/s3cretPW@…".
		"postgres://app:7/s3cretPW@db.internal/app",
		"mysql://app:7/s3cretPW@db.internal/app",
	} {
		_, err := config.ParseTarget(spec)
		if err == nil {
			t.Errorf("ParseTarget(%q): want an error", spec)
			continue
		}
		if strings.Contains(err.Error(), "s3cretPW") {
			t.Errorf("ParseTarget(%q) error shows the password: %v", spec, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		never     []string // must not survive
		keep      []string // must survive
	}{
		{"userinfo", "postgres://admin:s3cretPW@db.internal:5432/app", []string{"s3cretPW"}, []string{"admin", "db.internal:5432", "/app"}},
		{"password parameter", "postgres://admin@db.internal/app?sslmode=disable&password=s3cretPW", []string{"s3cretPW"}, []string{"sslmode=disable", "admin@db.internal"}},
		{"both", "postgresql://admin:s3cretPW@db.internal/app?password=0therPW", []string{"s3cretPW", "0therPW"}, []string{"admin", "db.internal"}},
		{"escaped userinfo password", "postgres://admin:p%40ss%3Aw%2Ford@db.internal/app", []string{"p%40ss", "p@ss", "w%2Ford", "w/ord"}, []string{"admin", "db.internal"}},
		{"escaped password parameter", "postgres://db.internal/app?password=a%26b%3Dc", []string{"a%26b", "a&b", "b=c", "b%3Dc"}, []string{"db.internal"}},
		{"no password", "postgres://admin@db.internal/app?sslmode=require", nil, []string{"postgres://admin@db.internal/app?sslmode=require"}},
		{"unparseable", "postgres://admin:s3cretPW%zz@db.internal/app", []string{"s3cretPW"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := config.RedactURL(tc.raw)
			for _, s := range tc.never {
				if strings.Contains(got, s) {
					t.Errorf("RedactURL(%q) = %q still contains %q", tc.raw, got, s)
				}
			}
			for _, s := range tc.keep {
				if !strings.Contains(got, s) {
					t.Errorf("RedactURL(%q) = %q lost %q", tc.raw, got, s)
				}
			}
			if len(tc.never) > 0 && !strings.Contains(got, "xxxxx") && !strings.Contains(got, "unparseable") {
				t.Errorf("RedactURL(%q) = %q does not show that something was redacted", tc.raw, got)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		name, msg, secret, want string
	}{
		{"plain", "auth failed for pw s3cret!", "s3cret!", "auth failed for pw xxxxx"},
		{"several times", "s3cret and s3cret", "s3cret", "xxxxx and xxxxx"},
		{"query escaped", "dsn password=p%40ss+w%2Frd host=x", "p@ss w/rd", "dsn password=xxxxx host=x"},
		{"path escaped", "open /data/p@ss%20w%2Frd: denied", "p@ss w/rd", "open /data/xxxxx: denied"},
		{"empty secret changes nothing", "nothing to hide", "", "nothing to hide"},
		{"absent secret changes nothing", "nothing to hide", "s3cret", "nothing to hide"},
		// Passwords Redact finds without being told them.
		{"password parameter", "dial postgres://u@h/app?password=s3cret&x=1", "", "dial postgres://u@h/app?password=xxxxx&x=1"},
		{"quoted keyword value with a blank", "bad dsn host=x password='S3cret PW' dbname=app", "", "bad dsn host=x password=xxxxx dbname=app"},
		{"double-quoted keyword value", `password="S3cret PW" host=x`, "", "password=xxxxx host=x"},
		{"quoted value with escapes", `password='it\'s PW\\' host=x`, "", "password=xxxxx host=x"},
		{"unterminated quote hides the rest", "host=x password='S3cret PW", "", "host=x password=xxxxx"},
		{"blanks around =", "host=x password = S3cretPW", "", "host=x password = xxxxx"},
		{"go-sql-driver DSN", "open bob:S3cretPW@tcp(127.0.0.1:3306)/app: no such file", "", "open bob:xxxxx@tcp(127.0.0.1:3306)/app: no such file"},
		{"unix socket DSN", "open bob:S3cretPW@unix(/run/mysqld.sock)/app: denied", "", "open bob:xxxxx@unix(/run/mysqld.sock)/app: denied"},
		{"schemeless user info", "open bob:S3cretPW@db.internal/app", "", "open bob:xxxxx@db.internal/app"},
		{"quoted", `open "bob:S3cretPW@tcp(h)/app"`, "", `open "bob:xxxxx@tcp(h)/app"`},
		{"URL user info", "dial postgres://bob:S3cretPW@h/app failed", "", "dial postgres://bob:xxxxx@h/app failed"},
		{"unparseable URL", "postgres://bob:S3cret%zzPW@h/app", "", "postgres://bob:xxxxx@h/app"},
		{"unknown scheme", "pgsql://bob:S3cretPW@h/app", "", "pgsql://bob:xxxxx@h/app"},
		{"a slash short", "postgres:/bob:S3cretPW@h/app", "", "postgres:xxxxx@h/app"},
		{"no slashes", "mysql:bob:S3cretPW@tcp(h)/app", "", "mysql:xxxxx@tcp(h)/app"},
		{"password holding @ : /", "open bob:p@ss:w/rd@tcp(h)/app", "", "open bob:xxxxx@tcp(h)/app"},
		{"password starting with /", "open bob:/S3cretPW@h/app", "", "open bob:xxxxx@h/app"},
		{"password /", "open bob:/@h/app", "", "open bob:xxxxx@h/app"},
		{"empty user", "open :S3cretPW@h/app", "", "open :xxxxx@h/app"},
		{"already redacted stays so", "open postgres://bob:xxxxx@h/app", "", "open postgres://bob:xxxxx@h/app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := config.Redact(tc.msg, tc.secret); got != tc.want {
				t.Errorf("Redact(%q, %q) = %q, want %q", tc.msg, tc.secret, got, tc.want)
			}
		})
	}
}

// Redact's password patterns leave ordinary messages alone: times, e-mail
// addresses, URLs without a password, host:port, IPv6 addresses, ratios.
func TestRedactKeepsOrdinaryMessages(t *testing.T) {
	for _, msg := range []string{
		"locked until 12:30:00",
		"locked until 2026-11-29T12:30:00Z",
		"user alice@example.com: not enrolled",
		"alice@example.com: locked until 12:30",
		"at 12:30:00 alice@example.com failed 5 times",
		"login: alice@example.com",
		"login:  alice@example.com",
		"users: alice@example.com, bob@example.com",
		"contact admin@example.com (12:30 UTC)",
		"https://alice@example.com/path",
		"open postgres://admin@db.internal:5432/app?sslmode=disable: connection refused",
		"dial tcp 127.0.0.1:3306: connect: connection refused",
		"dial tcp [::1]:5432: connect: connection refused",
		"ssh root@[::1]:22",
		"ratio 3:2 for bob@example.com",
		"id:42: not found",
		"mailto alice@example.com",
		"the key opened 2 of 2 sampled secrets; all 2 secrets are under it",
		"open /var/lib/totpadm/app.db: no such file",
		"wrong password for alice",
		"password: required",
		"",
	} {
		t.Run(msg, func(t *testing.T) {
			if got := config.Redact(msg, ""); got != msg {
				t.Errorf("Redact(%q) = %q, want it unchanged", msg, got)
			}
		})
	}
}

func TestRedactValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"bob:S3cretPW@tcp(h)/app", "bob:xxxxx@tcp(h)/app"},
		{"./bob:S3cret PW@tcp(h)/app", "./bob:xxxxx@tcp(h)/app"},
		{"bob:p@ss:w/rd@h/app", "bob:xxxxx@h/app"},
		{"/srv/app.db", "/srv/app.db"},
		{"backup-12:30.db", "backup-12:30.db"},
		{"alice@example.com.db", "alice@example.com.db"},
		{"data/bob@host:2.db", "data/bob@host:2.db"},
		{"x:@y", "x:@y"},
		{"", ""},
	} {
		if got := config.RedactValue(tc.in); got != tc.want {
			t.Errorf("RedactValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A driver that echoes its connection URL writes the password the way
// net/url escapes user info, which differs from both query and path
// escaping for passwords with '@' and a space, or '@' and '&'.
func TestRedactUserinfoEscaping(t *testing.T) {
	for _, secret := range []string{"p@ss w/rd", "a&b@c", "s3cret@PW"} {
		u := url.URL{Scheme: "postgres", User: url.UserPassword("admin", secret), Host: "db.internal", Path: "/app"}
		msg := "cannot connect to " + u.String()
		got := config.Redact(msg, secret)
		if want := "cannot connect to postgres://admin:xxxxx@db.internal/app"; got != want {
			t.Errorf("Redact(%q, %q) = %q, want %q", msg, secret, got, want)
		}
	}
}

func TestTargetStringAndPassword(t *testing.T) {
	for _, tc := range []struct {
		spec, password string
	}{
		{"postgres://admin:s3cretPW@db.internal/app", "s3cretPW"},
		{"postgres://admin@db.internal/app?password=s3cretPW", "s3cretPW"},
		{"postgresql://admin:p%40ss%2Fw@db.internal/app", "p@ss/w"},
		{"postgres://admin@db.internal/app", ""},
	} {
		target, err := config.ParseTarget(tc.spec)
		if err != nil {
			t.Fatalf("ParseTarget(%q): %v", tc.spec, err)
		}
		if got := target.Password(); got != tc.password {
			t.Errorf("Password() of %q = %q, want %q", tc.spec, got, tc.password)
		}
		s := target.String()
		if !strings.Contains(s, "db.internal") {
			t.Errorf("String() = %q lost the host", s)
		}
		if tc.password != "" {
			for _, leak := range []string{tc.password, "s3cretPW", "p%40ss"} {
				if strings.Contains(s, leak) {
					t.Errorf("String() of %q = %q contains %q", tc.spec, s, leak)
				}
			}
		}
	}
	sqlite, err := config.ParseTarget("sqlite:/srv/app.db")
	if err != nil {
		t.Fatal(err)
	}
	if sqlite.String() != "/srv/app.db" || sqlite.Password() != "" {
		t.Errorf("sqlite target: String %q, Password %q", sqlite.String(), sqlite.Password())
	}
	// A path that is a DSN after all (written as a path on purpose, or
	// typed with a blank ParseTarget cannot see past) shows no password.
	odd, err := config.ParseTarget("./bob:S3cret PW@tcp(h)/app")
	if err != nil {
		t.Fatal(err)
	}
	if s := odd.String(); s != "./bob:xxxxx@tcp(h)/app" {
		t.Errorf("String() of a DSN-shaped path = %q", s)
	}
}

// Open's errors name the database but never its password, whatever the
// driver says.
func TestOpenErrorsHidePassword(t *testing.T) {
	for _, spec := range []string{
		"postgres://admin:s3cretPW@127.0.0.1:1/app?sslmode=disable",
		"postgres://admin@127.0.0.1:1/app?sslmode=disable&password=s3cretPW",
		"postgres://admin:s3cret%40PW@127.0.0.1:1/app?sslmode=disable",
	} {
		target, err := config.ParseTarget(spec)
		if err != nil {
			t.Fatal(err)
		}
		db, err := config.Open(context.Background(), target, config.OpenOptions{})
		if err == nil {
			config.Close(db)
			t.Fatalf("Open(%q) succeeded on port 1", spec)
		}
		if !errors.Is(err, config.ErrDatabase) {
			t.Errorf("error %v does not wrap ErrDatabase", err)
		}
		for _, leak := range []string{"s3cretPW", "s3cret@PW", "s3cret%40PW"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("Open(%q) error shows the password: %v", spec, err)
			}
		}
	}
	// A SQLite path shaped like a DSN: "open …: no such file" must not
	// quote it whole (doctor -o json prints the error as it is).
	for _, path := range []string{"./bob:s3cretPW@tcp(h)/app", "./bob:s3cret PW@tcp(h)/app"} {
		_, err := config.Open(context.Background(), config.Target{Driver: "sqlite", Path: path}, config.OpenOptions{})
		if err == nil || !errors.Is(err, config.ErrDatabase) {
			t.Fatalf("Open(%q): %v", path, err)
		}
		if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "no such file") {
			t.Errorf("Open(%q) error: %v", path, err)
		}
	}
}

func TestOpenNeverCreatesAMissingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "typo.db")
	_, err := config.Open(context.Background(), config.Target{Driver: "sqlite", Path: path}, config.OpenOptions{})
	if err == nil || !errors.Is(err, config.ErrDatabase) || !strings.Contains(err.Error(), "typo.db") {
		t.Errorf("Open of a missing file: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("Open created %s", e.Name())
	}
	if _, err := config.Open(context.Background(), config.Target{Driver: "sqlite", Path: dir}, config.OpenOptions{}); err == nil {
		t.Errorf("Open of a directory succeeded")
	}
}
