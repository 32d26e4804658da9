// testapp is the sandbox's application image: a static HTTP server with no base image.
//
//	/up         200 when healthy, 503 otherwise (behaviour set by TESTAPP_MODE / TESTAPP_HEALTHY_AFTER)
//	/version    JSON: version, container name, and the value of a chosen env var
//	/slow?ms=N  answers after N milliseconds (in-flight requests during a drain)
//	/kv/KEY     GET/PUT a value stored under TESTAPP_DATA_DIR (an accessory with data)
//	/upstream   GET of TESTAPP_UPSTREAM + the request's ?path= (the app reaching an accessory)
//	.../headers JSON: the path the app received, its request headers, the peer address
//	/upload     POST: the number of body bytes received
//	/log?line=T writes "log: T" to the container's output (what `logs --follow` shows)
//
//	/assets/... static files under TESTAPP_ASSETS_DIR (default /public/assets; the image has
//	            app-<version>.css there, as a Rails app's fingerprinted assets)
//	/page       HTML that links this version's asset
//
// TESTAPP_UP_DELAY_MS delays every /up answer (a slow health check).
// TESTAPP_FAIL_AFTER=N: N seconds after /up first answered 200, every answer is a 500 (and
// /up a 503): a version that passes its health check, then breaks.
// TESTAPP_CRASH_AFTER=N: N seconds after /up first answered 200, the process exits (code 4).
// Every answer carries X-Testapp-Version, so a client can tell who answered a failure.
//
// "testapp probe URL" is the image's own health-probe command: exit 0 on a 2xx answer.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Set per image with -ldflags "-X main.version=... -X main.defaultMode=...".
var (
	version     = "dev"
	defaultMode = "healthy"
)

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		os.Exit(probe(os.Args[2:]))
	}
	os.Exit(serve())
}

func probe(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: testapp probe URL")
		return 2
	}
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintln(os.Stderr, "probe: status", resp.StatusCode)
		return 1
	}
	return 0
}

func serve() int {
	mode := env("TESTAPP_MODE", defaultMode)
	ver := env("APP_VERSION", version)
	port := env("PORT", "80")
	healthyAfter, _ := strconv.ParseFloat(env("TESTAPP_HEALTHY_AFTER", "0"), 64)
	upDelay, _ := strconv.Atoi(env("TESTAPP_UP_DELAY_MS", "0"))
	failAfter, _ := strconv.ParseFloat(env("TESTAPP_FAIL_AFTER", "-1"), 64)
	crashAfter, _ := strconv.ParseFloat(env("TESTAPP_CRASH_AFTER", "-1"), 64)
	started := time.Now()
	name := env("KAMAL_CONTAINER_NAME", env("HOSTNAME", "unknown"))
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stdout, time.Now().UTC().Format(time.RFC3339)+" testapp "+ver+": "+format+"\n", a...)
	}
	// When /up first answered 200: the clock of TESTAPP_FAIL_AFTER and TESTAPP_CRASH_AFTER.
	var healthyOnce sync.Once
	var mu sync.Mutex
	var healthySince time.Time
	turnedHealthy := func() {
		healthyOnce.Do(func() {
			mu.Lock()
			healthySince = time.Now()
			mu.Unlock()
			logf("healthy")
			if crashAfter >= 0 {
				go func() {
					time.Sleep(time.Duration(crashAfter * float64(time.Second)))
					logf("TESTAPP_CRASH_AFTER=%v: crashing", crashAfter)
					os.Exit(4)
				}()
			}
		})
	}
	failing := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failAfter >= 0 && !healthySince.IsZero() && time.Since(healthySince).Seconds() >= failAfter
	}

	// Deliberately leaks a variable into the logs, so tests can prove errors redact it.
	if leak := os.Getenv("TESTAPP_LOG_ENV"); leak != "" {
		logf("%s=%s", leak, os.Getenv(leak))
	}
	if mode == "exit" {
		logf("TESTAPP_MODE=exit: exiting at boot")
		return 3
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/up", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(upDelay) * time.Millisecond)
		if mode == "unhealthy" || time.Since(started).Seconds() < healthyAfter || failing() {
			http.Error(w, "not healthy", http.StatusServiceUnavailable)
			return
		}
		turnedHealthy()
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		envName := r.URL.Query().Get("env")
		if envName == "" {
			envName = os.Getenv("TESTAPP_ECHO_ENV")
		}
		body := map[string]any{"version": ver, "container": name}
		if envName != "" {
			body["env"] = map[string]string{envName: os.Getenv(envName)}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	})
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		logf("log: %s", r.URL.Query().Get("line"))
		fmt.Fprintln(w, "logged")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintf(w, "%s slept %dms\n", ver, ms)
	})
	dataDir := env("TESTAPP_DATA_DIR", "/data")
	mux.HandleFunc("/kv/", func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/kv/")
		if key == "" || strings.ContainsAny(key, "/\\") || strings.HasPrefix(key, ".") {
			http.Error(w, "bad key", http.StatusBadRequest)
			return
		}
		path := filepath.Join(dataDir, key)
		switch r.Method {
		case http.MethodPut, http.MethodPost:
			b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err == nil {
				err = os.WriteFile(path, b, 0o644)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			b, err := os.ReadFile(path)
			if err != nil {
				http.Error(w, "not found", http.StatusNotFound)
				return
			}
			w.Write(b)
		}
	})
	mux.HandleFunc("/upstream", func(w http.ResponseWriter, r *http.Request) {
		base := os.Getenv("TESTAPP_UPSTREAM")
		if base == "" {
			http.Error(w, "TESTAPP_UPSTREAM not set", http.StatusNotImplemented)
			return
		}
		client := http.Client{Timeout: 5 * time.Second}
		resp, err := client.Get(base + r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d\n", n)
	})
	assets := env("TESTAPP_ASSETS_DIR", "/public/assets")
	mux.Handle("/assets/", http.StripPrefix("/assets/", http.FileServer(http.Dir(assets))))
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<!doctype html><link rel=stylesheet href=\"/assets/app-%s.css\"><p>%s</p>\n", ver, ver)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Any path ending in /headers: what the app received (path prefixes, forwarded headers).
		if strings.HasSuffix(r.URL.Path, "/headers") {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"version": ver, "path": r.URL.Path, "headers": r.Header, "remoteAddr": r.RemoteAddr})
			return
		}
		fmt.Fprintf(w, "%s %s\n", ver, name)
	})

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Testapp-Version", ver)
		if r.URL.Path != "/up" && failing() {
			http.Error(w, ver+" is failing (TESTAPP_FAIL_AFTER)", http.StatusInternalServerError)
			return
		}
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Addr: ":" + port, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logf("listening on :%s as %s (mode %s)", port, name, mode)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-errc:
		logf("server error: %v", err)
		return 1
	case s := <-sig:
		// Finish in-flight requests: docker stop's grace period bounds this from outside.
		logf("%v: draining", s)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		srv.SetKeepAlivesEnabled(false)
		if err := srv.Shutdown(ctx); err != nil {
			logf("drain: %v", err)
			return 1
		}
		logf("drained, exiting")
		return 0
	}
}
