// go-sleep: an adversarial compat (wagi) handler for spin-redis's tests,
// built with GOOS=wasip1 GOARCH=wasm.
//
// It reads the whole payload from stdin, prints "sleeping on <payload>\n" to
// stdout (os.Stdout is unbuffered: the line is written at once), then sleeps
// for an hour with time.Sleep, which Go's wasip1 runtime turns into a
// blocking poll_oneoff host call, so only a deadline that holds against
// blocking host calls can stop it. The payload "quick" exits 0 right after
// the line instead.
//
// Exit codes: 0 "quick" (or, should the sleep ever end, after it); 2 stdin
// could not be read.
package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	payload, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-sleep: cannot read the payload from stdin: %v\n", err)
		os.Exit(2)
	}
	fmt.Printf("sleeping on %s\n", payload)
	if string(payload) == "quick" {
		return
	}
	time.Sleep(time.Hour)
}
