package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
)

// neverExpires marks a session that is kept until a clean start ends it:
// 3.1.1 persistent sessions and 5.0 Session Expiry Interval 0xFFFFFFFF.
const neverExpires = time.Duration(1<<63 - 1)

// connect accepts or refuses a CONNECT and sets up the session.
func (s *Server) connect(c *conn, p *packet.Connect) error {
	c.version = p.Version
	c.dec.Version = p.Version
	c.bridge = p.Bridge
	v5 := p.Version >= packet.V5
	if v5 && p.Properties.Has(packet.PropMaximumPacketSize) {
		c.maxOut = int(p.Properties.MaximumPacketSize) // a refusal too [MQTT-3.1.2-24]
	}
	o := s.opt()
	quiet := false // a refusal the login guard has logged already
	refuse := func(rc packet.ReasonCode, why string) error {
		if !quiet {
			s.log.Info("refusing CONNECT: "+why, "client", p.ClientID, "remote", c.nc.RemoteAddr(), "reason", rc.String())
		}
		ack := &packet.Connack{ReasonCode: rc} // Session Present 0 [MQTT-3.2.2-4] [MQTT-3.2.2-6]
		if v5 {
			// Why, for the client's operator; left out if it would make
			// the CONNACK too large for the client [MQTT-3.2.2-19].
			ack.Properties.SetString(packet.PropReasonString, why)
		}
		if ref := s.refusalReference(o, rc); v5 && ref != "" {
			ack.ReasonCode = packet.UseAnotherServer
			ack.Properties.SetString(packet.PropServerReference, ref)
		}
		c.sendPacket(ack) // then close [MQTT-3.2.2-5] [MQTT-3.2.2-7]
		c.refused = true
		return &closeError{rc, why}
	}
	id := p.ClientID
	assigned := false
	if id == "" {
		if o.RefuseEmptyClientID {
			return refuse(packet.ClientIdentifierNotValid, "empty client identifier, which this broker does not accept") // 3.1.1: return code 2
		}
		if !p.CleanStart && !v5 {
			return refuse(packet.ClientIdentifierNotValid, "empty client identifier with clean session 0") // [MQTT-3.1.3-8]
		}
		if p.Version == packet.V31 {
			return refuse(packet.ClientIdentifierNotValid, "MQTT 3.1 requires a client identifier")
		}
		id = newClientID() // [MQTT-3.1.3-6] [MQTT-3.1.3-7] [MQTT-3.2.2-16]
		assigned = true
	} else {
		id = strings.Clone(id)
	}
	if len(id) > o.MaxClientIDLength || (p.Version == packet.V31 && len(id) > 23) {
		return refuse(packet.ClientIdentifierNotValid, "client identifier too long") // [MQTT-3.1.3-9] [MQTT-3.1.3-8]
	}
	var authReply []byte
	enhancedUser := ""
	if v5 && p.Properties.Has(packet.PropAuthMethod) {
		m := s.enhancedMethod(p.Properties.AuthMethod)
		if m == nil {
			return refuse(packet.BadAuthenticationMethod, "authentication method "+p.Properties.AuthMethod+" is not supported") // [MQTT-4.12.0-1]
		}
		// Counted in the login limits as a password login is.
		done, rc, why := s.admitEnhanced(&auth.Client{ClientID: id, Remote: c.nc.RemoteAddr(), Listener: c.lo.Name, Version: p.Version})
		if rc != packet.Success {
			quiet = true
			return refuse(rc, why)
		}
		reply, user, err := c.authExchange(m, p)
		done(user, err == nil)
		if err != nil {
			return refuse(packet.NotAuthorized, "enhanced authentication ("+p.Properties.AuthMethod+") failed: "+err.Error()) // [MQTT-4.12.0-4]
		}
		c.authMethod = p.Properties.AuthMethod
		authReply, enhancedUser = reply, user
	}
	if p.WillFlag {
		p.Will.Topic = c.mount(p.Will.Topic) // see mount.go
		if !c.checkTopic(p.Will.Topic) {
			return refuse(packet.TopicNameInvalid, "will topic exceeds the configured limits")
		}
		if p.Will.QoS > o.MaximumQoS {
			return refuse(packet.QoSNotSupported, "will QoS above the broker's maximum QoS") // [MQTT-3.2.2-12]
		}
		if p.Will.Retain && !o.RetainAvailable {
			return refuse(packet.RetainNotSupported, "retained will while retain is not available") // [MQTT-3.2.2-13]
		}
		if v5 && o.ValidatePayloadFormat && p.Will.Properties.Has(packet.PropPayloadFormat) &&
			p.Will.Properties.PayloadFormat == 1 && packet.ValidUTF8(p.Will.Payload) != nil {
			return refuse(packet.PayloadFormatInvalid, "will payload declared UTF-8 is not")
		}
	}

	if s.limits.overMem.Load() {
		s.limits.refusedMemory.Add(1)
		return refuse(packet.QuotaExceeded, "memory above the configured ceiling")
	}
	if !s.allowConnection(c.nc.RemoteAddr()) {
		return refuse(packet.ConnectionRateExceeded, "too many connections from this address")
	}
	if rc, why, guarded := s.authenticate(c, p, id, enhancedUser); rc != packet.Success {
		quiet = guarded
		return refuse(rc, why) // [MQTT-3.1.4-2]
	}
	ident := identityOf(c.authc)

	keepAlive := p.KeepAlive
	serverKeepAlive := false
	if max := o.MaxKeepAlive; max > 0 && (keepAlive == 0 || keepAlive > max) && v5 {
		keepAlive, serverKeepAlive = max, true // [MQTT-3.1.2-21]
	}
	if keepAlive > 0 {
		c.keepAlive = time.Duration(keepAlive) * time.Second * 3 / 2 // [MQTT-3.2.2-22]
	} else {
		c.nc.SetReadDeadline(time.Time{}) // keep alive 0: lift the connect timeout
		// TCP keep-alive is the only way left to find a dead peer.
		enableTCPKeepAlive(c.nc)
	}
	c.clientID = id
	c.problemInfo = true
	if o.PublishRate > 0 {
		c.pubRate = rate.NewLimiter(rate.Limit(o.PublishRate), max(1, o.PublishBurst))
	}
	if o.PublishByteRate > 0 {
		c.byteRate = rate.NewLimiter(rate.Limit(o.PublishByteRate), max(o.PublishByteRate, o.MaxPacketSize))
	}
	if p.WillFlag {
		c.will = newMessage(&packet.Publish{Topic: p.Will.Topic, Payload: p.Will.Payload, QoS: p.Will.QoS, Retain: p.Will.Retain, Properties: p.Will.Properties}, time.Now()) // [MQTT-3.1.2-8] [MQTT-3.1.2-7]
		c.will.props.Present.Remove(packet.PropWillDelay)
		c.will.owner = ident // charged if it is retained
		if v5 {
			c.willDelay = time.Duration(p.Will.Properties.WillDelay) * time.Second
		}
	}

	expiry := neverExpires
	persistent := !p.CleanStart // [MQTT-3.1.2-4] (3.1.1)
	anonCap := o.MaxAnonymousSessionExpiry
	if ident != ownerAnonymous {
		anonCap = 0
	}
	if !v5 && anonCap > 0 {
		// An anonymous 3.1.1 session is discarded after this long offline,
		// as 3.1.1 3.1.2.4 allows administratively.
		expiry = time.Duration(anonCap) * time.Second
	}
	ack := &packet.Connack{}
	if v5 {
		props := &p.Properties
		c.aliasOutMax = props.TopicAliasMaximum // 0: none [MQTT-3.1.2-27]
		if props.Has(packet.PropRequestProblemInfo) {
			c.problemInfo = props.RequestProblemInfo == 1 // [MQTT-3.1.2-29]
		}
		secs := props.SessionExpiry
		if o.MaxSessionExpiry > 0 && secs > o.MaxSessionExpiry {
			secs = o.MaxSessionExpiry
			ack.Properties.SetUint(packet.PropSessionExpiry, secs)
		}
		if anonCap > 0 && secs > anonCap {
			secs = anonCap // told in CONNACK (5.0 3.2.2.3.2)
			ack.Properties.SetUint(packet.PropSessionExpiry, secs)
		}
		persistent = secs > 0 // [MQTT-3.1.2-23]
		if secs != 0xFFFFFFFF {
			expiry = time.Duration(secs) * time.Second
		}
		c.expiryZero = secs == 0
		if assigned {
			ack.Properties.SetString(packet.PropAssignedClientID, id)
		}
		if c.authMethod != "" { // [MQTT-4.12.0-5]; none without it [MQTT-4.12.0-6]
			ack.Properties.SetString(packet.PropAuthMethod, c.authMethod)
			if authReply != nil {
				ack.Properties.SetBinary(packet.PropAuthData, authReply)
			}
		}
		if serverKeepAlive {
			ack.Properties.SetUint(packet.PropServerKeepAlive, uint32(keepAlive))
		}
		if o.TopicAliasMaximum > 0 {
			ack.Properties.SetUint(packet.PropTopicAliasMaximum, uint32(o.TopicAliasMaximum))
		}
		if o.MaxPacketSize < NoMaxPacketSize {
			ack.Properties.SetUint(packet.PropMaximumPacketSize, uint32(o.MaxPacketSize))
		}
		if o.ReceiveMaximum < 65535 {
			ack.Properties.SetUint(packet.PropReceiveMaximum, uint32(o.ReceiveMaximum))
		}
		if o.MaximumQoS < 2 {
			ack.Properties.SetUint(packet.PropMaximumQoS, uint32(o.MaximumQoS)) // [MQTT-3.2.2-9]
		}
		if !o.RetainAvailable {
			ack.Properties.SetUint(packet.PropRetainAvailable, 0)
		}
		if !o.WildcardSubscriptions {
			ack.Properties.SetUint(packet.PropWildcardSubAvailable, 0)
		}
		if !o.SubscriptionIdentifiers {
			ack.Properties.SetUint(packet.PropSubIDAvailable, 0)
		}
		if !o.SharedSubscriptions {
			ack.Properties.SetUint(packet.PropSharedSubAvailable, 0)
		}
		if props.RequestResponseInfo == 1 && o.ResponseInformation != "" {
			ack.Properties.SetString(packet.PropResponseInfo, o.ResponseInformation) // [MQTT-3.1.2-28]
		}
	}

	owners, _ := s.cluster.(SessionOwners)
	if owners != nil {
		if err := owners.Claim(id); err != nil {
			s.log.Warn("cannot claim the session in the cluster", "client", id, "error", err)
			return refuse(packet.ServerUnavailable, "the cluster cannot give this node the session now; try again")
		}
		if err := s.loadShared(id, p.CleanStart); err != nil {
			s.log.Warn("cannot read the session from the cluster", "client", id, "error", err)
			return refuse(packet.ServerUnavailable, "the cluster cannot give this node the session now; try again")
		}
	}
	s.letFinish(id, ident)
	var tookOver *conn
	var cancelledWill *message
	created := false
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return refuse(packet.ServerUnavailable, "server is shutting down")
	}
	old := s.sessions[id]
	if old != nil && !s.mayUseLocked(old, ident) {
		owner := old.owner
		s.mu.Unlock()
		s.limits.refusedOwner.Add(1)
		return refuse(packet.NotAuthorized, "client identifier in use by a session of "+owner+", not "+ident+" (session_ownership)")
	}
	if old != nil {
		if oc := old.conn.Swap(nil); oc != nil { // take over [MQTT-3.1.4-2] [MQTT-3.1.4-3]
			oc.takenOver.Store(true)
			tookOver = oc
		}
		old.mu.Lock()
		old.stopTimersLocked()
		cancelledWill = old.pendingWill // a reconnect cancels a delayed will [MQTT-3.1.3-9]
		old.pendingWill = nil
		old.mu.Unlock()
	}
	sess := old
	syncAck := persistent // CONNACK waits for the store: what it says is kept or gone survives a crash
	if p.CleanStart || old == nil || !old.persistent {
		if old != nil {
			old.mu.Lock()
			syncAck = syncAck || old.stored
			old.mu.Unlock()
			s.discardLocked(old) // [MQTT-3.1.2-6] [MQTT-3.1.2-4]
			s.emitSession(EventSessionEnded, old, "clean_start")
		}
		sess = newSession(s, id)
		created = true
		sess.owner = ident
		s.sessions[id] = sess
	} else {
		ack.SessionPresent = true // [MQTT-3.2.2-2] [MQTT-3.2.2-3]
	}
	sess.mu.Lock()
	sess.owner = ident // claims a session restored without an owner
	sess.version = p.Version
	sess.persistent = persistent
	sess.expiry = expiry
	sess.maxInflight = o.MaxInflight
	if n := c.lo.MaxInflight; n > 0 {
		sess.maxInflight = min(n, 65535)
	}
	if v5 && p.Properties.Has(packet.PropReceiveMaximum) {
		sess.maxInflight = min(int(p.Properties.ReceiveMaximum), sess.maxInflight) // [MQTT-3.3.4-9]
	}
	c.sess = sess
	sess.authc.Store(c.authc)
	sess.disconnected = time.Time{}
	if persistent {
		sess.saveLocked() // before CONNACK: an acknowledged session is kept
		c.syncWrites.Store(s.syncer != nil)
		c.sessSync.Store(s.sessionSyncer() != nil)
	} else if sess.stored {
		sess.forgetTxnsLocked() // the store deletes its queue
		if sess.spilled > 0 {
			sess.unspillLocked(sess.spilled) // the session now lives in memory only
		}
		s.storeErr("delete session", id, s.store.DeleteSession(id))
		sess.stored = false
		syncAck = true
	}
	if syncAck {
		s.syncStore()
	}
	c.sendPacket(ack) // CONNACK first [MQTT-3.2.0-1] [MQTT-3.1.4-4] [MQTT-3.1.4-5]
	sess.conn.Store(c)
	if ack.SessionPresent {
		// Under the same lock as the attach: no new delivery overtakes
		// the re-sent ones [MQTT-4.4.0-1] [MQTT-4.6.0-6].
		sess.resumeLocked(c)
	}
	sess.mu.Unlock()
	if n := s.stats.connections.Add(1); n > s.stats.maxConns.Load() {
		s.stats.maxConns.Store(n) // under s.mu: no lost update
	}
	c.connected = true
	s.mu.Unlock()
	c.startExpiry()
	if s.observers.Load() != nil {
		if created {
			s.emitSession(EventSessionCreated, sess, "")
		}
		s.emitClient(EventConnected, c, "", 0, "", "")
	}

	if tookOver != nil {
		s.log.Info("session taken over by a new connection", "client", id, "old_remote", tookOver.nc.RemoteAddr(), "new_remote", c.nc.RemoteAddr())
		if tookOver.version >= packet.V5 {
			tookOver.closeWith(&packet.Disconnect{ReasonCode: packet.SessionTakenOver}) // [MQTT-3.1.4-3]
		} else {
			tookOver.closeWith(nil)
		}
	}
	if cancelledWill != nil {
		// Any new connection for the ClientID within the Will Delay
		// Interval cancels the will, Clean Start 1 too: the session it
		// ends is ended by that very connection [MQTT-3.1.2-8].
		s.log.Debug("delayed will cancelled by reconnection", "client", id, "topic", cancelledWill.topic, "clean_start", p.CleanStart)
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) { // a connect storm builds no line nobody reads
		s.log.Debug("client connected", "client", id, "remote", c.nc.RemoteAddr(), "version", p.Version, "clean", p.CleanStart, "keepalive", keepAlive, "session_present", ack.SessionPresent)
	}
	if owners != nil && !owners.Owns(id) {
		// Another node claimed the identifier while this one connected:
		// its takeover request may have found nothing here yet.
		go s.takeOverRemote(id)
	} else if s.cluster != nil {
		s.keepWill(c)
	}
	return nil
}

// discardLocked removes a session and its subscriptions. s.mu held.
func (s *Server) discardLocked(sess *session) {
	sess.mu.Lock()
	filters := make([]string, 0, len(sess.subs))
	for f := range sess.subs {
		filters = append(filters, f)
	}
	sess.subs = nil
	stored := sess.stored
	sess.stored = false
	orphans := sess.sharedInflightLocked()
	sess.clearLocked()
	sess.stopTimersLocked()
	sess.ended.Store(true)
	sess.forgetTxnsLocked() // the store deletes its queue
	sess.mu.Unlock()
	for _, f := range filters {
		if s.subs.Remove(sess, f) {
			s.clusterUnsub(f)
		}
	}
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
	if stored {
		s.storeErr("delete session", sess.id, s.store.DeleteSession(sess.id))
	}
	if len(orphans) > 0 {
		go s.redeliverShared(orphans)
	}
}

// disconnected runs once when a connection has ended. It publishes the will
// unless DISCONNECT removed it (or schedules it after the Will Delay
// Interval), and ends the session or starts its expiry.
func (s *Server) disconnected(c *conn) {
	if s.cluster != nil {
		s.dropWill(c)
	}
	// handleDisconnect already dropped the will unless the reason was 0x04
	// (Disconnect with Will Message) [MQTT-3.1.2-10] [MQTT-3.14.4-3].
	will := c.will
	c.will = nil
	if c.takenOver.Load() && c.willDelay > 0 {
		// A new connection for the ClientID came within the Will Delay
		// Interval: the will is cancelled [MQTT-3.1.3-9] [MQTT-3.1.2-8].
		will = nil
	}
	c.lo.conns.Add(-1)
	wrote := s.writeSeq.Load()
	defer func() {
		// A session ended or saved at DISCONNECT, a retained will: no
		// acknowledgement covers them, but no crash of the process loses
		// them either.
		if s.writeSeq.Load() != wrote {
			s.syncStore()
		}
	}()
	s.mu.Lock()
	delete(s.conns, c)
	sess := c.sess
	if c.connected {
		s.stats.connections.Add(-1)
	}
	if sess != nil && sess.conn.CompareAndSwap(c, nil) {
		if !sess.persistent || sess.expiry == 0 {
			s.discardLocked(sess) // [MQTT-3.1.2-6] [MQTT-4.1.0-2]
			s.emitSession(EventSessionEnded, sess, "disconnected")
		} else {
			sess.mu.Lock()
			sess.disconnected = time.Now()
			sess.saveLocked()
			if will != nil && c.willDelay > 0 && c.willDelay < sess.expiry {
				// Held until the delay passes or the session ends [MQTT-3.1.2-8].
				sess.pendingWill = will
				gen := sess.timerGen
				sess.willTimer = time.AfterFunc(c.willDelay, func() { s.delayedWill(sess, gen) })
				will = nil
			} else if will != nil && c.willDelay > 0 {
				sess.pendingWill = will // goes out when the session expires
				will = nil
			}
			if sess.expiry != neverExpires {
				gen := sess.timerGen
				sess.expiryTimer = time.AfterFunc(sess.expiry, func() { s.expire(sess, gen) })
			}
			sess.mu.Unlock()
		}
	}
	s.mu.Unlock()
	if will != nil {
		s.publishWill(c.clientID, will)
	}
}

func (s *Server) publishWill(clientID string, will *message) {
	s.log.Debug("publishing will", "client", clientID, "topic", will.topic)
	will.created = time.Now()
	if will.props.Has(packet.PropMessageExpiry) {
		will.expiry = will.created.Add(time.Duration(will.props.MessageExpiry) * time.Second)
	}
	s.pubMu.Lock()
	s.publish(will, nil, &s.pubMatches) // [MQTT-3.1.2-16] [MQTT-3.1.2-17]
	s.pubMu.Unlock()
}

// delayedWill publishes a will whose delay has passed while its session is
// still offline.
func (s *Server) delayedWill(sess *session, gen uint64) {
	sess.mu.Lock()
	if sess.timerGen != gen { // stopped, or rescheduled, after it fired
		sess.mu.Unlock()
		return
	}
	will := sess.pendingWill
	sess.pendingWill = nil
	sess.mu.Unlock()
	if will != nil {
		s.publishWill(sess.id, will)
	}
}

// expire ends a session whose expiry interval has passed offline
// [MQTT-4.1.0-2], publishing a will still waiting for its delay.
func (s *Server) expire(sess *session, gen uint64) {
	s.mu.Lock()
	if s.sessions[sess.id] != sess || sess.conn.Load() != nil {
		s.mu.Unlock()
		return
	}
	sess.mu.Lock()
	if sess.timerGen != gen { // stopped, or rescheduled, after it fired
		sess.mu.Unlock()
		s.mu.Unlock()
		return
	}
	will := sess.pendingWill
	sess.pendingWill = nil
	sess.mu.Unlock()
	s.discardLocked(sess)
	s.mu.Unlock()
	s.emitSession(EventSessionEnded, sess, "expired")
	s.log.Debug("session expired", "client", sess.id)
	if will != nil {
		s.publishWill(sess.id, will)
	}
}

func newClientID() string {
	var b [12]byte
	rand.Read(b[:])
	return "gannet-" + hex.EncodeToString(b[:])
}
