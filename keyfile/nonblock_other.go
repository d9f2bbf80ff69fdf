//go:build !unix

package keyfile

// openNonBlocking: without FIFOs to block on, opening needs no flag.
const openNonBlocking = 0
