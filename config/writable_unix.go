//go:build unix

package config

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

// fileWritable asks the kernel whether this process may write to path. It
// answers for root too: a read-only mount (EROFS) or an immutable file or
// directory (chattr +i, EPERM) stop root, where mode bits do not.
func fileWritable(path string) error {
	if err := unix.Access(path, unix.W_OK); err != nil {
		return &fs.PathError{Op: "access", Path: path, Err: err}
	}
	return nil
}
