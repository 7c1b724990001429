package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"
)

// HTTPHookOptions configure an HTTPHook. Start from DefaultHTTPHookOptions.
type HTTPHookOptions struct {
	// AuthURL receives a POST for each CONNECT. Empty: the hook does not
	// authenticate, and Authenticate fails closed.
	AuthURL string
	// ACLURL receives a POST for each authorisation check. Empty: the hook
	// does not authorise, and Authorize fails closed.
	ACLURL string
	// Timeout bounds each request, connection included.
	Timeout time.Duration
	// CacheSize is the most decisions kept; 0 disables the cache.
	CacheSize int
	// CacheTTL is how long a decision is kept; 0 disables the cache.
	CacheTTL time.Duration
	// Header is added to every request, e.g. an Authorization header.
	Header http.Header
	// Client sends the requests. Nil: a client that does not follow
	// redirects (a 3xx answer fails closed).
	Client *http.Client
}

// DefaultHTTPHookOptions returns a 5 s time-out and a cache of 4096
// decisions kept for 30 s, with no URL set.
func DefaultHTTPHookOptions() HTTPHookOptions {
	return HTTPHookOptions{Timeout: 5 * time.Second, CacheSize: 4096, CacheTTL: 30 * time.Second}
}

// Validate reports every problem with o at once: no URL set, a URL that is
// not absolute http or https, a time-out not above zero, a negative cache
// size or TTL.
func (o HTTPHookOptions) Validate() error {
	var errs []error
	if o.AuthURL == "" && o.ACLURL == "" {
		errs = append(errs, errors.New("auth: http hook: neither AuthURL nor ACLURL is set"))
	}
	for _, u := range []struct{ name, v string }{{"AuthURL", o.AuthURL}, {"ACLURL", o.ACLURL}} {
		if u.v == "" {
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("auth: http hook: %s %q is not an absolute http or https URL", u.name, u.v))
		}
	}
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("auth: http hook: Timeout %v must be above zero", o.Timeout))
	}
	if o.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("auth: http hook: CacheSize %d is negative", o.CacheSize))
	}
	if o.CacheTTL < 0 {
		errs = append(errs, fmt.Errorf("auth: http hook: CacheTTL %v is negative", o.CacheTTL))
	}
	return errors.Join(errs...)
}

// HTTPHook asks an HTTP service to authenticate and authorise clients. It
// implements Authenticator and Authorizer, and fails closed: a transport
// error, a time-out, a non-2xx status or a body it cannot read is an error
// (wrapping ErrHook) with a refusing answer. Errors are not cached.
//
// The request and response bodies are described in the package
// documentation. It is safe for concurrent use.
type HTTPHook struct {
	opts   HTTPHookOptions
	client *http.Client
	cache  *decisionCache
}

// NewHTTPHook validates o and returns a hook.
func NewHTTPHook(o HTTPHookOptions) (*HTTPHook, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	c := o.Client
	if c == nil {
		c = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &HTTPHook{opts: o, client: c, cache: newDecisionCache(o.CacheSize, o.CacheTTL)}, nil
}

// hookRequest is the JSON body POSTed to the hook.
type hookRequest struct {
	Action         string  `json:"action"`
	ClientID       string  `json:"clientid"`
	Username       string  `json:"username"`
	Password       *string `json:"password,omitempty"`
	PasswordBase64 string  `json:"password_base64,omitempty"`
	Remote         string  `json:"remote,omitempty"`
	Listener       string  `json:"listener,omitempty"`
	CertCN         string  `json:"cert_cn,omitempty"`
	Version        byte    `json:"protocol_version,omitempty"`
	Topic          string  `json:"topic,omitempty"`
}

type hookResponse struct {
	Result string `json:"result"`
}

// maxHookBody caps how much of a response is read.
const maxHookBody = 64 << 10

// Authenticate POSTs action "connect" to AuthURL. An anonymous client is
// asked about like any other, with an empty user name.
func (h *HTTPHook) Authenticate(ctx context.Context, c *Client) (Result, error) {
	if h.opts.AuthURL == "" {
		return Deny, fmt.Errorf("auth: http hook: %w: no AuthURL configured", ErrHook)
	}
	req := newHookRequest("connect", c, "")
	if c.HasPassword {
		if utf8.Valid(c.Password) {
			s := string(c.Password)
			req.Password = &s
		} else {
			req.PasswordBase64 = base64.StdEncoding.EncodeToString(c.Password)
		}
	}
	return h.decide(ctx, h.opts.AuthURL, &req, c.Password)
}

// Authorize POSTs action "read", "write" or "readwrite" with the topic to
// ACLURL. The password is not sent.
func (h *HTTPHook) Authorize(ctx context.Context, c *Client, a Access, topic string) (bool, error) {
	if h.opts.ACLURL == "" {
		return false, fmt.Errorf("auth: http hook: %w: no ACLURL configured", ErrHook)
	}
	if a == 0 || a&^ReadWrite != 0 {
		return false, nil
	}
	req := newHookRequest(a.String(), c, topic)
	r, err := h.decide(ctx, h.opts.ACLURL, &req, nil)
	return r == Allow, err
}

func newHookRequest(action string, c *Client, topic string) hookRequest {
	r := hookRequest{
		Action:   action,
		ClientID: c.ClientID,
		Username: c.Username,
		Listener: c.Listener,
		CertCN:   c.CertCommonName,
		Version:  c.Version,
		Topic:    topic,
	}
	if c.Remote != nil {
		r.Remote = c.Remote.String()
	}
	return r
}

// decide answers req from the cache or from the hook at u.
func (h *HTTPHook) decide(ctx context.Context, u string, req *hookRequest, pw []byte) (Result, error) {
	var key [32]byte
	if h.cache != nil {
		key = cacheKey(u, req, pw)
		if r, ok := h.cache.get(key); ok {
			return r, nil
		}
	}
	r, err := h.post(ctx, u, req)
	if err != nil {
		return Deny, err
	}
	h.cache.put(key, r)
	return r, nil
}

// post sends one request and reads the decision.
func (h *HTTPHook) post(ctx context.Context, u string, req *hookRequest) (Result, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Deny, fmt.Errorf("auth: http hook %s: %w: %w", u, ErrHook, err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return Deny, fmt.Errorf("auth: http hook %s: %w: %w", u, ErrHook, err)
	}
	for k, vs := range h.opts.Header {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(hr)
	if err != nil {
		return Deny, fmt.Errorf("auth: http hook %s: %w: %w", u, ErrHook, err)
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxHookBody))
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Deny, fmt.Errorf("auth: http hook %s: %w: status %s", u, ErrHook, resp.Status)
	}
	var out hookResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxHookBody)).Decode(&out); err != nil {
		return Deny, fmt.Errorf("auth: http hook %s: %w: reading response: %w", u, ErrHook, err)
	}
	switch out.Result {
	case "allow":
		return Allow, nil
	case "deny":
		return Deny, nil
	case "not_authorized":
		return DenyNotAuthorized, nil
	}
	return Deny, fmt.Errorf("auth: http hook %s: %w: result %q is not allow, deny or not_authorized", u, ErrHook, out.Result)
}

// cacheKey digests everything the hook is told, the URL and, for
// authentication, the password; the remote address counts without its port,
// which changes with every connection.
func cacheKey(u string, r *hookRequest, pw []byte) [32]byte {
	d := sha256.New()
	field := func(s string) { writeField(d, []byte(s)) }
	field(u)
	field(r.Action)
	field(r.ClientID)
	field(r.Username)
	if r.Password != nil || r.PasswordBase64 != "" {
		field("p")
		writeField(d, pw)
	} else {
		field("")
	}
	host := r.Remote
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	field(host)
	field(r.Listener)
	field(r.CertCN)
	field(string([]byte{r.Version}))
	field(r.Topic)
	var k [32]byte
	d.Sum(k[:0])
	return k
}

// writeField writes b length-prefixed, so that fields cannot run together.
func writeField(d hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	d.Write(n[:])
	d.Write(b)
}
