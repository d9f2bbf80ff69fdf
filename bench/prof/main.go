// Command prof runs totpadm in-process, as main.go does, under the CPU
// profiler (or with a heap profile at the end), for finding where a slow
// benchmark target spends its time:
//
//	go build -o bench/work/prof ./bench/prof
//	bench/work/prof -cpuprofile cpu.out -- --db app.db status -o csv >/dev/null
//	go tool pprof -top bench/work/prof cpu.out
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/totpadm/totpadm/commands"
)

func main() {
	cpu := flag.String("cpuprofile", "", "write a CPU profile to `FILE`")
	mem := flag.String("memprofile", "", "write a heap profile (in use at exit) to `FILE`")
	flag.Parse()
	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			fmt.Fprintln(os.Stderr, "prof:", err)
			os.Exit(5)
		}
		pprof.StartCPUProfile(f)
	}
	host, _ := os.Hostname()
	code := commands.Run(context.Background(), append([]string{"totpadm"}, flag.Args()...), commands.Streams{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr, LookupEnv: os.LookupEnv, Hostname: host,
	})
	if *cpu != "" {
		pprof.StopCPUProfile()
	}
	if *mem != "" {
		f, err := os.Create(*mem)
		if err == nil {
			runtime.GC()
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	os.Exit(code)
}
