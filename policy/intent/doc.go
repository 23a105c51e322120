// Package intent checks tool calls against the scope of a declared intent:
// which tools a task may call (catalog-name globs), how sensitive and risky
// they may be, and what their arguments may hold (constraints). It is the
// deterministic part of the intent check; task lookup, expiry and the
// optional LLM judge live elsewhere.
//
// Scopes come from administrators (ParseScopeJSON, ParseConstraint on the
// command line) and from agents declaring an intent. ValidateScope refuses
// anything the checker could not enforce exactly; Compile turns a valid
// scope into a Compiled whose Check lists the reasons a call is out of
// scope, or returns nil. Narrows tells whether a declared scope asks for
// more than the task it narrows; the checker enforces both scopes anyway.
//
// # Failing closed
//
// Every doubt is out of scope. A max, min or enum constraint tests the
// named top-level argument of every call in the scope: a missing argument,
// an object, null, an empty array, or a type the kind cannot test is out of
// scope; an array is in scope only when every element is. A tool without a
// risk or data class counts as the most severe level when the scope sets a
// maximum.
//
// # Every argument of a kind
//
// Path constraints (prefix, glob) test every argument that holds a path,
// and host constraints every argument that holds a URL, at any depth of the
// arguments (CheckArgs): the argument the constraint names, and every
// other one the operator classifies (upstream config tools.<tool>.paths,
// urls; plain declassifies), the schema formats as a URI, or whose name
// says so (path, paths, filePath, output_file, dir, source, destination;
// url, endpoint, host). A name holding such a word elsewhere than at its
// end (path_prefix, urlTemplate) is unclassifiable: under a constraint of
// its kind the call is out of scope until the operator classifies it. The
// walk stops at 32 levels and 4096 values, beyond which the call is out of
// scope.
//
// Paths (prefix and glob constraints) are absolute, or relative to the
// upstream's own root when the constraint's values are relative (the demo
// upstream's sandbox takes "notes/todo.md"): then the argument must be
// relative too, and one that climbs out of the root after cleaning
// ("notes/../../etc") fails, as do "~", drive letters and absolute paths.
// The argument is
// tested as sent and after each of up to four rounds of percent-decoding,
// and every form must pass: "/srv/reports/..%2f..%2fetc" and the
// double-encoded "%252e%252e%252f" fail. A path with a malformed escape,
// or still holding '%' after four rounds, fails — so does a legitimate
// file name containing a literal '%'. In each form a backslash is read as
// a separator, control characters, invalid UTF-8 and Unicode look-alikes
// of '.', '/' and '\' are refused, and the path is cleaned lexically
// (path.Clean) before it is compared, so "/srv/reports/../../etc/passwd"
// is "/etc/passwd". A segment of dots and spaces only ("...", ".. ") is
// refused, since Windows strips trailing dots and spaces. A prefix matches
// itself and what lies below it at a segment boundary: "/srv/reportsX" is not under "/srv/reports".
//
// The mediator does not see the upstream's file system, so it cannot
// resolve symbolic links: "/srv/reports/link" passes a prefix
// "/srv/reports" even when link points to "/etc". Give the upstream itself
// a matching root as well (for example the allowed directories of the
// filesystem MCP server) so that the file system enforces what the scope
// says.
//
// URLs (host constraints) are parsed with net/url and must be absolute
// http or https URLs with a host and without user information; white
// space, control characters and backslashes are refused, since other URL
// parsers read them differently. The host is compared without port and
// trailing dot, ignoring ASCII case. "*.example.com" matches strict
// subdomains, not example.com itself; an IP literal matches only the same
// address, and IPv4 shorthand hosts ("127.1", "0x7f.0.0.1") match nothing.
// The check is on the name: what the name resolves to is not checked.
//
// Numbers (max and min constraints) must be JSON numbers (float64,
// json.Number or a Go integer type), not strings, finite and no greater
// than the maximum (no less than the minimum); json.Number is compared
// exactly. A max has no lower bound: pair it with a min when the argument
// is a magnitude. Enum constraints compare strings exactly, and
// numbers and booleans by their JSON text ("1", "2.5", "true").
package intent
