package sdk

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ShutdownTimeout bounds the plugin's Shutdown hook, so a plugin that
// cannot clean up still exits.
const ShutdownTimeout = 30 * time.Second

// parentPollInterval is how often a plugin checks that the daemon is alive.
const parentPollInterval = time.Second

// go-plugin points os.Stderr at a pipe the daemon discards while serving;
// its log reader only reads the original stderr, so keep that.
var pluginLogger = hclog.New(&hclog.LoggerOptions{
	Name:       "plugin",
	Output:     os.Stderr,
	Level:      hclog.Debug,
	JSONFormat: true,
})

// Logger is the plugin's logger. Lines go to the daemon, which logs them
// with the plugin's name and their level.
func Logger() hclog.Logger { return pluginLogger }

// ServeProvider serves impl as a provider plugin and returns when the
// daemon stops it. Call it from main. If impl implements Shutdowner, its
// Shutdown runs before the process ends: after a graceful stop, on SIGTERM,
// or when the daemon died (the plugin notices within about a second, so no
// orphan plugin outlives its daemon).
func ServeProvider(impl Provider) {
	serve(impl, ProviderPluginSets(impl))
}

func serve(impl any, sets map[int]plugin.PluginSet) {
	logger := Logger()
	// Plugins that use package log reach the daemon's log too.
	log.SetFlags(0)
	log.SetOutput(logger.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}))

	var once sync.Once
	shutdown := func(reason string) {
		once.Do(func() {
			s, ok := impl.(Shutdowner)
			if !ok {
				return
			}
			logger.Info("shutting down", "reason", reason)
			ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				logger.Error("shutdown", "error", err)
			}
		})
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		shutdown(sig.String())
		os.Exit(0)
	}()
	go watchParent(func() {
		shutdown("the daemon exited")
		os.Exit(0)
	})

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: sets,
		GRPCServer:       grpcServer(logger),
		Logger:           logger,
	})
	shutdown("stopped by the daemon")
}

// watchParent calls died once the process that started the plugin is
// gone. A dead parent's children are re-parented, so the parent pid
// changes; this works where Linux's Pdeathsig does not (other systems, a
// daemon thread that exits).
func watchParent(died func()) {
	ppid := os.Getppid()
	if ppid <= 1 {
		return // started by init: no daemon to watch
	}
	t := time.NewTicker(parentPollInterval)
	defer t.Stop()
	for range t.C {
		if os.Getppid() != ppid {
			died()
			return
		}
	}
}

// grpcServer recovers panics in handlers: one bad call fails alone instead
// of killing the plugin with every call in flight.
func grpcServer(logger hclog.Logger) func([]grpc.ServerOption) *grpc.Server {
	recoverUnary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.Error("panic in plugin call", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "plugin panicked in %s: %v", info.FullMethod, r)
			}
		}()
		return h(ctx, req)
	}
	return func(opts []grpc.ServerOption) *grpc.Server {
		return grpc.NewServer(append(opts, grpc.ChainUnaryInterceptor(recoverUnary))...)
	}
}

// ServeCrawler serves impl as a crawler plugin; see ServeProvider.
func ServeCrawler(impl Crawler) {
	serve(impl, CrawlerPluginSets(impl))
}

// ServeVendor serves impl as a vendor plugin; see ServeProvider.
func ServeVendor(impl Vendor) {
	serve(impl, VendorPluginSets(impl))
}
