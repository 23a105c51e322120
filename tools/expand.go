package tools

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Expand substitutes ${VAR} references using lookup, in exactly two places:
// the values of Env and the values of Headers. Nothing else in a Config is
// expanded (a command, URL or argument that names a variable keeps it
// literally), so a secret can only end up where credentials belong. "$$"
// stands for a literal "$". A variable lookup does not know is an error
// naming the key and the variable; so is a malformed reference. Expand
// replaces the maps rather than editing them, so a caller's maps are never
// changed. On error c is left unchanged.
func (c *Config) Expand(lookup func(string) (string, bool)) error {
	w := where(-1, c.Name)
	env, envErr := expandMap(w, "env", c.Env, lookup)
	headers, hdrErr := expandMap(w, "headers", c.Headers, lookup)
	if err := errors.Join(envErr, hdrErr); err != nil {
		return err
	}
	c.Env, c.Headers = env, headers
	return nil
}

func expandMap(w, key string, m map[string]string, lookup func(string) (string, bool)) (map[string]string, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]string, len(m))
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v, err := expandString(m[k], lookup)
		if err != nil {
			errs = append(errs, &configError{where: w, msg: fmt.Sprintf("%s.%s: %s", key, k, err)})
			continue
		}
		out[k] = v
	}
	return out, errors.Join(errs...)
}

// expandString replaces ${NAME} in s. Its errors are messages, without a
// key path: the caller adds it.
func expandString(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		if i+1 >= len(s) || s[i+1] != '{' {
			b.WriteByte('$')
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ reference: close it with } (write $$ for a literal $)")
		}
		name := s[i+2 : i+2+end]
		if !varNameRE.MatchString(name) {
			return "", fmt.Errorf("${%s} is not a valid variable reference: use ${NAME} with letters, digits and '_'", name)
		}
		v, ok := lookup(name)
		if !ok {
			return "", fmt.Errorf("variable %s is not set: set it in the mediator's environment, or remove the reference", name)
		}
		b.WriteString(v)
		i += 2 + end
	}
	return b.String(), nil
}
