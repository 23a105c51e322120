package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
)

// rawListing holds the objects of an upstream's list results exactly as
// received.
type rawListing struct {
	tools, resources, templates, prompts []json.RawMessage
}

// list fetches everything the upstream declared it offers. Lists are
// requested at the JSON-RPC level: mcp-go's typed results (mcp.Tool has no
// UnmarshalJSON, its InputSchema keeps only type, properties and required)
// would lose schema keywords such as oneOf and $defs.
func (u *upstream) list(c *conn) (*listing, error) {
	caps := c.init.Capabilities
	var raw rawListing
	var err error
	if caps.Tools != nil {
		if raw.tools, err = u.listAll(c, string(mcp.MethodToolsList), "tools"); err != nil {
			return nil, err
		}
	}
	if caps.Prompts != nil {
		if raw.prompts, err = u.listAll(c, string(mcp.MethodPromptsList), "prompts"); err != nil {
			return nil, err
		}
	}
	if caps.Resources != nil {
		if raw.resources, err = u.listAll(c, string(mcp.MethodResourcesList), "resources"); err != nil {
			return nil, err
		}
		if raw.templates, err = u.listAll(c, string(mcp.MethodResourcesTemplatesList), "resourceTemplates"); err != nil {
			return nil, err
		}
	}
	return buildListing(&u.cfg, u.prefix, raw, u.log), nil
}

// listAll follows method's pagination cursors and returns the items of the
// result member field. A method the upstream does not implement lists
// nothing. The pages, the items and the repetition of cursors are bounded.
func (u *upstream) listAll(c *conn, method, field string) ([]json.RawMessage, error) {
	var items []json.RawMessage
	seen := map[string]bool{}
	cursor := ""
	for range maxListPages {
		page, next, err := u.listPage(c, method, field, cursor)
		if err != nil {
			var rpc *rpcError
			if errors.As(err, &rpc) && rpc.Code == mcp.METHOD_NOT_FOUND {
				u.log.Debug("upstream does not implement a list method it declared", "method", method)
				return nil, nil
			}
			return nil, err
		}
		items = append(items, page...)
		if len(items) > maxListItems {
			return nil, fmt.Errorf("%s: more than %d items: the registry refuses an upstream that large", method, maxListItems)
		}
		if next == "" {
			return items, nil
		}
		if seen[next] {
			return nil, fmt.Errorf("%s: the upstream repeated cursor %q", method, next)
		}
		seen[next] = true
		cursor = next
	}
	return nil, fmt.Errorf("%s: more than %d pages", method, maxListPages)
}

// listPage requests one page.
func (u *upstream) listPage(c *conn, method, field, cursor string) ([]json.RawMessage, string, error) {
	params := map[string]any{}
	if cursor != "" {
		params["cursor"] = cursor
	}
	ctx, cancel := context.WithTimeout(c.ctx, u.timeout)
	defer cancel()
	res, err := c.request(ctx, method, params)
	if err != nil {
		return nil, "", err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(res, &members); err != nil {
		return nil, "", fmt.Errorf("%s: result is not a JSON object: %w", method, err)
	}
	var items []json.RawMessage
	if raw, ok := members[field]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, "", fmt.Errorf("%s: %q is not an array: %w", method, field, err)
		}
	}
	var next string
	if raw, ok := members["nextCursor"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &next); err != nil {
			return nil, "", fmt.Errorf("%s: nextCursor is not a string: %w", method, err)
		}
	}
	return items, next, nil
}
