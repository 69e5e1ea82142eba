#!/usr/bin/env python3
"""Django's command line for this server (migrate, shell, ...), for a person debugging it:
TB_OAUTH_DB=/tmp/x/db.sqlite3 .build/oauth-venv/bin/python manage.py migrate"""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
