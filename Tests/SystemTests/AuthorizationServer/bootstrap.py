#!/usr/bin/env python3
"""Makes a fresh authorization server database: migrates the SQLite file named by TB_OAUTH_DB,
creates a user with a password and registers two applications, then prints on stdout one JSON
object with what a client needs (the secrets in plaintext: the database keeps only their hashes,
as django-oauth-toolkit does by default):

  {"username", "password",
   "client_id", "client_secret",          confidential, authorization code + refresh, PKCE
   "redirect_uri",                          http://127.0.0.1/callback: any port (RFC 8252 7.3)
   "introspection_client_id", "introspection_client_secret"}   a resource server's client

Run with the venv's python: TB_OAUTH_DB=DIR/db.sqlite3 python bootstrap.py
"""

import json
import os
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from oauth2_provider.models import get_application_model  # noqa: E402

REDIRECT_URI = "http://127.0.0.1/callback"


def main():
    if "TB_OAUTH_DB" not in os.environ:
        sys.exit("TB_OAUTH_DB must name the SQLite file to create")
    call_command("migrate", verbosity=0, interactive=False)

    username = "operator"
    password = "pw-" + secrets.token_urlsafe(12)
    get_user_model().objects.create_user(username=username, password=password)

    Application = get_application_model()
    client_id = "token-broker-" + secrets.token_hex(4)
    client_secret = secrets.token_urlsafe(24)
    Application.objects.create(
        name="token-broker",
        client_id=client_id,
        client_secret=client_secret,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=REDIRECT_URI,
        skip_authorization=False,
    )

    introspection_id = "resource-server-" + secrets.token_hex(4)
    introspection_secret = secrets.token_urlsafe(24)
    Application.objects.create(
        name="resource-server",
        client_id=introspection_id,
        client_secret=introspection_secret,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )

    json.dump(
        {
            "username": username,
            "password": password,
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uri": REDIRECT_URI,
            "introspection_client_id": introspection_id,
            "introspection_client_secret": introspection_secret,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
