//go:build !unix

package config

// openNonBlocking: without FIFOs to block on, opening needs no flag.
const openNonBlocking = 0
