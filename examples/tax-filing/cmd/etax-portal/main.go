// Command etax-portal serves the demo e-tax portal of the tax-filing
// example. The login comes from the environment (never a flag, which every
// user of the machine can read): ETAX_USER and ETAX_PASSWORD.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest/etaxportal"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "address to serve on")
	flag.Parse()
	user, pass := os.Getenv("ETAX_USER"), os.Getenv("ETAX_PASSWORD")
	if user == "" || pass == "" {
		log.Fatal("etax-portal: set ETAX_USER and ETAX_PASSWORD to the login the portal accepts")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("etax-portal: %v", err)
	}
	srv := &http.Server{Handler: etaxportal.New(user, pass).Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Printf("demo e-tax portal on http://%s/\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("etax-portal: %v", err)
	}
}
