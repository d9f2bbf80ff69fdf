//go:build !unix

package commands

import "os/exec"

// killGroup: elsewhere only the command itself is killed at the time limit.
func killGroup(*exec.Cmd) {}
