from django.http import JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("api/auth/", include("accounts.urls")),
    path("api/", include("todos.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]


# Django's own error pages are HTML; every answer of this API is JSON.
def _error(status: int, detail: str):
    def view(request, exception=None):
        return JsonResponse({"detail": detail}, status=status)

    return view


handler400 = _error(400, "Bad request.")
handler403 = _error(403, "You do not have permission to perform this action.")
handler404 = _error(404, "Not found.")


def handler500(request):
    return JsonResponse({"detail": "Internal server error."}, status=500)
