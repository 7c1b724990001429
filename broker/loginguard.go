package broker

import (
	"hash/maphash"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
)

// LoginLimits bound what password guessing costs the broker and its other
// clients. A password check is slow on purpose (argon2id takes tens of
// milliseconds and 64 MiB), so without limits a flood of wrong passwords
// from one address keeps every checking slot busy and real users wait. A
// source is an IPv4 address or an IPv6 /64; its checks and failures are
// counted apart from other sources'.
//
// Refusals by these limits do not check the password and answer CONNACK
// 0x9F Connection rate exceeded (3.1.1: 3, server unavailable), or 0x89
// Server busy when MaxChecks is reached. They are logged at debug level,
// and summed up in one warning every 10 seconds.
type LoginLimits struct {
	// MaxChecks caps the password checks running or waiting across the
	// broker; past it a CONNECT is refused at once (0x89) instead of
	// waiting up to 10 s for a slot. Default 64; 0 or negative: no cap.
	MaxChecks int
	// MaxChecksPerSource caps the password checks running or waiting for
	// one source. Default 4; 0 or negative: no cap.
	MaxChecksPerSource int
	// SourceFailureRate and SourceFailureBurst limit failed logins per
	// source: after Burst failures, a source may try once per 1/Rate
	// seconds; other attempts are refused unchecked. Default 1 per second
	// after 20. Rate 0 turns the limit off.
	SourceFailureRate  float64
	SourceFailureBurst int
	// UserFailureRate and UserFailureBurst do the same per user name,
	// against guessing one user's password from many sources. A source
	// that logged in as the user in the last 24 hours is not held to it,
	// so an attacker who exhausts it does not lock the user out of the
	// places they use. Default 1 per second after 20. Rate 0: off.
	UserFailureRate  float64
	UserFailureBurst int
}

// DefaultLoginLimits returns the limits a broker runs with by default.
func DefaultLoginLimits() LoginLimits {
	return LoginLimits{
		MaxChecks:          64,
		MaxChecksPerSource: 4,
		SourceFailureRate:  1,
		SourceFailureBurst: 20,
		UserFailureRate:    1,
		UserFailureBurst:   20,
	}
}

// loginGuard keeps the state behind LoginLimits.
type loginGuard struct {
	mu       sync.Mutex
	checks   int                      // running or waiting
	bySource map[netip.Prefix]int     // checks per source
	srcFail  map[netip.Prefix]*budget // failure budget per source
	userFail map[uint64]*budget       // failure budget per user, by userKey
	seed     maphash.Seed             // of userKey; zero until the first use
	good     map[goodLogin]time.Time  // user logged in from source, when
	refused  int                      // refused since lastNote
	lastNote time.Time                // of the last summary warning
	errLog   time.Time                // of the last authenticator error logged
	errCount int                      // authenticator errors since errLog
}

// userKey is the key of user's failure budget: a hash, not the name,
// whose 65,535 bytes an attacker chooses anew with every wrong password;
// keyed by the name, the 65,536 budgets kept could hold 4 GiB. Two names
// that share a key share a budget; with a random seed no one can make
// them. g.mu held.
func (g *loginGuard) userKey(user string) uint64 {
	if g.seed == (maphash.Seed{}) {
		g.seed = maphash.MakeSeed()
	}
	return maphash.String(g.seed, user)
}

type goodLogin struct {
	user string
	src  netip.Prefix
}

const (
	// maxGuardEntries bounds each map of the guard; past it the entries
	// that carry no information (full budgets, old logins) are swept, and
	// if that is not enough the map starts over.
	maxGuardEntries = 1 << 16
	// goodLoginFor is how long a successful login exempts its source from
	// the user's failure limit.
	goodLoginFor = 24 * time.Hour
	// loginNoteEvery spaces the warnings that sum up refusals.
	loginNoteEvery = 10 * time.Second
)

// sourcePrefix is the key of addr's source: its IPv4 address or IPv6 /64.
// ok is false for addresses that are not IP (Unix sockets).
func sourcePrefix(addr net.Addr) (netip.Prefix, bool) {
	if addr == nil {
		return netip.Prefix{}, false
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return netip.Prefix{}, false
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// admitLogin decides whether ac's password is checked now. When it is,
// done must be called with the result after the check. Otherwise rc and
// why say how to refuse.
//
// An admitted check takes a token from its source's and its user's
// failure budgets up front, so that checks running at once cannot spend
// more than the budget holds; done gives them back when the password was
// right.
func (s *Server) admitLogin(ac *auth.Client) (done func(ok bool), rc packet.ReasonCode, why string) {
	end, rc, why := s.admitLoginFor(ac, true)
	if rc != packet.Success {
		return nil, rc, why
	}
	return func(ok bool) { end(ac.Username, ok) }, rc, why
}

// admitEnhanced is admitLogin for an enhanced authentication exchange
// (5.0 AUTH, SCRAM): its attempts are held to the same limits as password
// logins, and count in the same failure budgets. The user name is known
// only once the exchange has begun, so the user's budget is charged when
// done reports the exchange failed, with the user it named.
func (s *Server) admitEnhanced(ac *auth.Client) (done func(user string, ok bool), rc packet.ReasonCode, why string) {
	end, rc, why := s.admitLoginFor(ac, false)
	if rc != packet.Success {
		return nil, rc, why
	}
	return func(user string, ok bool) {
		end(user, ok)
		if ok || user == "" {
			return
		}
		ll := s.opt().LoginLimits
		if ll.UserFailureRate <= 0 {
			return
		}
		g := &s.logins
		src, hasSrc := sourcePrefix(ac.Remote)
		now := time.Now()
		g.mu.Lock()
		defer g.mu.Unlock()
		if t, known := g.good[goodLogin{user, src}]; hasSrc && known && now.Sub(t) <= goodLoginFor {
			return // as admitLogin: a place the user logs in from is not held to it
		}
		g.userFail, _ = take(g.userFail, g.userKey(user), now, ll.UserFailureRate, ll.UserFailureBurst)
	}, packet.Success, ""
}

// admitLoginFor is admitLogin; checkUser false leaves the user's failure
// budget out (admitEnhanced).
func (s *Server) admitLoginFor(ac *auth.Client, checkUser bool) (done func(user string, ok bool), rc packet.ReasonCode, why string) {
	ll := s.opt().LoginLimits
	g := &s.logins
	src, hasSrc := sourcePrefix(ac.Remote)
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	refuse := func(rc packet.ReasonCode, why string) (func(string, bool), packet.ReasonCode, string) {
		s.noteLoginRefusedLocked(now)
		s.log.Debug("refusing CONNECT unchecked: "+why, "client", ac.ClientID, "user", ac.Username, "remote", ac.Remote)
		return nil, rc, why
	}
	if ll.MaxChecks > 0 && g.checks >= ll.MaxChecks {
		return refuse(packet.ServerBusy, "too many password checks in progress")
	}
	if hasSrc && ll.MaxChecksPerSource > 0 && g.bySource[src] >= ll.MaxChecksPerSource {
		return refuse(packet.ConnectionRateExceeded, "too many password checks in progress from this address")
	}
	var srcRes, userRes *budget
	if hasSrc && ll.SourceFailureRate > 0 {
		g.srcFail, srcRes = take(g.srcFail, src, now, ll.SourceFailureRate, ll.SourceFailureBurst)
		if srcRes == nil {
			return refuse(packet.ConnectionRateExceeded, "too many failed logins from this address")
		}
	}
	if ll.UserFailureRate > 0 && checkUser {
		t, known := g.good[goodLogin{ac.Username, src}]
		if !hasSrc || !known || now.Sub(t) > goodLoginFor {
			g.userFail, userRes = take(g.userFail, g.userKey(ac.Username), now, ll.UserFailureRate, ll.UserFailureBurst)
			if userRes == nil {
				if srcRes != nil {
					srcRes.give()
				}
				return refuse(packet.ConnectionRateExceeded, "too many failed logins for user "+ac.Username)
			}
		}
	}
	g.checks++
	if hasSrc {
		if g.bySource == nil {
			g.bySource = make(map[netip.Prefix]int)
		}
		g.bySource[src]++
	}
	return func(user string, ok bool) { s.loginDone(user, src, hasSrc, ok, srcRes, userRes) }, packet.Success, ""
}

// loginDone ends a check admitted by admitLogin: a right password gives
// back the tokens it took and exempts its source from the user's budget.
func (s *Server) loginDone(user string, src netip.Prefix, hasSrc, ok bool, srcRes, userRes *budget) {
	g := &s.logins
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checks--
	if hasSrc {
		if n := g.bySource[src] - 1; n > 0 {
			g.bySource[src] = n
		} else {
			delete(g.bySource, src)
		}
	}
	if !ok {
		return
	}
	for _, b := range []*budget{srcRes, userRes} {
		if b != nil {
			b.give()
		}
	}
	if hasSrc {
		if g.good == nil || len(g.good) >= maxGuardEntries {
			g.good = sweep(g.good, func(t time.Time) bool { return now.Sub(t) > goodLoginFor })
		}
		g.good[goodLogin{user, src}] = now
	}
}

// budget is a token bucket of failed logins: burst tokens, refilled at
// rate per second. Unlike a rate.Limiter, a token taken can be given back
// (a check that turned out to be a right password). Guarded by
// loginGuard.mu.
type budget struct {
	tokens, rate, burst float64
	last                time.Time
}

// refill adds the tokens earned since the last call.
func (b *budget) refill(now time.Time) {
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
}

func (b *budget) full(now time.Time) bool { b.refill(now); return b.tokens >= b.burst }
func (b *budget) give()                   { b.tokens = min(b.burst, b.tokens+1) }

// take takes one token from key's budget in m, creating it (full) when
// missing. It returns nil when the budget is empty, and m, which it may
// have swept or replaced.
func take[K comparable](m map[K]*budget, key K, now time.Time, rate float64, burst int) (map[K]*budget, *budget) {
	b := m[key]
	if b == nil {
		if m == nil || len(m) >= maxGuardEntries {
			// A full budget says nothing: forget those.
			m = sweep(m, func(b *budget) bool { return b.full(now) })
		}
		b = &budget{tokens: float64(max(1, burst)), rate: rate, burst: float64(max(1, burst)), last: now}
		m[key] = b
	}
	b.refill(now)
	if b.tokens < 1 {
		return m, nil
	}
	b.tokens--
	return m, b
}

// sweep deletes the entries of m that stale reports, and starts a new map
// if m is nil or still too large.
func sweep[K comparable, V any](m map[K]V, stale func(V) bool) map[K]V {
	for k, v := range m {
		if stale(v) {
			delete(m, k)
		}
	}
	if m == nil || len(m) >= maxGuardEntries {
		return make(map[K]V)
	}
	return m
}

// noteLoginRefusedLocked counts a login refused unchecked and warns at
// most every loginNoteEvery with the count. g.mu held on entry.
func (s *Server) noteLoginRefusedLocked(now time.Time) {
	g := &s.logins
	g.refused++
	if now.Sub(g.lastNote) >= loginNoteEvery {
		s.log.Warn("refusing logins without checking them: too many failures or checks in progress (password guessing?)",
			"refused", g.refused, "since", g.lastNote.Format(time.RFC3339))
		g.refused, g.lastNote = 0, now
	}
}

// logAuthError logs an authenticator that could not decide, at most once
// every loginNoteEvery at error level with the count of the others: a
// flood of logins that time out waiting for a check must not flood the
// log too.
func (s *Server) logAuthError(id, user string, err error) {
	g := &s.logins
	now := time.Now()
	g.mu.Lock()
	g.errCount++
	n := g.errCount
	if now.Sub(g.errLog) < loginNoteEvery {
		g.mu.Unlock()
		s.log.Debug("authentication failed to decide; refusing the client", "client", id, "user", user, "error", err)
		return
	}
	g.errLog, g.errCount = now, 0
	g.mu.Unlock()
	s.log.Error("authentication failed to decide; refusing the client", "client", id, "user", user, "error", err, "failures_since_last_report", n)
}
