"""The WSGI entry gunicorn serves: `gunicorn --chdir THIS_DIRECTORY wsgi:application`."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
