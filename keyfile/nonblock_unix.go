//go:build unix

package keyfile

import "syscall"

// openNonBlocking makes opening a FIFO return at once instead of waiting
// for a writer; on a regular file it changes nothing.
const openNonBlocking = syscall.O_NONBLOCK
