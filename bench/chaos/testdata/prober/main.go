// Command prober is a service the chaos suite deploys through dropmesh to
// find out what a workload can reach from inside its container. It serves
// HTTP on PORT (default 8080):
//
//	GET /health             200
//	GET /probe?addr=H:P     {"addr", "reachable", "error"}: whether a TCP
//	                        connection to addr opens within a second
//
// With PORT=80 it also stands in for the metadata service in the suite.
package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"time"
)

// Result is the answer of /probe.
type Result struct {
	Addr      string `json:"addr"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/probe", func(w http.ResponseWriter, r *http.Request) {
		res := Result{Addr: r.URL.Query().Get("addr")}
		c, err := net.DialTimeout("tcp", res.Addr, time.Second)
		if err != nil {
			res.Error = err.Error()
		} else {
			res.Reachable = true
			c.Close()
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("prober\n")) })
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		os.Stderr.WriteString("prober: " + err.Error() + "\n")
		os.Exit(1)
	}
}
