package mediator

import "testing"

// A URI belongs to a template only when the template can produce it: its
// literal text, and each expression expanded to the characters RFC 6570
// allows it.
func TestCatalogResourceServerByTemplate(t *testing.T) {
	cat := NewCatalog(nil, nil, []ResourceTemplate{
		{URITemplate: "db://table/{name}", Server: "db"},
		{URITemplate: "file://{+path}", Server: "files"},
		{URITemplate: "q://search{?term}", Server: "q"},
	}, nil, nil)
	cases := []struct {
		uri, server string
	}{
		{"db://table/users", "db"},
		{"db://table/x';DROP", ""}, // a quote is no unreserved character
		{"db://table/a(b)", ""},
		{"db://table/", ""}, // an expression stands for something
		{"db://table/a/b", ""},
		{"db://table/caf%C3%A9", "db"},
		{"file://etc/hosts", "files"},
		{"q://search?term=x", "q"},
		{"other://x", ""},
	}
	for _, c := range cases {
		server, _, ok := cat.ResourceServer(c.uri)
		if ok != (c.server != "") || server != c.server {
			t.Errorf("ResourceServer(%q) = %q, %v; want %q", c.uri, server, ok, c.server)
		}
	}
}
