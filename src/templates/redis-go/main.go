// A Redis message handler for spin-redis, written in Go.
//
// spin-redis runs it under its wagi executor: for every message published on
// the channel it starts the module afresh with the payload on stdin and
// REDIS_CHANNEL in the environment, and writes its stdout to the component's
// log and the terminal. A non-zero exit status fails the message.
//
// Builds with `GOOS=wasip1 GOARCH=wasm go build` and with
// `tinygo build -target=wasi`.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	payload, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot read the message: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("message on %s: %s\n", os.Getenv("REDIS_CHANNEL"), payload)
}
