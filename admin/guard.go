package admin

import (
	"fmt"
	"net/http"
	"strings"
)

// canonicalPaths answers 400 to a request whose path is not canonical:
// with an empty segment (a//b, //x), a "." or ".." segment (t/./u), as
// sent, before percent-decoding. http.ServeMux would otherwise redirect
// it to the cleaned path, and a client following the redirect would act on
// another resource: DELETE /api/v1/retained/a//b deleting a/b. Segments
// that only decode to such values (%2F, %2E) are data and pass: the mux
// matches wildcards segment by segment, after cleaning the escaped path.
func canonicalPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.EscapedPath(); !isCanonical(p) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf(
				"path %q is not canonical (empty, \".\" or \"..\" segment); percent-encode such data, or use the query form (?topic=, ?id=)", p))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isCanonical reports whether p starts with "/" and has no empty, "." or
// ".." segment; a trailing "/" is allowed.
func isCanonical(p string) bool {
	if p == "/" || p == "*" { // "*": OPTIONS *, which the mux answers itself
		return true
	}
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for _, s := range strings.Split(strings.TrimSuffix(p[1:], "/"), "/") {
		if s == "" || s == "." || s == ".." {
			return false
		}
	}
	return true
}
