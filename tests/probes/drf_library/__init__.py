"""A Django REST framework library API served in-process (WSGI), configured the way the DRF and drf-spectacular
docs recommend for a public API: a ModelViewSet on a DefaultRouter (paths end with a slash, slashless ones answer
301), no authentication classes (drf-spectacular then marks every operation `security: [{}]`), the OpenAPI document
as YAML at /api/schema/, PageNumberPagination with page_size_query_param and max_page_size, JSON handler404/500.

Django's settings are process-wide, so the app is configured once; `library_app(flaws=...)` switches planted flaws
(read at request time) and empties the table. Flaws: "no_cap" (no max_page_size), "own_404" (the 404 of unknown URLs
in a shape of its own).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

FLAWS: set[str] = set()
_APP = None


def library_app(flaws: set[str] | frozenset[str] = frozenset()):
    """The WSGI app, with the given flaws switched on and no books."""
    global _APP
    if _APP is None:
        _APP = _configure()
    FLAWS.clear()
    FLAWS.update(flaws)
    from .models import Book

    Book.objects.all().delete()
    return _APP


def _configure():
    import django
    from django.conf import settings
    from django.core.management import call_command

    folder = Path(tempfile.mkdtemp(prefix="drf-library-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    settings.configure(
        DEBUG=False,
        SECRET_KEY="probe-tests-only",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "drf_spectacular",
                        "tests.probes.drf_library"],
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        ROOT_URLCONF="tests.probes.drf_library.api",
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(folder / "library.sqlite3")}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [],
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
            "UNAUTHENTICATED_USER": None,
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
            "DEFAULT_PAGINATION_CLASS": "tests.probes.drf_library.pagination.BookPagination",
            "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
        },
        SPECTACULAR_SETTINGS={"TITLE": "Library", "VERSION": "1.0.0", "SERVE_INCLUDE_SCHEMA": False,
                              "COMPONENT_SPLIT_REQUEST": True},
    )
    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0)
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()
