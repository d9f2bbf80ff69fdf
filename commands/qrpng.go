package commands

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
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

// openQRDir opens dir for the PNGs, creating it (and missing parents) mode
// 0700. An existing directory that group or others may write to is
// refused: whoever can write there could swap a file or plant names, and
// each PNG holds a secret.
func openQRDir(dir string) (*qrPNGWriter, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, usagef("--qr-png: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, usagef("--qr-png: %w", err)
	}
	// Stat through the open root: the directory checked is the one the
	// files will be written to, even if dir is renamed or replaced now.
	info, err := root.Stat(".")
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("--qr-png: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o022 != 0 {
		root.Close()
		return nil, fmt.Errorf("--qr-png: directory %s is writable by group or others (mode %04o), and the QR codes hold secrets: run `chmod 700 %s` or choose a private directory", dir, perm, dir)
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
	f, tmp, err := q.createTemp()
	if err != nil {
		return "", fmt.Errorf("write QR code for %s: %w", login, err)
	}
	_, werr := f.Write(code.PNG())
	if werr == nil {
		werr = f.Chmod(0o600) // through the descriptor: the umask may have taken bits
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
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

// createTemp is os.CreateTemp inside the root, which os.Root does not
// offer: a new file, mode 0600, under an unpredictable name, created with
// O_EXCL so that nothing planted in the directory (a file another user can
// read, a symlink) is ever opened instead.
func (q *qrPNGWriter) createTemp() (*os.File, string, error) {
	for range 100 {
		var b [12]byte
		rand.Read(b[:])
		name := ".qr-" + hex.EncodeToString(b[:]) + ".png.tmp"
		f, err := q.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", errors.New("cannot create a temporary file: too many name collisions")
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
