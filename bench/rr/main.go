// Command rr is a small TCP request/response benchmark used by bench/datapath.sh.
//
// Server: rr -server -listen :7000
// Client: rr -addr 172.17.0.3:7000 [-mode persistent|conn] [-size 64] [-d 5s] [-n 0]
//
// In persistent mode the client sends requests of -size bytes one after another over one
// TCP connection and waits for each echoed response; in conn mode it opens a new
// connection for every request. It stops after -n requests (0: no limit) or -d, whichever
// comes first, and prints one line:
//
//	mode=persistent size=64 requests=123456 seconds=5.000 rate=24691.2 p50_us=38.1 p99_us=61.0 errors=0
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sort"
	"time"
)

func main() {
	server := flag.Bool("server", false, "run the echo server")
	listen := flag.String("listen", ":7000", "server: address to listen on")
	addr := flag.String("addr", "", "client: server address host:port")
	mode := flag.String("mode", "persistent", "client: persistent (one connection) or conn (a connection per request)")
	size := flag.Int("size", 64, "request and response size in bytes")
	dur := flag.Duration("d", 5*time.Second, "client: how long to run")
	n := flag.Int("n", 0, "client: stop after this many requests (0: only -d)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("rr: ")
	if *size < 1 {
		log.Fatal("-size must be at least 1")
	}
	if *server {
		serve(*listen, *size)
		return
	}
	if *addr == "" {
		log.Fatal("-addr is required in client mode")
	}
	if *mode != "persistent" && *mode != "conn" {
		log.Fatalf("unknown -mode %q", *mode)
	}
	os.Exit(client(*addr, *mode, *size, *dur, *n))
}

func serve(listen string, size int) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Print(err)
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
			}
			buf := make([]byte, size)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}(c)
	}
}

func dial(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return c, nil
}

func roundTrip(c net.Conn, req, resp []byte) error {
	if _, err := c.Write(req); err != nil {
		return err
	}
	_, err := io.ReadFull(c, resp)
	return err
}

func client(addr, mode string, size int, dur time.Duration, n int) int {
	req := make([]byte, size)
	for i := range req {
		req[i] = byte('a' + i%26)
	}
	resp := make([]byte, size)
	lat := make([]time.Duration, 0, 1<<16)
	errs := 0
	var conn net.Conn
	if mode == "persistent" {
		var err error
		if conn, err = dial(addr); err != nil {
			log.Print(err)
			return 1
		}
		defer conn.Close()
	}
	start := time.Now()
	deadline := start.Add(dur)
	for n == 0 || len(lat) < n {
		t0 := time.Now()
		if !t0.Before(deadline) {
			break
		}
		var err error
		if mode == "persistent" {
			err = roundTrip(conn, req, resp)
		} else {
			var c net.Conn
			if c, err = dial(addr); err == nil {
				err = roundTrip(c, req, resp)
				// Close from the client: the TIME_WAIT stays on the client side.
				c.Close()
			}
		}
		if err != nil {
			errs++
			if mode == "persistent" || errs > 100 {
				log.Print(err)
				break
			}
			continue
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start).Seconds()
	if len(lat) == 0 {
		log.Print(errors.New("no request completed"))
		return 1
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		i := int(p * float64(len(lat)-1))
		return float64(lat[i].Nanoseconds()) / 1e3
	}
	fmt.Printf("mode=%s size=%d requests=%d seconds=%.3f rate=%.1f p50_us=%.1f p99_us=%.1f errors=%d\n",
		mode, size, len(lat), elapsed, float64(len(lat))/elapsed, pct(0.50), pct(0.99), errs)
	if errs > 0 {
		return 1
	}
	return 0
}
