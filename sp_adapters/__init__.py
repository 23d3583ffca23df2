"""Small but real service providers of the demo, built as an integrator would build them.

- ``ent``: an ENT portal, SAML 2.0 SP on pysaml2's SP side (Saml2Client);
- ``pronote``: a Pronote-like school-life service, CAS 3.0 client (python-cas) with the Pronote preset;
- ``teleservices``: a Scolarité-services-like OpenID Connect client (requests + PyJWT, PKCE S256);
- ``common``: what they share (Flask app shell, SQLite store, local sessions, the demo directory).

Each runs with ``python -m sp_adapters.<name> --host 127.0.0.1 --port N --idp-url URL --data-dir DIR``.
"""
