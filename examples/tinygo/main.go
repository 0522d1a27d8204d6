// tinygo-kv: a compat (wagi) handler for spin-redis, written in Go.
//
// It reads the Redis message payload from stdin, parses it as key=value pairs
// separated by '&' or ';' and prints them sorted by key (pairs with the same key
// keep their order in the message):
//
//	<REDIS_CHANNEL>: <n> pair(s)
//	<key>: <value>
//	...
//
// Spaces around keys and values are trimmed and empty segments ("a=1&&b=2",
// a trailing ';') are skipped. A key or value that is not valid UTF-8 or holds
// a non-printable character is printed Go-quoted ("\xff"), so binary payloads
// give deterministic output.
//
// Exit codes: 0 ok (an empty payload prints "<channel>: 0 pair(s)"),
// 1 stdin could not be read, 2 a malformed pair (no '=' or an empty key).
//
// Builds with `tinygo build -target=wasi` and with
// `GOOS=wasip1 GOARCH=wasm go build`; it uses only the standard library.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type pair struct {
	key, value string
}

// parse splits payload into key=value pairs. It returns the offending segment
// and false when a segment has no '=' or an empty key.
func parse(payload string) ([]pair, string, bool) {
	segments := strings.FieldsFunc(payload, func(r rune) bool { return r == '&' || r == ';' })
	pairs := make([]pair, 0, len(segments))
	for _, seg := range segments {
		if strings.TrimSpace(seg) == "" {
			continue
		}
		eq := strings.IndexByte(seg, '=')
		if eq < 0 {
			return nil, seg, false
		}
		key := strings.TrimSpace(seg[:eq])
		if key == "" {
			return nil, seg, false
		}
		pairs = append(pairs, pair{key, strings.TrimSpace(seg[eq+1:])})
	}
	sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].key < pairs[j].key })
	return pairs, "", true
}

// show returns s unchanged when it is printable UTF-8, else Go-quoted.
func show(s string) string {
	if !utf8.ValidString(s) {
		return strconv.QuoteToASCII(s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}

func progName() string {
	if len(os.Args) > 0 && os.Args[0] != "" {
		return os.Args[0]
	}
	return "tinygo-kv"
}

func main() {
	me := progName()
	channel := os.Getenv("REDIS_CHANNEL")
	if channel == "" {
		channel = "(unknown channel)"
	}

	payload, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot read the payload from stdin: %v\n", me, err)
		os.Exit(1)
	}

	pairs, bad, ok := parse(string(payload))
	if !ok {
		fmt.Fprintf(os.Stderr, "%s: malformed pair %s on %s: want key=value\n",
			me, strconv.QuoteToASCII(bad), channel)
		os.Exit(2)
	}

	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "%s: %d pair(s)\n", channel, len(pairs))
	for _, p := range pairs {
		fmt.Fprintf(out, "%s: %s\n", show(p.key), show(p.value))
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot write to stdout: %v\n", me, err)
		os.Exit(1)
	}
}
