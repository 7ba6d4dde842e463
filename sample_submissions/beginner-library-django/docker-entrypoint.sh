#!/bin/sh
# Apply the migrations on every start: the SQLite file lives in /tmp, so each container starts empty.
set -e
python manage.py migrate --noinput
exec "$@"
