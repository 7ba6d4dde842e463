"""JSON answers for the errors Django itself handles (outside DRF's views).

With DEBUG off, Django answers an unknown URL or a crash with a small HTML page. An API client
expects JSON everywhere, so these views replace Django's handlers (see config/urls.py).
"""

from django.http import JsonResponse


def bad_request(request, exception=None):
    return JsonResponse({"detail": "Bad request."}, status=400)


def permission_denied(request, exception=None):
    return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)


def not_found(request, exception=None):
    return JsonResponse({"detail": "Not found."}, status=404)


def server_error(request):
    return JsonResponse({"detail": "Internal server error."}, status=500)
