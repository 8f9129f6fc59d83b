package verifyclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/tokenwarden/tokenwarden/pkg/verifyclient"
)

// A service that lets only tokens with the orders:read scope list orders.
// In a cluster, mount the CA the operator publishes; in local mode it is
// bin/dev/ca.crt, and the endpoints file names the URL
// (TOKENWARDEN_VERIFY_URL, which may end in /verify).
func Example() {
	ca, err := os.ReadFile("/etc/tokenwarden/ca.crt")
	if err != nil {
		log.Fatal(err)
	}
	verifier := verifyclient.New("https://tokenwarden-verify.tokenwarden-system.svc",
		verifyclient.WithCA(ca))

	listOrders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The Middleware ran first, so the identity is always there.
		id, _ := verifyclient.FromContext(r.Context())
		if !slices.Contains(id.Scopes, "orders:read") {
			http.Error(w, "the token lacks the orders:read scope", http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "orders visible to %s (teams %v)\n", id.User, id.Teams)
	})

	mux := http.NewServeMux()
	mux.Handle("GET /orders", verifyclient.Middleware(verifier, listOrders))
	server := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(server.ListenAndServe())
}

// Verifying a token outside HTTP, such as one that came with a queue
// message, and telling a refusal from an outage.
func ExampleClient_Verify() {
	ca, err := os.ReadFile("/etc/tokenwarden/ca.crt")
	if err != nil {
		log.Fatal(err)
	}
	verifier := verifyclient.New("https://tokenwarden-verify.tokenwarden-system.svc",
		verifyclient.WithCA(ca))
	token := os.Getenv("ORDERS_TOKEN")

	id, err := verifier.Verify(context.Background(), token)
	var refused *verifyclient.RefusedError
	switch {
	case errors.Is(err, verifyclient.ErrRateLimited) && errors.As(err, &refused):
		log.Printf("rate limited; retrying in %s", refused.RetryAfter)
	case errors.As(err, &refused):
		// Safe to log: errors never contain the token.
		log.Printf("token refused: %s", refused.Reason)
	case err != nil:
		log.Printf("cannot verify now, try again later: %v", err)
	default:
		fmt.Println("message from", id.User)
	}
}
