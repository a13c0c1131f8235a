// Hop A of the chain test (Go, net/http). For each request it calls hop B over a pooled keep-alive client,
// forwarding the x-trace-id header (and the path, which carries the test's request number), and answers
// with B's status and body wrapped in its own. It reports the SO_MARK of the accepted socket (read when the
// request arrives) and of the pooled socket to B (read when B's answer begins), one JSON line per request on
// stdout. Standard library only.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sync"
	"syscall"
	"time"
)

type connKey struct{}

func soMark(c net.Conn) int {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return -1
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return -1
	}
	mark := -1
	_ = raw.Control(func(fd uintptr) {
		if m, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK); err == nil {
			mark = m
		}
	})
	return mark
}

func main() {
	listen := flag.String("listen", "", "address:port to serve on")
	upstream := flag.String("upstream", "", "base URL of hop B")
	maxConns := flag.Int("max-conns", 2, "pooled connections to B (small, so requests interleave on them)")
	flag.Parse()

	transport := &http.Transport{
		MaxIdleConnsPerHost: *maxConns,
		MaxConnsPerHost:     *maxConns,
		IdleConnTimeout:     120 * time.Second,
		DisableCompression:  true,
	}
	client := &http.Client{Transport: transport, Timeout: 15 * time.Second}
	var logMu sync.Mutex

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, _ := r.Context().Value(connKey{}).(net.Conn)
		inMark := -1
		if in != nil {
			inMark = soMark(in)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		traceID := r.Header.Get("x-trace-id")
		var out net.Conn
		outMark := -1
		// The mark is read while this request still holds the pooled connection. Once its body is read, the
		// transport hands the connection to a request already waiting for one, whose send re-marks it: read
		// then, a cohort request's mark was sometimes the next (non-cohort) request's 0.
		ctx := httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { out = info.Conn },
			GotFirstResponseByte: func() {
				if out != nil {
					outMark = soMark(out)
				}
			},
		})
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, *upstream+r.URL.Path, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if traceID != "" {
			req.Header.Set("x-trace-id", traceID)
		}
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, "A: upstream: "+err.Error(), http.StatusBadGateway)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		outLocal := ""
		if out != nil {
			outLocal = out.LocalAddr().String()
		}
		record := map[string]any{
			"hop": "A", "path": r.URL.Path, "traceId": traceID, "inMark": inMark, "outMark": outMark,
			"inPeer": r.RemoteAddr, "outLocal": outLocal, "status": resp.StatusCode,
		}
		line, _ := json.Marshal(record)
		logMu.Lock()
		fmt.Println(string(line))
		logMu.Unlock()
		if !json.Valid(body) {
			body, _ = json.Marshal(string(body))
		}
		reply, _ := json.Marshal(map[string]any{
			"hop": "A", "inMark": inMark, "outMark": outMark, "outLocal": outLocal, "inner": json.RawMessage(body),
		})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(reply)
	})

	ln, err := net.Listen("tcp4", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "A: listen:", err)
		os.Exit(1)
	}
	srv := &http.Server{
		Handler:     handler,
		IdleTimeout: 120 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
	}
	fmt.Printf("{\"ready\":true,\"hop\":\"A\",\"pid\":%d}\n", os.Getpid())
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "A: serve:", err)
		os.Exit(1)
	}
}
