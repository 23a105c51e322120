// Package demo is the demo upstream MCP server: the kind of tools an
// agent-authorization gateway such as MCP Mediator exists to police. It runs
// as its own command (examples/demo-upstream) and inside the mediator binary
// as `mediator demo-upstream`, so the quickstart needs nothing built.
package demo

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/mark3labs/mcp-go/server"
)

// version is reported in the initialize result and by --version. It can be
// set at link time with -ldflags "-X github.com/mcp-mediator/mediator/examples/demo.version=...".
var version = "0.1.0"

// seedFiles are copied into an empty sandbox.
//
//go:embed seed
var seedFiles embed.FS

// defaultLedgerName is the ledger's file name inside the sandbox.
const defaultLedgerName = ".ledger.jsonl"

// config is the parsed command line.
type config struct {
	root     string
	crmPath  string
	ledger   string
	logLevel slog.Level
	version  bool
}

// parseFlags parses the command line.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("demo-upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.root, "root", filepath.Join(os.TempDir(), "mcp-mediator-demo"), "sandbox `DIR` for the file tools; created if missing, seeded with sample files if empty")
	fs.StringVar(&cfg.crmPath, "crm", "", "customer data `FILE` (JSON array of records); default: the built-in fictional sample")
	fs.StringVar(&cfg.ledger, "ledger", "", "`FILE` that transfers are appended to (JSON Lines); default: "+defaultLedgerName+" in the sandbox")
	logLevel := fs.String("log-level", "info", "stderr log `LEVEL`: debug, info, warn or error (warn keeps benchmarks quiet)")
	fs.BoolVar(&cfg.version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return cfg, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := cfg.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, fmt.Errorf("invalid --log-level %q: %w", *logLevel, err)
	}
	if cfg.root == "" {
		return cfg, errors.New("--root must not be empty")
	}
	return cfg, nil
}

// Run parses args, starts the server and serves MCP over stdin/stdout until
// stdin closes or ctx ends. demoMode is the value of DEMO_MODE (the caller
// reads the environment).
func Run(ctx context.Context, args []string, demoMode string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.version {
		_, err := fmt.Fprintf(stdout, "demo-upstream %s\n", version)
		return err
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))

	a, closeApp, err := setup(cfg, logger)
	if err != nil {
		return err
	}
	defer closeApp()

	srv := newServer(a, demoMode)
	logger.Info("serving MCP over stdio", "version", version, "root", a.box.Dir(), "ledger", a.ledger.path,
		"customers", a.crm.Len(), "demo_mode", demoMode != "")
	st := server.NewStdioServer(srv)
	st.SetErrorLogger(slog.NewLogLogger(logger.Handler(), slog.LevelError))
	if err := st.Listen(ctx, stdin, stdout); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("serve stdio: %w", err)
	}
	return nil
}

// setup prepares the sandbox, ledger, CRM and fetcher.
func setup(cfg config, logger *slog.Logger) (*app, func(), error) {
	if err := os.MkdirAll(cfg.root, 0o755); err != nil {
		return nil, nil, fmt.Errorf("create sandbox root: %w", err)
	}
	root, err := filepath.Abs(cfg.root)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox root: %w", err)
	}
	ledgerPath := cfg.ledger
	if ledgerPath == "" {
		ledgerPath = filepath.Join(root, defaultLedgerName)
	}
	if ledgerPath, err = filepath.Abs(ledgerPath); err != nil {
		return nil, nil, fmt.Errorf("ledger path: %w", err)
	}

	box, err := openSandbox(root, ledgerPath)
	if err != nil {
		return nil, nil, err
	}
	seed, err := fs.Sub(seedFiles, "seed")
	if err != nil {
		box.Close()
		return nil, nil, fmt.Errorf("seed files: %w", err)
	}
	seeded, err := box.seedIfEmpty(seed)
	if err != nil {
		box.Close()
		return nil, nil, err
	}
	if seeded {
		logger.Info("seeded empty sandbox with sample files", "root", box.Dir())
	}

	customers, err := loadCRM(cfg.crmPath)
	if err != nil {
		box.Close()
		return nil, nil, err
	}

	a := &app{
		box:    box,
		crm:    customers,
		ledger: newLedger(ledgerPath),
		fetch:  newFetcher("mcp-mediator-demo-upstream/" + version),
		logger: logger,
	}
	closeApp := func() {
		if err := box.Close(); err != nil {
			logger.Warn("close sandbox", "error", err)
		}
	}
	return a, closeApp, nil
}
