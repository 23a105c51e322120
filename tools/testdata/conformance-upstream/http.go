package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// The paths the transports are served on: streamable HTTP at /mcp, the
// legacy HTTP+SSE transport (protocol 2024-11-05) at /sse with its POST
// endpoint at /message.
const (
	mcpEndpoint     = "/mcp"
	sseEndpoint     = "/sse"
	messageEndpoint = "/message"
)

// newHTTPHandler returns the HTTP handler that serves srv over streamable
// HTTP at /mcp and over the legacy SSE transport at /sse (so the mediator's
// SSE upstreams can be tested against the same server the suite runs
// against directly), plus a /health probe.
//
// The SSE endpoint event carries a relative URL (/message?sessionId=…), which
// clients resolve against the /sse URL they dialled, so the handler does not
// need to know the address it is served on.
//
// mcp-go's streamable HTTP server keeps its default DNS rebinding protection
// (requests arriving on a loopback address must carry a loopback Host header),
// which the suite's dns-rebinding-protection scenario checks. An in-memory
// event store makes SSE streams resumable with Last-Event-ID.
func newHTTPHandler(srv *server.MCPServer, logger *slog.Logger) http.Handler {
	streamable := server.NewStreamableHTTPServer(srv,
		server.WithEndpointPath(mcpEndpoint),
		server.WithEventStore(server.NewInMemoryEventStore()),
		server.WithSessionIdleTTL(10*time.Minute),
		server.WithStreamableHTTPLogger(logger),
	)
	sse := server.NewSSEServer(srv,
		server.WithSSEEndpoint(sseEndpoint),
		server.WithMessageEndpoint(messageEndpoint),
		server.WithUseFullURLForMessageEndpoint(false),
	)
	mux := http.NewServeMux()
	mux.Handle(mcpEndpoint, streamable)
	mux.Handle(sseEndpoint, sse.SSEHandler())
	mux.Handle(messageEndpoint, sse.MessageHandler())
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	return mux
}

// serveHTTP serves srv over streamable HTTP and SSE on addr until ctx is done, then
// shuts the listener down gracefully. ready, when not nil, is called with the
// bound address once the listener is open (useful with port 0).
func serveHTTP(ctx context.Context, srv *server.MCPServer, addr string, logger *slog.Logger, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	httpServer := &http.Server{
		Handler:           newHTTPHandler(srv, logger),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("serving MCP over streamable HTTP", "url", "http://"+ln.Addr().String()+mcpEndpoint, "version", version)
	if ready != nil {
		ready(ln.Addr())
	}

	errc := make(chan error, 1)
	go func() { errc <- httpServer.Serve(ln) }()

	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown http: %w", err)
	}
	return nil
}
