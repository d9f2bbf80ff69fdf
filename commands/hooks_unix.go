//go:build unix

package commands

import (
	"os/exec"
	"syscall"
)

// killGroup starts cmd in a process group of its own and kills the whole
// group at the time limit: `sh -c "sleep 60"` forks sleep, and killing
// only sh would leave sleep running.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
