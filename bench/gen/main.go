// Command gen is a helper of bench/run.sh: it prints the current TOTP code
// of a base32 secret, computed by the same models.GenerateCode that verify
// checks codes with, and the RFC 6238 time step it belongs to.
//
//	go run ./bench/gen code SECRET    # prints "CODE STEP"
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/totpadm/totpadm/models"
)

func main() {
	if len(os.Args) != 3 || os.Args[1] != "code" {
		fmt.Fprintln(os.Stderr, "usage: gen code BASE32SECRET")
		os.Exit(2)
	}
	secret, err := models.DecodeSecret(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(2)
	}
	p := models.DefaultParams
	step := p.Step(time.Now())
	code, err := models.GenerateCode(secret, step, p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Println(code, step)
}
