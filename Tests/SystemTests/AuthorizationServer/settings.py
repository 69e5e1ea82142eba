"""Django settings of the test authorization server (django-oauth-toolkit on loopback).

Everything that differs between two servers comes from the environment, set by the test
fixture: TB_OAUTH_DB (the SQLite file, in the fixture's own temporary directory) and
TB_OAUTH_ACCESS_TOKEN_SECONDS (access token lifetime, 3600 unless told).
"""

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent

# A test server on loopback only: a fixed key is no secret worth keeping.
SECRET_KEY = "token-broker-system-tests-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "oauth2_provider",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "urls"
WSGI_APPLICATION = "wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [HERE / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TB_OAUTH_DB", str(HERE / "db.sqlite3")),
        # gunicorn's threads write concurrently: wait for the lock instead of failing. No
        # fsync: a test database need not survive a power cut (migrating: 2.8 s with, 1.5 s without).
        "OPTIONS": {"timeout": 20, "init_command": "PRAGMA synchronous=OFF;"},
    }
}

# Passwords and client secrets are hashed as in production, but with a fast hasher: the
# default PBKDF2 costs a few hundred milliseconds of CPU on every client authentication.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "/accounts/login/"
STATIC_URL = "/static/"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

OAUTH2_PROVIDER = {
    "PKCE_REQUIRED": True,
    "ROTATE_REFRESH_TOKEN": True,
    # An old refresh token replayed revokes its whole family (refresh and access tokens).
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("TB_OAUTH_ACCESS_TOKEN_SECONDS", "3600")),
    "SCOPES": {
        "read": "Read",
        "write": "Write",
        "introspection": "Introspect tokens",
    },
    "DEFAULT_SCOPES": ["read"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
