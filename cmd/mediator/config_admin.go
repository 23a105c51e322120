package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mcp-mediator/mediator/tools"
)

// AdminConfig is the admin: block: the management API of `mediator serve`
// (admin.go), which the management commands use to act on a running
// server.
type AdminConfig struct {
	// Listen is the address of the admin API, "" to turn it off. It must
	// be a loopback address: the API has no TLS yet, and its bearer tokens
	// carry the admin role.
	Listen string `yaml:"listen"`
	// AllowedCommands lists the programs (absolute paths, or @mediator)
	// that POST /admin/v1/upstreams may start as stdio upstreams. Empty,
	// the default: the API registers remote (url) upstreams only. A
	// listed program runs with whatever arguments an admin token holder
	// gives it, so do not list shells, interpreters or package runners
	// (sh, python, node, npx, uvx) unless such holders may run any code
	// as the mediator's user.
	AllowedCommands []string `yaml:"allowed_commands"`
	// AllowedEnv lists the environment variables an upstream registered
	// through the API may set for its child. Empty, the default: none
	// (LD_PRELOAD, PATH, NODE_OPTIONS and the like would let a
	// registration run other code than the allowed command).
	AllowedEnv []string `yaml:"allowed_env"`
}

// defaultAdminListen is the admin API's address unless the config says
// otherwise.
const defaultAdminListen = "127.0.0.1:8081"

func defaultAdmin() AdminConfig { return AdminConfig{Listen: defaultAdminListen} }

// validate checks the admin: block and names the key and the fix.
func (a *AdminConfig) validate() []error {
	var errs []error
	for _, c := range a.AllowedCommands {
		if c != SelfCommand && !filepath.IsAbs(c) {
			errs = append(errs, fmt.Errorf("admin.allowed_commands: %q is not an absolute path; list programs as /usr/bin/NAME (or %s)", c, SelfCommand))
		}
	}
	for _, k := range a.AllowedEnv {
		if k == "" || strings.ContainsAny(k, "= \t") {
			errs = append(errs, fmt.Errorf("admin.allowed_env: %q is not a variable name", k))
		}
	}
	if a.Listen == "" {
		return errs
	}
	host, _, err := net.SplitHostPort(a.Listen)
	if err != nil {
		return append(errs, fmt.Errorf("admin.listen: %q is not host:port (e.g. %s), or \"\" to turn the admin API off",
			a.Listen, defaultAdminListen))
	}
	if !loopbackHost(host) {
		return append(errs, errors.New("admin.listen: "+a.Listen+" is not a loopback address; the admin API "+
			"serves loopback only (it has no TLS yet): use e.g. "+defaultAdminListen))
	}
	return errs
}

// allowRegistration refuses a stdio upstream registered through the API
// whose command admin.allowed_commands does not list, or whose env sets a
// variable admin.allowed_env does not list.
func (a *AdminConfig) allowRegistration(c tools.Config) error {
	var errs []error
	if c.Command != "" && !slices.Contains(a.AllowedCommands, c.Command) {
		if len(a.AllowedCommands) == 0 {
			errs = append(errs, fmt.Errorf("command %q: the admin API starts no programs unless admin.allowed_commands lists them "+
				"(it is empty); register a remote upstream (url), or have the operator list the program's absolute path there", c.Command))
		} else {
			errs = append(errs, fmt.Errorf("command %q is not in admin.allowed_commands (%s); use one of those, by its absolute path, "+
				"or have the operator add it", c.Command, strings.Join(a.AllowedCommands, ", ")))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		if !slices.Contains(a.AllowedEnv, k) {
			errs = append(errs, fmt.Errorf("env %s: not in admin.allowed_env; an upstream registered through the API may set only the variables listed there", k))
		}
	}
	return errors.Join(errs...)
}

// loopbackHost reports whether host is "localhost" or a loopback IP
// address; an empty host (every interface) is not.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// adminURL is the base URL of the admin API at listen.
func adminURL(listen string) string { return "http://" + listen }

// override applies the --admin-listen flag: "" keeps the config's value,
// "off" turns the API off.
func (a *AdminConfig) override(flag string) error {
	switch flag {
	case "":
		return nil
	case "off":
		a.Listen = ""
		return nil
	}
	a.Listen = flag
	return errors.Join(a.validate()...)
}
