package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// JWT token sources: where a client puts its token.
const (
	JWTFromPassword = "password"
	JWTFromUsername = "username"
)

// jwtAlgorithms are the algorithms a JWT authenticator may be configured to
// accept. "none" is never among them.
var jwtAlgorithms = []string{
	"HS256", "HS384", "HS512",
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
}

// JWTOptions configure a JWT authenticator. Start from DefaultJWTOptions.
type JWTOptions struct {
	// From is where the token is: JWTFromPassword (default) or
	// JWTFromUsername.
	From string
	// Algorithms are the only signature algorithms accepted; the token's
	// "alg" header chooses among them, never beyond them.
	Algorithms []string
	// Secret is the HMAC key for HS256/384/512.
	Secret []byte
	// PublicKeyFile is a PEM file holding an RSA or ECDSA public key (or a
	// certificate carrying one) for RS/PS/ES tokens.
	PublicKeyFile string
	// JWKSURL is a JSON Web Key Set fetched at start, every JWKSRefresh,
	// and when a token names a key ID ("kid") not in the set, at most once
	// per JWKSMinRefresh.
	JWKSURL        string
	JWKSRefresh    time.Duration
	JWKSMinRefresh time.Duration
	JWKSTimeout    time.Duration
	// HTTPClient fetches the JWKS (nil: a default client).
	HTTPClient *http.Client
	// ACLClaim names the claim holding the client's access rules in EMQX's
	// format (see JWTAuthorizer); "" ignores any.
	ACLClaim string
	// RequiredClaims must be present in the token with these values; %u
	// and %c in a value are replaced by the user name and client ID.
	RequiredClaims map[string]string
	// DisconnectOnExpiry sets Client.DisconnectAt to the token's "exp".
	DisconnectOnExpiry bool
	// Leeway is allowed on "exp", "nbf" and "iat" for clock skew.
	Leeway time.Duration
	// Next is asked about credentials that are not a JWT (nil: they are
	// refused). This is how JWT chains with a password file or a hook.
	Next Authenticator
	// Logger reports JWKS refresh failures (nil: slog.Default()).
	Logger *slog.Logger
}

// DefaultJWTOptions returns: token in the password, algorithm HS256, ACL
// claim "acl", JWKS refreshed every 5 minutes and at most every 30 seconds
// on an unknown key ID, 5 s HTTP time-out, 30 s of leeway.
func DefaultJWTOptions() JWTOptions {
	return JWTOptions{
		From:           JWTFromPassword,
		Algorithms:     []string{"HS256"},
		ACLClaim:       "acl",
		JWKSRefresh:    5 * time.Minute,
		JWKSMinRefresh: 30 * time.Second,
		JWKSTimeout:    5 * time.Second,
		Leeway:         30 * time.Second,
	}
}

// Validate reports every problem with o at once. It does not read files.
func (o JWTOptions) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("auth: jwt: "+format, a...)) }
	if o.From != JWTFromPassword && o.From != JWTFromUsername {
		bad("from %q is not password or username", o.From)
	}
	if len(o.Algorithms) == 0 {
		bad("no algorithms configured")
	}
	var hs, asym bool
	for _, a := range o.Algorithms {
		if !slices.Contains(jwtAlgorithms, a) {
			bad("algorithm %q is not one of %s", a, strings.Join(jwtAlgorithms, ", "))
			continue
		}
		if strings.HasPrefix(a, "HS") {
			hs = true
		} else {
			asym = true
		}
	}
	if hs && len(o.Secret) == 0 && o.JWKSURL == "" {
		bad("HMAC algorithms configured but no secret (or jwks_url)")
	}
	if !hs && len(o.Secret) > 0 {
		bad("a secret is set but no HS algorithm is accepted")
	}
	if asym && o.PublicKeyFile == "" && o.JWKSURL == "" {
		bad("RSA/ECDSA algorithms configured but neither public_key_file nor jwks_url")
	}
	if o.JWKSURL != "" {
		u, err := url.Parse(o.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("jwks_url %q is not an absolute http or https URL", o.JWKSURL)
		}
		if o.JWKSRefresh <= 0 || o.JWKSMinRefresh <= 0 || o.JWKSTimeout <= 0 {
			bad("JWKS refresh, minimum refresh and time-out must be above zero")
		}
	}
	if o.Leeway < 0 {
		bad("leeway %v is negative", o.Leeway)
	}
	for k := range o.RequiredClaims {
		if k == "" {
			bad("required claim with an empty name")
		}
	}
	return errors.Join(errs...)
}

// JWT authenticates clients by a JSON Web Token in their password (or user
// name). The token's signature, "exp", "nbf" and "iat" and the required
// claims are checked; a token that passes admits the client, and its ACL
// claim, if any, is kept on the Client for JWTAuthorizer.
//
// A credential that is not shaped as a JWT (three base64url parts separated
// by dots) goes to Next, so a password file or a hook can serve the clients
// that have no token. A credential that is a JWT and fails is refused
// without asking Next: Deny for a bad signature, an unknown key, a wrong
// algorithm, a malformed token or one out of its validity period;
// DenyNotAuthorized for a required claim missing or different.
//
// It is safe for concurrent use. Close stops the JWKS refresh.
type JWT struct {
	opts    JWTOptions
	parser  *jwt.Parser
	rsaKey  *rsa.PublicKey
	ecKey   *ecdsa.PublicKey
	jwks    keyfunc.Keyfunc
	cancel  context.CancelFunc
	counter [jwtReasons]atomic.Uint64
}

// JWT outcomes, counted by Stats.
const (
	JWTAccepted    = iota // admitted
	JWTNotToken           // not a JWT: passed to Next
	JWTMalformed          // not decodable
	JWTAlgorithm          // alg not configured (none included)
	JWTSignature          // signature does not verify
	JWTUnknownKey         // no key for its kid, or the JWKS could not be read
	JWTExpired            // exp passed
	JWTNotYetValid        // nbf or iat in the future
	JWTClaims             // a required claim missing or different
	JWTBadACL             // ACL claim malformed
	jwtReasons
)

var jwtReasonNames = [jwtReasons]string{
	"accepted", "not_jwt", "malformed", "algorithm", "signature", "unknown_key",
	"expired", "not_yet_valid", "claims", "bad_acl",
}

// NewJWT validates o, loads the public key file and starts fetching the
// JWKS. A JWKS that cannot be fetched at start is not an error: it is
// fetched again on the first token and every refresh interval, and until
// then tokens needing it are refused.
func NewJWT(o JWTOptions) (*JWT, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	j := &JWT{opts: o}
	j.parser = jwt.NewParser(jwt.WithValidMethods(o.Algorithms), jwt.WithLeeway(o.Leeway), jwt.WithIssuedAt())
	if o.PublicKeyFile != "" {
		if err := j.loadPublicKey(o.PublicKeyFile); err != nil {
			return nil, err
		}
	}
	if o.JWKSURL != "" {
		log := o.Logger
		if log == nil {
			log = slog.Default()
		}
		ctx, cancel := context.WithCancel(context.Background())
		k, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{o.JWKSURL}, keyfunc.Override{
			Client:          o.HTTPClient,
			HTTPTimeout:     o.JWKSTimeout,
			RefreshInterval: o.JWKSRefresh,
			// Bounds both the wait for the limiter and the fetch it allows:
			// with JWKSMinRefresh above it, a rate-limited unknown kid is
			// refused at once rather than holding its CONNECT.
			RateLimitWaitMax: o.JWKSTimeout,
			// One refresh per JWKSMinRefresh when a token names an unknown kid.
			RefreshUnknownKID: rate.NewLimiter(rate.Every(o.JWKSMinRefresh), 1),
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(_ context.Context, err error) {
					log.Error("jwt: cannot refresh the JWKS; tokens signed by keys not yet fetched are refused", "url", u, "error", err)
				}
			},
		})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("auth: jwt: jwks_url %s: %w", o.JWKSURL, err)
		}
		j.jwks, j.cancel = k, cancel
	}
	return j, nil
}

// Close stops the JWKS refresh. Authenticate keeps working on the keys held.
func (j *JWT) Close() error {
	if j.cancel != nil {
		j.cancel()
	}
	return nil
}

func (j *JWT) loadPublicKey(name string) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("auth: jwt: public_key_file: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return fmt.Errorf("auth: jwt: public_key_file %s: no PEM block", name)
	}
	var key any
	switch blk.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return fmt.Errorf("auth: jwt: public_key_file %s: %w", name, err)
		}
		key = cert.PublicKey
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(blk.Bytes)
	default:
		key, err = x509.ParsePKIXPublicKey(blk.Bytes)
	}
	if err != nil {
		return fmt.Errorf("auth: jwt: public_key_file %s: %w", name, err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		j.rsaKey = k
	case *ecdsa.PublicKey:
		j.ecKey = k
	default:
		return fmt.Errorf("auth: jwt: public_key_file %s: a %T key is neither RSA nor ECDSA", name, key)
	}
	if j.opts.JWKSURL == "" {
		for _, a := range j.opts.Algorithms {
			switch {
			case a[0] == 'E' && j.ecKey == nil:
				return fmt.Errorf("auth: jwt: public_key_file %s holds an RSA key but %s is accepted", name, a)
			case (a[0] == 'R' || a[0] == 'P') && j.rsaKey == nil:
				return fmt.Errorf("auth: jwt: public_key_file %s holds an ECDSA key but %s is accepted", name, a)
			}
		}
	}
	return nil
}

// errNoKey is a keyfunc answer when no configured key fits the algorithm.
var errNoKey = errors.New("no key configured for this algorithm")

// keyFor picks the verification key by the algorithm family, so that a key
// of one kind is never used with an algorithm of another (an RSA public key
// is never an HMAC secret).
func (j *JWT) keyFor(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		switch {
		case strings.HasPrefix(alg, "HS") && len(j.opts.Secret) > 0:
			return j.opts.Secret, nil
		case (strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")) && j.rsaKey != nil:
			return j.rsaKey, nil
		case strings.HasPrefix(alg, "ES") && j.ecKey != nil:
			return j.ecKey, nil
		case j.jwks != nil:
			return j.jwks.KeyfuncCtx(ctx)(t)
		}
		return nil, errNoKey
	}
}

// looksLikeJWT reports whether s has the shape of a compact JWS: three
// base64url parts separated by dots, the first two not empty (the
// signature is empty for alg "none", which the parser then refuses).
func looksLikeJWT(s []byte) bool {
	dots, last := 0, -1
	for i, b := range s {
		switch {
		case b == '.':
			if i == last+1 || dots == 2 {
				return false
			}
			dots++
			last = i
		case b >= 'A' && b <= 'Z', b >= 'a' && b <= 'z', b >= '0' && b <= '9', b == '-', b == '_', b == '=':
		default:
			return false
		}
	}
	return dots == 2
}

// token returns the credential holding the token.
func (j *JWT) token(c *Client) []byte {
	if j.opts.From == JWTFromUsername {
		return []byte(c.Username)
	}
	if !c.HasPassword {
		return nil
	}
	return c.Password
}

// HandlesAnonymous reports whether c, which has no user name, carries a
// token in its password: the broker then asks Authenticate instead of
// treating it as anonymous (MQTT 5.0 allows a password without a user name).
func (j *JWT) HandlesAnonymous(c *Client) bool {
	return j.opts.From == JWTFromPassword && c.HasPassword && looksLikeJWT(c.Password)
}

// Authenticate checks the token. See JWT.
func (j *JWT) Authenticate(ctx context.Context, c *Client) (Result, error) {
	tok := j.token(c)
	if !looksLikeJWT(tok) {
		j.counter[JWTNotToken].Add(1)
		if j.opts.Next == nil {
			return Deny, nil
		}
		return j.opts.Next.Authenticate(ctx, c)
	}
	claims := jwt.MapClaims{}
	t, err := j.parser.ParseWithClaims(string(tok), claims, j.keyFor(ctx))
	if err != nil {
		reason := j.classify(t, err)
		j.counter[reason].Add(1)
		return Deny, nil
	}
	if !j.claimsMatch(claims, c) {
		j.counter[JWTClaims].Add(1)
		return DenyNotAuthorized, nil
	}
	if j.opts.ACLClaim != "" {
		if raw, ok := claims[j.opts.ACLClaim]; ok {
			rules, err := parseACLClaim(raw)
			if err != nil {
				j.counter[JWTBadACL].Add(1)
				return DenyNotAuthorized, nil
			}
			c.jwtACL = rules
		}
	}
	if j.opts.DisconnectOnExpiry {
		if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
			c.DisconnectAt = exp.Time.Add(j.opts.Leeway)
		}
	}
	j.counter[JWTAccepted].Add(1)
	return Allow, nil
}

// classify names why a token failed.
func (j *JWT) classify(t *jwt.Token, err error) int {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return JWTMalformed
	case t != nil && t.Method != nil && !slices.Contains(j.opts.Algorithms, t.Method.Alg()):
		return JWTAlgorithm
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		if t != nil && t.Method == nil {
			return JWTAlgorithm // unknown alg, "none" unregistered and the like
		}
		return JWTUnknownKey
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return JWTSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return JWTExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return JWTNotYetValid
	}
	return JWTMalformed
}

// claimsMatch checks the required claims. A claim that is a list (as "aud"
// may be) matches when any element does; numbers and booleans compare by
// their JSON text.
func (j *JWT) claimsMatch(claims jwt.MapClaims, c *Client) bool {
	for name, want := range j.opts.RequiredClaims {
		want = expandPlaceholders(want, c)
		got, ok := claims[name]
		if !ok || !claimEquals(got, want) {
			return false
		}
	}
	return true
}

func claimEquals(got any, want string) bool {
	switch g := got.(type) {
	case string:
		return g == want
	case []any:
		for _, e := range g {
			if claimEquals(e, want) {
				return true
			}
		}
		return false
	case float64, bool:
		return fmt.Sprint(g) == want
	}
	return false
}

// expandPlaceholders replaces %u and %c (and EMQX's ${username} and
// ${clientid}) in s.
func expandPlaceholders(s string, c *Client) string {
	if !strings.ContainsAny(s, "%$") {
		return s
	}
	return strings.NewReplacer("%u", c.Username, "%c", c.ClientID,
		"${username}", c.Username, "${clientid}", c.ClientID).Replace(s)
}

// JWTStat is one counter of Stats.
type JWTStat struct {
	Reason string
	Count  uint64
}

// Stats returns the number of tokens accepted and refused, by reason:
// accepted, not_jwt (handed to the next authenticator), malformed,
// algorithm, signature, unknown_key, expired, not_yet_valid, claims, bad_acl.
func (j *JWT) Stats() []JWTStat {
	out := make([]JWTStat, jwtReasons)
	for i := range out {
		out[i] = JWTStat{Reason: jwtReasonNames[i], Count: j.counter[i].Load()}
	}
	return out
}
