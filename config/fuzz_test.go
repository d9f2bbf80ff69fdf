package config_test

// FuzzParseTarget: any --db value parses or fails with ErrInvalidDSN, and a
// password written into it never comes back out — not in the error, not
// in Target.String(), not in RedactURL, not through Redact. Seed corpus in
// testdata/fuzz/FuzzParseTarget/ (FuzzRedact, below: testdata/fuzz/FuzzRedact/);
// run with
//
//	go test -run '^$' -fuzz '^FuzzParseTarget$' -fuzztime 20s ./config/

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/config"
)

// fzMarker is planted in every password, so that any piece of the
// password that leaks is found, not just the whole of it.
const fzMarker = "Pw9SECRET9wP"

// fzSpec writes password into a --db value in one of the ways people do.
func fzSpec(form uint8, user, password, host, rest string) string {
	switch form % fzForms {
	case 0: // well-formed URL, password escaped
		return (&url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: host, Path: "/" + rest}).String()
	case 1: // typed by hand, nothing escaped
		return "postgresql://" + user + ":" + password + "@" + host + "/" + rest
	case 2: // password= parameter, escaped
		return "postgres://" + user + "@" + host + "/" + rest + "?password=" + url.QueryEscape(password)
	case 3: // password= parameter, typed by hand
		return "postgres://" + user + "@" + host + "/app?sslmode=disable&password=" + password
	case 4: // libpq keyword/value string
		return "host=" + host + " user=" + user + " password=" + password + " dbname=" + rest
	case 5: // upper-case scheme, surrounding blanks
		return "  POSTGRES://" + url.UserPassword(user, password).String() + "@" + host + "/" + rest + "\n"
	case 6: // a slash short
		return "postgres:/" + user + ":" + password + "@" + host + "/" + rest
	case 7: // no slashes at all
		return "postgresql:" + user + ":" + password + "@" + host + "/" + rest
	case 8: // password= parameter of a host-less URL (Unix socket)
		return "postgres:///" + rest + "?host=/run/postgresql&password=" + url.QueryEscape(password)
	case 9: // MySQL, well-formed
		return "mysql://" + url.UserPassword(user, password).String() + "@" + host + "/" + rest
	case 10: // MariaDB, no slashes
		return "mariadb:" + user + ":" + password + "@" + host + "/" + rest
	case 11: // go-sql-driver DSN over TCP, no scheme
		return user + ":" + password + "@tcp(" + host + ")/" + rest
	case 12: // go-sql-driver DSN over a Unix socket
		return user + ":" + password + "@unix(/run/mysqld/mysqld.sock)/" + rest
	case 13: // user info and host, no scheme
		return user + ":" + password + "@" + host + "/" + rest
	case 14: // a scheme totpadm does not know
		return "pgsql://" + user + ":" + password + "@" + host + "/" + rest
	case 15: // libpq keyword/value string, password quoted
		return "host=" + host + " user=" + user + " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password) + "' dbname=" + rest
	default: // a bad percent-escape next to the password
		return "postgres://" + user + ":" + password + "%zz@" + host + "/" + rest
	}
}

// fzForms is the number of ways fzSpec writes a password.
const fzForms = 17

// fzServerScheme reports a value that names a database server's URL
// scheme, even misspelled after the colon.
func fzServerScheme(spec string) bool {
	lower := strings.ToLower(strings.TrimSpace(spec))
	for _, scheme := range []string{"postgres:", "postgresql:", "mysql:", "mariadb:"} {
		if strings.HasPrefix(lower, scheme) {
			return true
		}
	}
	return false
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []struct {
		spec, user, password, host, rest string
		form                             uint8
	}{
		{"postgres://admin:hunter2@db.internal:5432/app", "admin", "hunter2", "db.internal:5432", "app", 0},
		{"postgresql://u:p%40ss@h/db?sslmode=disable", "u", "p@ss/w:rd?#", "h", "db", 1},
		{"postgres://u@h/db?password=secret&sslmode=require", "u", "a&b=c", "h", "db", 2},
		{"postgres://u@h/db?password=secret", "u", "x y+z", "h:5432", "db", 3},
		{"host=db user=admin password=hunter2 dbname=app", "admin", "it's", "db", "app", 4},
		{"  POSTGRES://u:p@h/db  ", "u", "p", "h", "db", 5},
		{"postgres:/admin:hunter2@db/app", "admin", "hunter2", "db", "app", 6},
		{"postgresql:admin:hunter2@db/app", "admin", "hunter2", "db", "app", 7},
		{"postgres:///app?host=/run/postgresql&password=pw", "", "pw", "", "app", 8},
		{"sqlite:app.db", "", "", "", "", 0},
		{"sqlite:///var/lib/app.db", "u", "%zz", "[::1", "", 1},
		{"mysql://root:pw@h/db", "root", "pw", "h", "db", 9},
		{"mariadb:root:pw@h/db", "root", "pw", "h", "db", 10},
		{"postgres://u:pw@/db", "u", "pw", "", "db", 1},
		{"postgres://u:pw@[::1/db", "u", "pw", "[::1", "db", 1},
		{"app.db", "", "", "", "", 0},
		{"", "", "", "", "", 0},
		{"password=pw", "", "", "", "", 4},
		// Forms a security review found leaking.
		{"bob:hunter2@tcp(127.0.0.1:3306)/app", "bob", "hunter2", "127.0.0.1:3306", "app", 11},
		{"bob:hunter2@unix(/run/mysqld/mysqld.sock)/app", "bob", "hunter2", "", "app", 12},
		{"bob:hunter2@db.internal/app", "bob", "hunter2", "db.internal", "app", 13},
		{"./bob:hunter2@db.internal/app", "./bob", "hunt er2", "db.internal", "app", 13},
		{"pgsql://bob:hunter2@h/app", "bob", "hunter2", "h", "app", 14},
		{"host=x password='S3cret PW'", "bob", "S3cret PW", "x", "app", 15},
		{"postgres://bob:S3cr%zzPW@h/app", "bob", "S3cr", "h", "app", 16},
		{"mysql:bob:hunter2@tcp(h)/app", "bob", "hunt er2", "h", "app", 11},
		{"sqlite:bob:hunter2@tcp(h)/app", "sqlite", "hunter2", "h", "app", 13},
	} {
		f.Add(s.spec, s.user, s.password, s.host, s.rest, s.form)
	}
	f.Fuzz(func(t *testing.T, spec, user, password, host, rest string, form uint8) {
		// Any value: a target of a known driver, or ErrInvalidDSN.
		target, err := config.ParseTarget(spec)
		switch {
		case err != nil:
			if !errors.Is(err, config.ErrInvalidDSN) {
				t.Fatalf("ParseTarget(%q): %v does not wrap ErrInvalidDSN", spec, err)
			}
		case target.Driver == "sqlite":
			if target.Path == "" {
				t.Fatalf("ParseTarget(%q): SQLite target without a path", spec)
			}
		case target.Driver == "postgres", target.Driver == "mysql":
			if target.URL != strings.TrimSpace(spec) {
				t.Fatalf("ParseTarget(%q): URL %q", spec, target.URL)
			}
		default:
			t.Fatalf("ParseTarget(%q): driver %q", spec, target.Driver)
		}
		// A value naming PostgreSQL or MySQL is never taken for a SQLite
		// file name: that name would be echoed, password and all, in "no
		// such file" errors.
		if err == nil && target.Driver == "sqlite" && fzServerScheme(spec) {
			t.Fatalf("ParseTarget(%q) = SQLite file %q: a postgres:/mysql: value must be a server URL or an error", spec, target.Path)
		}

		// A value with a password in it: no piece of the password comes out.
		if strings.Contains(user+host+rest, fzMarker) {
			return
		}
		secret := password[:len(password)/2] + fzMarker + password[len(password)/2:]
		built := fzSpec(form, user, secret, host, rest)
		if strings.Count(built, fzMarker) != 1 {
			return
		}
		target, err = config.ParseTarget(built)
		trimmed := strings.TrimSpace(built)
		isURL := fzServerScheme(built) && strings.Contains(trimmed, "://")
		u, perr := url.Parse(trimmed)
		if isURL && perr == nil && !strings.Contains(urlPassword(u), fzMarker) {
			return // the URL grammar put the marker outside the password (a '/' in the user name, say)
		}
		if f := form % fzForms; (f == 11 || f == 12 || f == 13) && strings.HasPrefix(strings.ToLower(trimmed), "sqlite:") {
			// "sqlite:" + password…: the user name made it a file name.
			if path := trimmed[len("sqlite:"):]; !strings.Contains(path[:strings.Index(path, fzMarker)], ":") {
				return
			}
		}
		var shown []string
		switch {
		case err != nil:
			shown = append(shown, "error: "+err.Error())
		case target.Driver == "sqlite":
			// A DSN that ParseTarget took for a path (./bob:pw@…, or a
			// user name with a '/'): "open …: no such file" names it.
			shown = append(shown, "String: "+target.String())
		default:
			// A driver error may echo the password, decoded or as written
			// in a canonical URL; Redact with Password() removes both.
			msg := "failed to connect: " + secret
			if perr == nil {
				msg = "failed to connect: " + urlPassword(u)
			}
			if f := form % fzForms; f == 0 || f == 2 || f == 5 || f == 8 || f == 9 {
				msg += " (" + trimmed + ")"
			}
			shown = append(shown, "String: "+target.String(), "Redact(driver message): "+config.Redact(msg, target.Password()))
		}
		if isURL {
			shown = append(shown, "RedactURL: "+config.RedactURL(trimmed))
		}
		for _, s := range shown {
			if strings.Contains(s, fzMarker) {
				t.Fatalf("password of %q leaked in %s", built, s)
			}
		}
	})
}

// urlPassword is the password PostgreSQL drivers take from a URL: the
// user info's, else the password parameter's.
func urlPassword(u *url.URL) string {
	if p, ok := u.User.Password(); ok {
		return p
	}
	return u.Query().Get("password")
}

// FuzzRedact: Redact(msg, "") hides the password of user:password@ wherever
// it sits in a message, URL or not, and leaves text without '@' or '='
// alone. Run with
//
//	go test -run '^$' -fuzz '^FuzzRedact$' -fuzztime 20s ./config/
func FuzzRedact(f *testing.F) {
	for _, s := range []struct{ before, user, password, host, after string }{
		{"open ", "bob", "S3cretPW", "tcp(127.0.0.1:3306)", "/app: no such file"},
		{"open ", "bob", "S3cretPW", "unix(/run/mysqld/mysqld.sock)", "/app: no such file"},
		{"dial postgres://", "bob", "S3cr%zzPW", "h", "/app"},
		{"", "postgres", "/bob:S3cretPW", "h", "/app"},
		{"", "mysql", "bob:S3cretPW", "tcp(h)", "/app"},
		{"pgsql://", "bob", "S3cretPW", "h", "/app"},
		{`"`, "bob", "p@ss:w/rd", "h", `/app"`},
		{"at 12:30:00 ", "alice", "x", "example.com", " failed"},
		{"", "", "/", "h", ""},
	} {
		f.Add(s.before, s.user, s.password, s.host, s.after)
	}
	f.Fuzz(func(t *testing.T, before, user, password, host, after string) {
		// Nothing to redact: no user info (no '@'), no password= (no '=').
		if plain := before + user + host + after; !strings.ContainsAny(plain, "@=") {
			if got := config.Redact(plain, ""); got != plain {
				t.Fatalf("Redact(%q) = %q: changed a message with no password in it", plain, got)
			}
		}
		// A password is one word (a blank ends it) and does not start
		// with "//" (that is scheme://); '=' elsewhere could start a
		// password=… value that Redact hides its own way.
		if strings.ContainsAny(password, "\t\n\f\r ") || strings.HasPrefix(password, "//") ||
			strings.Contains(before+user+host+after, "=") || strings.Contains(before+user+password+host+after, fzMarker) {
			return
		}
		secret := password[:len(password)/2] + fzMarker + password[len(password)/2:]
		msg := before + user + ":" + secret + "@" + host + after
		if got := config.Redact(msg, ""); strings.Contains(got, fzMarker) {
			t.Fatalf("Redact(%q) = %q: the password survives", msg, got)
		}
	})
}
