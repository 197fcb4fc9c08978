// A circuit breaker the harness has never seen: an HTTP front in Go that
// guards its calls to a dependency with sony/gobreaker, the common Go
// breaker, used the way its README shows. Nothing in it is the harness's:
// no arrival log, no admin endpoints, its own error texts. The harness
// judges it from topology.toml's [spec] and from what it records itself.
//
// One binary, two roles (ROLE): "front" (GET / calls DEP_URL through the
// breaker) and "dep" (GET / answers a fixed JSON body). Env: PORT,
// BIND_HOST (default 127.0.0.1), DEP_URL, FAILURE_THRESHOLD, OPEN_MS,
// HALF_OPEN_CALLS, CALL_TIMEOUT_MS, VARIANT.
//
// VARIANT "correct" trips on FAILURE_THRESHOLD consecutive failures;
// "total-failures" trips on FAILURE_THRESHOLD failures in all, with
// Interval 0 (gobreaker then never clears its counts while closed): a
// mistake that passes every test with a dependency that is either up or
// down, and opens on sparse failures that never come close to the
// threshold in a row.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/sony/gobreaker/v2"
)

// depBody is what dep answers to GET /; its answer has a fixed size (no Date
// header), so a limit_data toxic can be sized to cut one answer in N.
var depBody = []byte(`{"ok": true, "from": "dep"}` + "\n")

func main() {
	log.SetFlags(0)
	log.SetPrefix(os.Getenv("SERVICE_NAME") + ": ")
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	})
	switch role := os.Getenv("ROLE"); role {
	case "dep":
		mux.HandleFunc("/", serveDep)
	case "front":
		front, err := newFront()
		if err != nil {
			log.Fatal(err)
		}
		mux.HandleFunc("/", front.serve)
	default:
		log.Fatalf("ROLE must be front or dep, got %q", role)
	}
	addr := net.JoinHostPort(envOr("BIND_HOST", "127.0.0.1"), os.Getenv("PORT"))
	server := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go stopOnSignal(server)
	log.Printf("listening on %s", addr)
	if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

func serveDep(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Date"] = nil // leave it out: a fixed-size answer
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(depBody)))
	w.WriteHeader(http.StatusOK)
	w.Write(depBody)
}

type front struct {
	depURL  string
	client  *http.Client
	breaker *gobreaker.CircuitBreaker[[]byte]
}

func newFront() (*front, error) {
	depURL := os.Getenv("DEP_URL")
	if depURL == "" {
		return nil, errors.New("DEP_URL is not set")
	}
	threshold, err := envInt("FAILURE_THRESHOLD", 5)
	if err != nil {
		return nil, err
	}
	openMS, err := envInt("OPEN_MS", 2000)
	if err != nil {
		return nil, err
	}
	halfOpen, err := envInt("HALF_OPEN_CALLS", 2)
	if err != nil {
		return nil, err
	}
	timeoutMS, err := envInt("CALL_TIMEOUT_MS", 300)
	if err != nil {
		return nil, err
	}
	trip := func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(threshold) }
	switch variant := envOr("VARIANT", "correct"); variant {
	case "correct":
	case "total-failures":
		trip = func(c gobreaker.Counts) bool { return c.TotalFailures >= uint32(threshold) }
	default:
		return nil, fmt.Errorf("VARIANT must be correct or total-failures, got %q", variant)
	}
	settings := gobreaker.Settings{
		Name:        "dep",
		MaxRequests: uint32(halfOpen),
		Timeout:     time.Duration(openMS) * time.Millisecond,
		ReadyToTrip: trip,
		OnStateChange: func(name string, from, to gobreaker.State) {
			log.Printf("breaker %s: %s -> %s", name, from, to)
		},
	}
	client := &http.Client{Timeout: time.Duration(timeoutMS) * time.Millisecond}
	return &front{depURL: depURL, client: client, breaker: gobreaker.NewCircuitBreaker[[]byte](settings)}, nil
}

// serve calls dep through the breaker: 503 when the breaker refuses, 502 when the call failed.
func (f *front) serve(w http.ResponseWriter, r *http.Request) {
	body, err := f.breaker.Execute(func() ([]byte, error) { return f.callDep(r.Context()) })
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusBadGateway, map[string]any{"message": "dep failed: " + err.Error()})
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
}

func (f *front) callDep(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.depURL+"/", nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 500 {
		return nil, fmt.Errorf("dep answered %d", resp.StatusCode)
	}
	return body, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func stopOnSignal(server *http.Server) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	server.Shutdown(ctx)
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func envInt(key string, fallback int) (int, error) {
	raw := os.Getenv(key)
	if raw == "" {
		return fallback, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s must be a whole number >= 1, got %q", key, raw)
	}
	return n, nil
}
