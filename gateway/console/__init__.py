"""The ops console: staff browse the audit trail, answer a person's right of access, check
the trail's integrity and, as admins, read the partner registry.

Server-rendered HTML (Jinja2) styled with the French State design system (DSFR), under
``/console``. It is not part of the data API: staff sign in with a password (argon2) and a
session cookie, not OAuth, and what they look up by person is itself written to the audit trail.

- ``models``: staff accounts, sessions, saved searches, verification runs;
- ``auth``: passwords, sessions, CSRF tokens, the staff context of a request;
- ``throttle``: how wrong passwords are slowed down, per name typed and client address;
- ``repository``: every query the console runs; ``service``: what the pages show;
- ``routes``: the pages, and ``install_console(app, settings)`` which mounts them;
- ``cli``: ``gateway staff add|disable|list``.
"""
