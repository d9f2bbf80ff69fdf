package commands

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"rsc.io/qr"
)

// qrPNGWriter writes one QR code PNG per user into a directory, for
// delivery through another channel. Files are mode 0600 and are opened
// through an os.Root, so no login — "../x", "a/b", a symlink planted in
// the directory — can place a file outside it.
type qrPNGWriter struct {
	root *os.Root
}

func openQRDir(dir string) (*qrPNGWriter, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, usagef("--qr-png: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, usagef("--qr-png: %w", err)
	}
	return &qrPNGWriter{root: root}, nil
}

func (q *qrPNGWriter) close() { q.root.Close() }

// write renders uri for login and returns the file name it used. The file
// is written under a temporary name and renamed, so a reader never sees a
// half-written image and a re-enrollment replaces the old one.
func (q *qrPNGWriter) write(login, uri string) (string, error) {
	code, err := qr.Encode(uri, qr.M)
	if err != nil {
		return "", fmt.Errorf("QR code for %s: %w", login, err)
	}
	name := pngName(login)
	tmp := "." + name + ".tmp"
	f, err := q.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("write QR code for %s: %w", login, err)
	}
	_, werr := f.Write(code.PNG())
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = q.root.Chmod(tmp, 0o600) // an older file of that name may have had other bits
	}
	if werr == nil {
		werr = q.root.Rename(tmp, name)
	}
	if werr != nil {
		q.root.Remove(tmp)
		return "", fmt.Errorf("write QR code for %s: %w", login, werr)
	}
	return name, nil
}

// pngName is login.png when the login is a plain file name; otherwise the
// unsafe characters become '_' and a short hash of the real login is
// appended, so two logins never share a file ("a/b" vs "a_b").
func pngName(login string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '@', r == '+', r == '.':
			return r
		}
		return '_'
	}, login)
	safe = strings.TrimLeft(safe, ".")
	if len(safe) > 100 {
		safe = safe[:100]
	}
	if safe == login && safe != "" {
		return safe + ".png"
	}
	sum := sha256.Sum256([]byte(login))
	if safe == "" {
		safe = "user"
	}
	return safe + "-" + hex.EncodeToString(sum[:4]) + ".png"
}
