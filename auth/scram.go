package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// EnhancedAuth is an MQTT 5.0 enhanced authentication method: the AUTH
// exchange that starts with a CONNECT carrying an Authentication Method.
type EnhancedAuth interface {
	// Method is the Authentication Method name, e.g. "SCRAM-SHA-256".
	Method() string
	// Start begins an exchange with a client.
	Start(c *Client) Exchange
}

// Exchange is one run of an enhanced authentication method.
type Exchange interface {
	// Step takes the client's Authentication Data and returns the
	// server's. done reports that the client is authenticated (reply is
	// then sent in CONNACK or in the final AUTH); an error refuses it.
	Step(data []byte) (reply []byte, done bool, err error)
}

// Identified is implemented by exchanges that learn who the client is;
// the broker then uses that user name for authorisation.
type Identified interface {
	Username() string
}

// ErrAuthFailed is returned by an exchange whose client failed to prove
// its identity.
var ErrAuthFailed = errors.New("auth: authentication failed")

// SCRAMCredential is what the server keeps for one SCRAM-SHA-256 user
// (RFC 5802, RFC 7677): never the password itself.
type SCRAMCredential struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// NewSCRAMCredential derives a credential from a password with a random salt.
func NewSCRAMCredential(password []byte, iterations int) (SCRAMCredential, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	salted, err := pbkdf2.Key(sha256.New, string(password), salt, iterations, sha256.Size)
	if err != nil {
		return SCRAMCredential{}, fmt.Errorf("auth: SCRAM credential: %w", err)
	}
	clientKey := hmacSHA256(salted, []byte("Client Key"))
	stored := sha256.Sum256(clientKey)
	return SCRAMCredential{
		Salt:       salt,
		Iterations: iterations,
		StoredKey:  stored[:],
		ServerKey:  hmacSHA256(salted, []byte("Server Key")),
	}, nil
}

// SCRAM is the SCRAM-SHA-256 enhanced authentication method.
//
// An unknown user gets the same answer as a known one: a salt and an
// iteration count, then a refusal after the proof. The fake salt is an
// HMAC of a server secret and the user name, so it is the same at every
// attempt, as a real user's is; a fresh random salt each time would tell
// an attacker which names exist. The secret is random per SCRAM value (per
// process), like the salts of the credentials config derives at start-up.
type SCRAM struct {
	mu       sync.RWMutex
	users    map[string]SCRAMCredential
	fakeIter int // iterations advertised for unknown users: the last SetUser's

	secret [32]byte // keys the fake salts of unknown users
}

// NewSCRAM returns a SCRAM-SHA-256 method with no users.
func NewSCRAM() *SCRAM {
	s := &SCRAM{users: make(map[string]SCRAMCredential), fakeIter: 4096}
	rand.Read(s.secret[:])
	return s
}

// SetUser adds or replaces a user's credential.
func (s *SCRAM) SetUser(user string, cred SCRAMCredential) {
	s.mu.Lock()
	s.users[user] = cred
	s.fakeIter = cred.Iterations
	s.mu.Unlock()
}

// credential returns user's credential, or for an unknown user a fake one
// that no proof matches, derived from the secret and the name: the same at
// each call, and as cheap as a map look-up plus two HMACs, so that neither
// the salt nor the time taken tells whether the user exists. Deriving it
// stands in for caching it: nothing is stored per unknown name.
func (s *SCRAM) credential(user string) (SCRAMCredential, bool) {
	s.mu.RLock()
	cred, known := s.users[user]
	iter := s.fakeIter
	s.mu.RUnlock()
	if known {
		return cred, true
	}
	salt := hmacSHA256(s.secret[:], []byte("salt\x00"+user))[:16]
	key := hmacSHA256(s.secret[:], []byte("key\x00"+user))
	return SCRAMCredential{Salt: salt, Iterations: iter, StoredKey: key, ServerKey: key}, false
}

// Method returns "SCRAM-SHA-256".
func (s *SCRAM) Method() string { return "SCRAM-SHA-256" }

// Start begins an exchange.
func (s *SCRAM) Start(*Client) Exchange { return &scramExchange{srv: s} }

type scramExchange struct {
	srv         *SCRAM
	step        int
	user        string
	cred        SCRAMCredential
	known       bool
	nonce       string
	firstBare   string
	serverFirst string
}

func (e *scramExchange) Username() string { return e.user }

func (e *scramExchange) Step(data []byte) ([]byte, bool, error) {
	e.step++
	switch e.step {
	case 1:
		return e.first(string(data))
	case 2:
		return e.final(string(data))
	}
	return nil, false, fmt.Errorf("%w: SCRAM exchange already finished", ErrAuthFailed)
}

// first handles client-first-message: gs2-header "n,," then "n=user,r=nonce".
func (e *scramExchange) first(msg string) ([]byte, bool, error) {
	bare, ok := strings.CutPrefix(msg, "n,,")
	if !ok {
		return nil, false, fmt.Errorf("%w: SCRAM client-first-message must start with \"n,,\" (no channel binding)", ErrAuthFailed)
	}
	attrs := scramAttrs(bare)
	user, err := scramUnescape(attrs["n"])
	if err != nil || user == "" || attrs["r"] == "" {
		return nil, false, fmt.Errorf("%w: SCRAM client-first-message lacks a user name or nonce", ErrAuthFailed)
	}
	e.user, e.firstBare = user, bare
	// An unknown user is answered like a known one (SCRAM.credential).
	e.cred, e.known = e.srv.credential(user)
	var nb [18]byte
	rand.Read(nb[:])
	e.nonce = attrs["r"] + base64.RawStdEncoding.EncodeToString(nb[:])
	e.serverFirst = "r=" + e.nonce + ",s=" + base64.StdEncoding.EncodeToString(e.cred.Salt) + ",i=" + strconv.Itoa(e.cred.Iterations)
	return []byte(e.serverFirst), false, nil
}

// final handles client-final-message: "c=biws,r=nonce,p=proof".
func (e *scramExchange) final(msg string) ([]byte, bool, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, false, fmt.Errorf("%w: SCRAM client-final-message has no proof", ErrAuthFailed)
	}
	withoutProof := msg[:i]
	attrs := scramAttrs(msg)
	if attrs["c"] != "biws" || attrs["r"] != e.nonce {
		return nil, false, fmt.Errorf("%w: SCRAM channel binding or nonce mismatch", ErrAuthFailed)
	}
	proof, err := base64.StdEncoding.DecodeString(attrs["p"])
	if err != nil || len(proof) != sha256.Size {
		return nil, false, fmt.Errorf("%w: SCRAM proof is not a base64 SHA-256", ErrAuthFailed)
	}
	authMessage := []byte(e.firstBare + "," + e.serverFirst + "," + withoutProof)
	signature := hmacSHA256(e.cred.StoredKey, authMessage)
	clientKey := make([]byte, sha256.Size)
	subtle.XORBytes(clientKey, proof, signature)
	stored := sha256.Sum256(clientKey)
	if !e.known || subtle.ConstantTimeCompare(stored[:], e.cred.StoredKey) != 1 {
		return nil, false, fmt.Errorf("%w: bad SCRAM proof for user %q", ErrAuthFailed, e.user)
	}
	verifier := hmacSHA256(e.cred.ServerKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(verifier)), true, nil
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// scramAttrs splits "a=1,b=2" into a map (first value of each name wins).
func scramAttrs(s string) map[string]string {
	out := make(map[string]string)
	for _, part := range strings.Split(s, ",") {
		if len(part) >= 2 && part[1] == '=' {
			if _, dup := out[part[:1]]; !dup {
				out[part[:1]] = part[2:]
			}
		}
	}
	return out
}

// scramUnescape decodes "=2C" and "=3D" in a SCRAM user name (RFC 5802 5.1).
func scramUnescape(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", errors.New("auth: bad escape in SCRAM user name")
		}
		i += 2
	}
	return b.String(), nil
}

// SCRAMClient computes the client side of SCRAM-SHA-256, for tests and for
// the Gannet client library.
type SCRAMClient struct {
	User, Password string
	nonce          string
	firstBare      string
	serverSig      []byte
}

// First returns the client-first-message.
func (c *SCRAMClient) First() []byte {
	var nb [18]byte
	rand.Read(nb[:])
	c.nonce = base64.RawStdEncoding.EncodeToString(nb[:])
	user := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(c.User)
	c.firstBare = "n=" + user + ",r=" + c.nonce
	return []byte("n,," + c.firstBare)
}

// Final answers the server-first-message with the client-final-message.
func (c *SCRAMClient) Final(serverFirst []byte) ([]byte, error) {
	attrs := scramAttrs(string(serverFirst))
	if !strings.HasPrefix(attrs["r"], c.nonce) {
		return nil, errors.New("auth: SCRAM server nonce does not extend ours")
	}
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	if err != nil {
		return nil, fmt.Errorf("auth: SCRAM salt: %w", err)
	}
	iter, err := strconv.Atoi(attrs["i"])
	if err != nil || iter < 1 {
		return nil, errors.New("auth: SCRAM iteration count")
	}
	salted, err := pbkdf2.Key(sha256.New, c.Password, salt, iter, sha256.Size)
	if err != nil {
		return nil, err
	}
	clientKey := hmacSHA256(salted, []byte("Client Key"))
	stored := sha256.Sum256(clientKey)
	withoutProof := "c=biws,r=" + attrs["r"]
	authMessage := []byte(c.firstBare + "," + string(serverFirst) + "," + withoutProof)
	proof := make([]byte, sha256.Size)
	subtle.XORBytes(proof, clientKey, hmacSHA256(stored[:], authMessage))
	c.serverSig = hmacSHA256(hmacSHA256(salted, []byte("Server Key")), authMessage)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// Verify checks the server-final-message, proving the server knew the
// credential.
func (c *SCRAMClient) Verify(serverFinal []byte) error {
	v, ok := strings.CutPrefix(string(serverFinal), "v=")
	sig, err := base64.StdEncoding.DecodeString(v)
	if !ok || err != nil || !hmac.Equal(sig, c.serverSig) {
		return errors.New("auth: SCRAM server signature does not verify")
	}
	return nil
}
