// Package auth decides who may connect to the broker and what each client
// may read and write. It imports the topic package, the standard library,
// golang.org/x/crypto and golang.org/x/time, and for JWT
// github.com/golang-jwt/jwt/v5 and github.com/MicahParks/keyfunc/v3.
//
// # Interfaces
//
// The broker calls two small interfaces, each one method:
//
//   - [Authenticator] on CONNECT: Allow, Deny (bad user name or password) or
//     DenyNotAuthorized, and an error when it could not decide. Every
//     implementation here fails closed: an error comes with a refusal.
//   - [Authorizer] with an [Access]: Read on the filter of each SUBSCRIBE
//     and again on the topic name of each message before delivery, Write on
//     the topic name of each PUBLISH.
//
// Both take a [Client]: the client ID, user name, password, remote address,
// listener name, certificate common name and protocol version of the
// connection. An empty user name is an anonymous client.
//
// # Implementations
//
//   - [PasswordFile] (Authenticator): "username:hash" lines. New passwords
//     are hashed with argon2id ([HashPassword], [Argon2Params]); Mosquitto's
//     $6$ (SHA-512) and $7$ (PBKDF2-HMAC-SHA512) hashes and libargon2's
//     $argon2id$ strings are read too, so a mosquitto_passwd file loads
//     unchanged. [PasswordFile.Set], [PasswordFile.Delete] and
//     [PasswordFile.WriteFile] (atomic, mode 0600) serve "gannet passwd".
//     A password file refuses anonymous clients; [AllowAnonymous] wraps any
//     Authenticator to admit them.
//   - [ACL] (Authorizer): Mosquitto's acl_file syntax (user, topic,
//     pattern with %u and %c, read/write/readwrite/deny); deny by default.
//     The decision rules and the rule for SUBSCRIBE filters are on [ACL].
//   - [HTTPHook] (both): a JSON POST per decision, with a time-out and a
//     bounded cache of decisions.
//   - [JWT] (Authenticator): a JSON Web Token in the password or user name,
//     HMAC, RSA or ECDSA, keys from a PEM file or a JWKS URL; credentials
//     that are not JWTs go on to [JWTOptions].Next. [JWTAuthorizer] applies
//     the token's ACL claim (EMQX's format) before another Authorizer. See
//     docs/jwt.md.
//
// Optional interfaces, found by type assertion: [AnonymousHandler] (an
// Authenticator that decides about some clients without a user name) and
// [MessageAuthorizer] (an Authorizer that also judges QoS and retain).
//
// Loading a file reports every bad line, each as a [*ParseError] naming the
// file and line, joined with errors.Join.
//
// # HTTP hook protocol
//
// Each decision is a POST with Content-Type application/json to AuthURL
// (authentication) or ACLURL (authorisation), plus the configured headers:
//
//	{
//	  "action": "connect" | "read" | "write" | "readwrite",
//	  "clientid": "sensor-17",
//	  "username": "alice",          // "" for an anonymous client
//	  "password": "secret",         // connect only, when the client sent a UTF-8 password
//	  "password_base64": "AAEC",    // connect only, instead of password when it is not UTF-8
//	  "remote": "192.0.2.7:53211",
//	  "listener": "tls",
//	  "cert_cn": "sensor-17",
//	  "protocol_version": 5,        // 3, 4 or 5
//	  "topic": "sensors/17/temp"    // authorisation only; a filter for a SUBSCRIBE
//	}
//
// action, clientid and username are always present; other empty fields are
// left out. The answer must have a 2xx status and the body
//
//	{"result": "allow"}   or   {"result": "deny"}   or   {"result": "not_authorized"}
//
// For authentication, "deny" means bad credentials and "not_authorized"
// means not allowed to connect; for authorisation both refuse. Anything else
// (a transport error, the time-out, a redirect, another status, another body)
// refuses and returns an error wrapping [ErrHook]; errors are not cached.
// Decisions are cached by the digest of every request field, the password
// included but the remote port left out, for CacheTTL, in an LRU of at most
// CacheSize entries; the cache holds digests, never a password.
//
// # Differences from Mosquitto 2.0
//
// Password files:
//   - A line without ':', a user listed twice, a plain-text password or a hash
//     in an unknown scheme is a load error naming the line; Mosquitto skips
//     the line, or logs and drops the user. [LoadPasswordFileSkipping] does
//     as Mosquitto, reporting each skipped line.
//   - Passwords are compared as bytes; Mosquitto stops at the first NUL.
//
// ACL files:
//   - All deny rules, the client's and the patterns, are checked before any
//     grant, as the mosquitto.conf man page describes. Mosquitto's code
//     checks the client's section (its denies, then its grants) before the
//     patterns, so there a user's grant beats a deny pattern.
//   - SUBSCRIBE is checked: the filter must be covered by a rule granting
//     read (see [ACL]). Mosquitto 2.0 accepts every SUBSCRIBE and only checks
//     each message on delivery; [ReadAtDelivery] wraps an ACL to do the same.
//   - A client asking for ReadWrite needs a rule granting both; Mosquitto
//     grants if any asked-for bit is granted (it never asks for both).
//   - Substitution: Mosquitto 2.0 refuses every pattern check for a client
//     whose user name or client ID contains '+' or '#'. Gannet also treats
//     '/', a leading '$' and an empty client ID as unsafe, and only the
//     patterns that substitute the unsafe value are affected (grant patterns
//     never match, deny patterns refuse everything).
//   - Tabs separate words as spaces do, and comment lines may be indented.
//
// # Locking
//
// An [ACL] is immutable once loaded; reload builds a new one. A
// [PasswordFile] has one sync.RWMutex, held only to look a user up or to
// change an entry, never while hashing. An [HTTPHook]'s cache has one
// sync.Mutex, never held during a request. No lock here is held while
// calling out of the package.
package auth
