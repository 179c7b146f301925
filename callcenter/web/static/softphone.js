/*
 * The operator desk's browser softphone: a small wrapper over JsSIP (vendor/jssip/jssip.min.js, the global JsSIP,
 * loaded first). It registers the signed-in operator's SIP account over a secure WebSocket to Asterisk, rings on
 * incoming calls, answers, hangs up, holds, mutes, sends DTMF and transfers (blind, or attended after a consultation
 * call). Remote audio plays in the <audio> element it is given. The page listens to its events:
 *
 *   const phone = Softphone.create({wsUrl, user, password, displayName, audio: document.querySelector("audio")});
 *   phone.addEventListener("incoming", (e) => show(e.detail.from));   // then phone.answer() or phone.hangup()
 *   phone.start();
 *
 * Events (CustomEvent, details in brackets): registered, unregistered, registrationFailed [cause],
 * disconnected, incoming [from, name, id], outgoing [to, id], progress, confirmed [id], ended [id, cause, originator],
 * hold [id], unhold [id], muted, unmuted, transferred [target], transferFailed [target, cause].
 *
 * Audio processing is off (echo cancellation, noise suppression, automatic gain): operators use headsets, and
 * processing would change what is recorded (a steady tone fades by 20 dB in 2 s with it on). No STUN or TURN:
 * operators' browsers reach Asterisk directly.
 */
(function () {
  "use strict";

  const MEDIA = {
    mediaConstraints: {
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      video: false,
    },
    pcConfig: { iceServers: [] },
    rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
  };

  class Phone extends EventTarget {
    constructor(options) {
      super();
      this.options = options;
      this.domain = options.domain || new URL(options.wsUrl.replace(/^ws/, "http")).hostname;
      this.ua = null;
      this.session = null; // the call shown to the operator
      this.consultation = null; // the second call of an attended transfer
    }

    emit(name, detail) {
      this.dispatchEvent(new CustomEvent(name, { detail: detail || {} }));
    }

    /* Connect and register. */
    start() {
      const o = this.options;
      this.ua = new JsSIP.UA({
        sockets: [new JsSIP.WebSocketInterface(o.wsUrl)],
        uri: `sip:${o.user}@${this.domain}`,
        authorization_user: o.user,
        password: o.password,
        display_name: o.displayName || o.user,
        register: true,
        register_expires: o.registerExpires || 300,
        session_timers: false,
        user_agent: "callcenter operator desk",
      });
      this.ua.on("registered", () => this.emit("registered"));
      this.ua.on("unregistered", () => this.emit("unregistered"));
      this.ua.on("registrationFailed", (e) => this.emit("registrationFailed", { cause: e.cause }));
      this.ua.on("disconnected", () => this.emit("disconnected"));
      this.ua.on("newRTCSession", (e) => this.track(e.session, e.originator));
      this.ua.start();
    }

    /* Unregister and disconnect (hangs up what is up). */
    stop() {
      if (this.ua) {
        this.ua.stop();
        this.ua = null;
      }
    }

    get registered() {
      return Boolean(this.ua && this.ua.isRegistered());
    }

    get state() {
      const s = this.session;
      if (!s) return "idle";
      if (s.isEnded()) return "ended";
      if (s.isEstablished()) return s.isOnHold().local ? "held" : "talking";
      return s.direction === "incoming" ? "ringing" : "calling";
    }

    track(session, originator) {
      const id = session.id;
      session.on("peerconnection", (e) => this.attachAudio(e.peerconnection));
      session.on("progress", () => this.emit("progress", { id }));
      session.on("accepted", () => this.playRemote(session.connection));
      session.on("confirmed", () => {
        this.playRemote(session.connection);
        this.emit("confirmed", { id });
      });
      session.on("hold", () => this.emit("hold", { id }));
      session.on("unhold", () => this.emit("unhold", { id }));
      const finished = (e) => {
        if (this.consultation === session) {
          this.consultation = null;
        } else if (this.session === session) {
          this.session = this.consultation; // the caller left during a consultation: it becomes the call
          this.consultation = null;
        }
        this.emit("ended", { id, cause: e.cause, originator: e.originator });
      };
      session.on("ended", finished);
      session.on("failed", finished);
      if (originator === "remote") {
        if (this.session && !this.session.isEnded()) {
          session.terminate({ status_code: 486, reason_phrase: "Busy Here" }); // one call at a time
          return;
        }
        this.session = session;
        const from = session.remote_identity;
        this.emit("incoming", { id, from: from.uri.user, name: from.display_name || "" });
      }
    }

    attachAudio(connection) {
      connection.addEventListener("track", () => this.playRemote(connection));
    }

    /* Play what the other side sends (called on each new track and again when the call is accepted). */
    playRemote(connection) {
      const audio = this.options.audio;
      if (!audio || !connection) return;
      const tracks = connection.getReceivers().map((r) => r.track).filter((t) => t && t.kind === "audio");
      if (!tracks.length) return;
      if (!audio.srcObject || audio.srcObject.getAudioTracks()[0] !== tracks[0]) {
        audio.srcObject = new MediaStream(tracks);
      }
      audio.play().catch(() => {}); // autoplay may need a click first; the desk's answer button is one
    }

    /* Answer the ringing call. */
    answer() {
      if (this.session && !this.session.isEstablished() && this.session.direction === "incoming") {
        this.session.answer(MEDIA);
      }
    }

    /* Call a number or extension (and, while a call is up, hold it first: a consultation for a transfer). */
    call(target) {
      const current = this.session && this.session.isEstablished() ? this.session : null;
      if (current && !current.isOnHold().local) current.hold();
      const session = this.ua.call(this.uri(target), MEDIA);
      if (current) this.consultation = session;
      else this.session = session;
      this.emit("outgoing", { id: session.id, to: target });
      return session.id;
    }

    /* End the current call (the consultation first, when there is one; then the held call comes back). */
    hangup() {
      const session = this.consultation || this.session;
      if (session && !session.isEnded()) session.terminate();
    }

    hold() {
      if (this.session && this.session.isEstablished()) this.session.hold();
    }

    unhold() {
      if (this.session && this.session.isEstablished()) this.session.unhold();
    }

    mute() {
      const session = this.consultation || this.session;
      if (session) {
        session.mute({ audio: true });
        this.emit("muted");
      }
    }

    unmute() {
      const session = this.consultation || this.session;
      if (session) {
        session.unmute({ audio: true });
        this.emit("unmuted");
      }
    }

    get muted() {
      const session = this.consultation || this.session;
      return Boolean(session && session.isMuted().audio);
    }

    /* DTMF digits (RFC 4733 in the media, as the hotline's dialplan expects). */
    sendDTMF(digits) {
      const session = this.consultation || this.session;
      if (session && session.isEstablished()) session.sendDTMF(digits, { transportType: "RFC2833" });
    }

    /* Blind transfer: the caller goes to ``target`` (an extension), this phone leaves the call. */
    transfer(target) {
      if (!this.session || !this.session.isEstablished()) return;
      this.refer(this.session, this.uri(target), {}, target);
    }

    /* Attended transfer: after call(target) was answered, join the held caller to that colleague. */
    completeTransfer() {
      const held = this.session;
      const consultation = this.consultation;
      if (!held || !consultation || !consultation.isEstablished()) return;
      this.refer(held, consultation.remote_identity.uri, { replaces: consultation }, consultation.remote_identity.uri.user);
    }

    refer(session, target, options, label) {
      session.refer(target, {
        ...options,
        eventHandlers: {
          accepted: () => {
            this.emit("transferred", { target: label });
            session.terminate();
          },
          failed: (e) => this.emit("transferFailed", { target: label, cause: e && e.cause }),
        },
      });
    }

    uri(target) {
      return target.startsWith("sip:") ? target : `sip:${target}@${this.domain}`;
    }
  }

  window.Softphone = {
    /* A phone for one operator: {wsUrl, user, password, displayName?, domain?, audio?, registerExpires?}. */
    create(options) {
      return new Phone(options);
    },
  };
})();
