// The desk's browser phone (operators whose device is "browser"): softphone.js registered with the account the
// page was given, its buttons following the line's state. window.deskPhone is the phone (tests drive it too).
(() => {
  const account = JSON.parse(document.getElementById("desk-phone").textContent);
  const words = JSON.parse(document.getElementById("desk-words").textContent);
  const word = (key) => words[key] || key;
  const $ = (id) => document.getElementById(id);
  const phone = Softphone.create({ ...account, audio: $("phone-audio") });
  window.deskPhone = phone;

  function show() {
    const state = phone.state, up = state === "talking" || state === "held";
    const line = $("phone-state");
    line.dataset.state = state; line.textContent = word(state);
    line.className = "pill state-" + ({ ringing: "ringing", talking: "on_call", held: "paused" }[state] || "free");
    $("phone-answer").disabled = state !== "ringing";
    $("phone-hangup").disabled = !["ringing", "calling", "talking", "held"].includes(state);
    $("phone-hold").disabled = !up;
    $("phone-hold").setAttribute("aria-pressed", String(state === "held"));
    $("phone-mute").disabled = !up;
    $("phone-mute").setAttribute("aria-pressed", String(phone.muted));
    $("phone-transfer").disabled = !up;
    $("phone-consult").disabled = !up || Boolean(phone.consultation);
    $("phone-complete").disabled = !(phone.consultation && phone.consultation.isEstablished());
    for (const key of document.querySelectorAll(".keypad .key")) key.disabled = !up;
    const registration = $("phone-registration");
    registration.dataset.registered = String(phone.registered);
    registration.textContent = word(phone.registered ? "Registered" : "Not registered");
    registration.className = "pill state-" + (phone.registered ? "free" : "unreachable");
  }

  for (const name of ["registered", "unregistered", "registrationFailed", "disconnected", "progress", "confirmed",
                      "hold", "unhold", "muted", "unmuted", "ended", "outgoing", "transferred", "transferFailed"]) {
    phone.addEventListener(name, () => setTimeout(show));  // after JsSIP has updated the session
  }
  phone.addEventListener("incoming", (event) => {
    $("phone-peer").textContent = event.detail.from + (event.detail.name ? " · " + event.detail.name : "");
    show();
  });
  $("phone-answer").addEventListener("click", () => phone.answer());
  $("phone-hangup").addEventListener("click", () => phone.hangup());
  $("phone-hold").addEventListener("click", () => (phone.state === "held" ? phone.unhold() : phone.hold()));
  $("phone-mute").addEventListener("click", () => (phone.muted ? phone.unmute() : phone.mute()));
  $("phone-transfer").addEventListener("click", () => phone.transfer($("transfer-target").value));
  $("phone-consult").addEventListener("click", () => phone.call($("transfer-target").value));
  $("phone-complete").addEventListener("click", () => phone.completeTransfer());
  for (const key of document.querySelectorAll(".keypad .key")) {
    key.addEventListener("click", () => phone.sendDTMF(key.dataset.digit));
  }
  window.addEventListener("pagehide", () => phone.stop());
  phone.start();
  show();
})();
