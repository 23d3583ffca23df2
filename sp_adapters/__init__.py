"""Small but real service providers of the demo, built as an integrator would build them, and the test double of
the upstream identity provider.

- ``ent``: an ENT portal, SAML 2.0 SP on pysaml2's SP side (Saml2Client);
- ``pronote``: a Pronote-like school-life service, CAS 3.0 client (python-cas) with the Pronote preset;
- ``teleservices``: a Scolarité-services-like OpenID Connect client (requests + PyJWT, PKCE S256);
- ``franceconnect``: a FranceConnect-style upstream OpenID Connect provider (development and test double);
- ``common``: what they share (Flask app shell, SQLite store, local sessions, the demo directory).

Each runs with ``python -m sp_adapters.<name> --host 127.0.0.1 --port N --idp-url URL --data-dir DIR``.
"""
