package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// probe runs the test app's tools for tests that look from inside a
// container (Docker exec): "probe ADDR..." GETs / of each host:port (an
// HTTP service such as this app) and prints the answers; "resolve NAME N"
// looks NAME up N times and prints the p50 and p99 latency in
// microseconds; "privs" reports the process's privileges. It returns the exit code, and ok false when args are not
// a tool's.
func probe(args []string) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
	case "-c":
		// Installed as /bin/sh in stand-in images: a Compose healthcheck's
		// CMD-SHELL test asks whether the app answers.
		port := os.Getenv("PORT")
		if port == "" {
			port = "8080"
		}
		resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://127.0.0.1:" + port + "/health")
		if err != nil {
			fmt.Println(err)
			return 1, true
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fmt.Println("health:", resp.Status)
			return 1, true
		}
		return 0, true
	case "probe":
		code := 0
		client := &http.Client{Timeout: 5 * time.Second}
		for _, addr := range args[1:] {
			resp, err := client.Get("http://" + addr + "/")
			if err != nil {
				fmt.Printf("fail %s: %v\n", addr, err)
				code = 1
				continue
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			fmt.Printf("ok %s %d %s\n", addr, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return code, true
	case "bench":
		// bench HOST:PORT N: N GETs of /health, each on a new connection,
		// to the address HOST resolves to once (so no lookup is timed).
		if len(args) != 3 {
			fmt.Println("usage: bench HOST:PORT N")
			return 2, true
		}
		n, err := strconv.Atoi(args[2])
		host, port, serr := net.SplitHostPort(args[1])
		if err != nil || n < 1 || serr != nil {
			fmt.Println("bench: want HOST:PORT and a positive N")
			return 2, true
		}
		ips, err := net.DefaultResolver.LookupHost(context.Background(), host)
		if err != nil {
			fmt.Printf("fail %s: %v\n", host, err)
			return 1, true
		}
		url := "http://" + net.JoinHostPort(ips[0], port) + "/health"
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		var took []time.Duration
		for range n {
			start := time.Now()
			resp, err := client.Get(url)
			if err != nil {
				fmt.Printf("fail %s: %v\n", url, err)
				return 1, true
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		fmt.Printf("p50_us %d p99_us %d\n", took[len(took)/2].Microseconds(), took[len(took)*99/100].Microseconds())
		return 0, true
	case "privs":
		// What the process may do: its effective capabilities and
		// no_new_privs flag (from /proc/self/status), whether it can open
		// a raw socket (NET_RAW) and become root (setuid 0).
		status, err := os.ReadFile("/proc/self/status")
		if err != nil {
			fmt.Println("fail:", err)
			return 1, true
		}
		for _, line := range strings.Split(string(status), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && (k == "CapEff" || k == "NoNewPrivs") {
				fmt.Printf("%s %s\n", k, strings.TrimSpace(v))
			}
		}
		if fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP); err != nil {
			fmt.Println("raw denied:", err)
		} else {
			syscall.Close(fd)
			fmt.Println("raw ok")
		}
		if err := syscall.Setuid(0); err != nil {
			fmt.Println("setuid0 denied:", err)
		} else {
			fmt.Println("setuid0 ok")
		}
		return 0, true
	case "resolve":
		if len(args) != 3 {
			fmt.Println("usage: resolve NAME N")
			return 2, true
		}
		n, err := strconv.Atoi(args[2])
		if err != nil || n < 1 {
			fmt.Println("resolve: N must be a positive number")
			return 2, true
		}
		var took []time.Duration
		for range n {
			start := time.Now()
			if _, err := net.DefaultResolver.LookupHost(context.Background(), args[1]); err != nil {
				fmt.Printf("fail %s: %v\n", args[1], err)
				return 1, true
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		fmt.Printf("p50_us %d p99_us %d\n", took[len(took)/2].Microseconds(), took[len(took)*99/100].Microseconds())
		return 0, true
	}
	return 0, false
}
