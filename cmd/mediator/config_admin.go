package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// AdminConfig is the admin: block: the management API of `mediator serve`
// (admin.go), which the management commands use to act on a running
// server.
type AdminConfig struct {
	// Listen is the address of the admin API, "" to turn it off. It must
	// be a loopback address: the API has no TLS yet, and its bearer tokens
	// carry the admin role.
	Listen string `yaml:"listen"`
}

// defaultAdminListen is the admin API's address unless the config says
// otherwise.
const defaultAdminListen = "127.0.0.1:8081"

func defaultAdmin() AdminConfig { return AdminConfig{Listen: defaultAdminListen} }

// validate checks the admin: block and names the key and the fix.
func (a *AdminConfig) validate() []error {
	if a.Listen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(a.Listen)
	if err != nil {
		return []error{fmt.Errorf("admin.listen: %q is not host:port (e.g. %s), or \"\" to turn the admin API off",
			a.Listen, defaultAdminListen)}
	}
	if !loopbackHost(host) {
		return []error{errors.New("admin.listen: " + a.Listen + " is not a loopback address; the admin API " +
			"serves loopback only (it has no TLS yet): use e.g. " + defaultAdminListen)}
	}
	return nil
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
