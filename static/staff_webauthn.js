/* Passkeys for the staff console (WebAuthn): reads the options the server put in the page, asks the browser's
   authenticator, and posts its answer as JSON in the form (with the form's CSRF token). No other script. */
(function () {
  "use strict";
  var form = document.getElementById("form-cle");
  var button = document.getElementById("bouton-cle");
  var status = document.getElementById("cle-etat");
  if (!form || !button || !window.PublicKeyCredential) { return; }
  status.textContent = "";
  function toBytes(value) {
    var b64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out.buffer;
  }
  function toText(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  button.addEventListener("click", function () {
    var options = JSON.parse(form.getAttribute("data-options"));
    options.challenge = toBytes(options.challenge);
    var creating = form.getAttribute("data-mode") === "create";
    if (creating) {
      options.user.id = toBytes(options.user.id);
      (options.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    } else {
      (options.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    }
    var call = creating ? navigator.credentials.create({publicKey: options})
                        : navigator.credentials.get({publicKey: options});
    status.textContent = "Suivez les instructions de votre appareil…";
    call.then(function (cred) {
      var response = {clientDataJSON: toText(cred.response.clientDataJSON)};
      if (creating) {
        response.attestationObject = toText(cred.response.attestationObject);
        if (cred.response.getTransports) { response.transports = cred.response.getTransports(); }
      } else {
        response.authenticatorData = toText(cred.response.authenticatorData);
        response.signature = toText(cred.response.signature);
        if (cred.response.userHandle) { response.userHandle = toText(cred.response.userHandle); }
      }
      document.getElementById("credential").value = JSON.stringify({
        id: cred.id, rawId: toText(cred.rawId), type: cred.type, response: response,
        clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
      });
      form.submit();
    }).catch(function () {
      status.textContent = "La clé d'accès n'a pas pu être utilisée. Réessayez ou utilisez le code de votre application.";
    });
  });
})();
